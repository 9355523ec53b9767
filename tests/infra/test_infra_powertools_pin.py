"""The Powertools layer the stack deploys is the release the tests run."""

from __future__ import annotations

import re

from infra.config import POWERTOOLS_VERSION
from tests.infra.synth import REPO_ROOT


def test_the_pinned_layer_release_is_the_one_requirements_dev_installs() -> None:
    # GIVEN the pin the tests run with
    requirements = (REPO_ROOT / "requirements-dev.txt").read_text()
    pinned = re.findall(r"^aws-lambda-powertools(?:\[[^\]]*\])?==(\S+)\s*$", requirements, flags=re.MULTILINE)
    # THEN the stack's layer is that release: bump both together
    assert pinned == [POWERTOOLS_VERSION]
