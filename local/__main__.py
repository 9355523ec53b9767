"""`python -m local`: see local/cli.py."""

from local.cli import app

if __name__ == "__main__":
    app()
