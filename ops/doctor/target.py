"""What the doctor checks: the stack, and the settings a deploy from this checkout would use."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.config import REQUIRED_CONTEXT_KEYS, CaseLinkerConfig, ConfigError


@dataclass(frozen=True, kw_only=True)
class Target:
    """The stack, the context (as cdk reads it: ops/cdk_project.py) and the CDK toolkit stack."""

    stack_name: str
    context: Mapping[str, Any]
    toolkit_stack_name: str = "CDKToolkit"
    bootstrap_qualifier: str = "hnb659fds"
    #: The files read for the context, for the report.
    sources: Sequence[str] = ()
    #: Where each context value came from (an option such as `-c`, or a file), for the report.
    origins: Mapping[str, str] = field(default_factory=dict)

    @functools.cached_property
    def _settings(self) -> tuple[CaseLinkerConfig | None, tuple[str, ...]]:
        try:
            return CaseLinkerConfig.from_context(self.context), ()
        except ConfigError as e:
            return None, e.problems

    @property
    def config(self) -> CaseLinkerConfig | None:
        """The settings infra/config.py derives, as the stack is built; None when the context is invalid."""
        return self._settings[0]

    @property
    def context_problems(self) -> tuple[str, ...]:
        return self._settings[1]

    @functools.cached_property
    def instance(self) -> CaseLinkerConfig | None:
        """Settings from the two required keys alone: the instance and the domain, even when another key is bad."""
        if self.config is not None:
            return self.config
        try:
            return CaseLinkerConfig.from_context(
                {key: self.context.get(key) for key in REQUIRED_CONTEXT_KEYS}
            )
        except ConfigError:
            return None
