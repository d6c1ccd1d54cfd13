"""What the upload starter reads from its environment (``constructs_lib/trigger.py`` fills it)."""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.settings import Settings


@dataclass(frozen=True)
class TriggerSettings(Settings):
    state_machine_arn: str
