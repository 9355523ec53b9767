"""Synthesize the stack once per session; tests read the templates.

Three apps: the defaults (only the required context), every option switched on, and the defaults without the
sweeper. All come from app.build(), so the tests see what `cdk synth` builds, feature flags from cdk.json and
cdk-nag included.
"""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from tests.infra.synth import FULL_CONTEXT, NO_SWEEPER_CONTEXT, REQUIRED_CONTEXT, Synthesized, synthesize


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(REQUIRED_CONTEXT, tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def full_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(FULL_CONTEXT, tmp_path_factory.mktemp("cdk-full"))


@pytest.fixture(scope="session")
def no_sweeper_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(NO_SWEEPER_CONTEXT, tmp_path_factory.mktemp("cdk-no-sweeper"))


@pytest.fixture(scope="session")
def template(default_synth: Synthesized) -> Template:
    return default_synth.template


@pytest.fixture(scope="session")
def full_template(full_synth: Synthesized) -> Template:
    return full_synth.template
