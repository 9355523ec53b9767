"""Fixtures for the emulator's own tests: one server for the session, wiped and reconfigured per test."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from emulator import Emulator, EmulatorConfig
from tests.emulator.helpers import INSTANCE_ID, STANDARD, World, client


@pytest.fixture(scope="session")
def _server() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig()) as server:
        yield server


@pytest.fixture
def emu(_server: Emulator) -> Emulator:
    """The session's emulator with AWS's default quotas, no faults, no state."""
    defaults = EmulatorConfig()
    _server.configure(**{f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)})
    _server.reset()
    return _server


@pytest.fixture(scope="session")
def cases(_server: Emulator) -> Any:
    """A Cases client that makes exactly one attempt per call."""
    return client("connectcases", _server)


@pytest.fixture(scope="session")
def retrying_cases(_server: Emulator) -> Any:
    """A Cases client with botocore's standard retries (10 attempts), as the linker builds it."""
    return client("connectcases", _server, STANDARD)


@pytest.fixture(scope="session")
def connect(_server: Emulator) -> Any:
    """A Connect client that makes exactly one attempt per call."""
    return client("connect", _server)


@pytest.fixture
def world(emu: Emulator) -> World:
    """A domain, one case (reference id REF-A), and a finished contact whose caseId attribute names the case."""
    domain_id = emu.create_domain("demo")
    case_id = emu.create_case(domain_id, title="Broken router", reference_id="REF-A")
    contact_arn = emu.put_contact(INSTANCE_ID, "contact-1", attributes={"caseId": case_id})
    return World(domain_id, case_id, "contact-1", contact_arn)


@pytest.fixture
def other_case(world: World, emu: Emulator) -> str:
    """A second case in the world's domain, reference id REF-B."""
    return emu.create_case(world.domain_id, title="Billing question", reference_id="REF-B")
