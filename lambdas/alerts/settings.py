"""What the Discord notifier reads from its environment (``constructs_lib/discord.py`` fills it)."""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.settings import Settings


@dataclass(frozen=True)
class DiscordSettings(Settings):
    # The Secrets Manager secret (by name) whose value is the webhook URL; the operator creates
    # it, the stack only references it, so the URL is never in a template or an environment.
    webhook_secret_name: str
    # Posts under this name, so two environments sharing one channel are told apart.
    deployment: str = "media-pipeline"
