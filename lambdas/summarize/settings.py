"""What the summarize handler reads from its environment (``constructs_lib/summarize.py`` fills
it from the environment's ``summaries`` configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.settings import Settings, at_least, setting


@dataclass(frozen=True)
class SummarizeSettings(Settings):
    processed_bucket: str
    # A foundation model id (``amazon.nova-micro-v1:0``): the one the role may invoke.
    model_id: str
    # Tokens one asset may use, prompt + view + answer; with the prices below, the most one
    # asset's summary can cost. The view is cut to fit what the answer leaves.
    token_budget: int = setting(check=at_least(64))
    # The answer's share (Converse's ``maxTokens``); a longer answer is cut there by the model.
    max_answer_tokens: int = setting(check=at_least(16))
    input_usd_per_1k_tokens: float = setting(check=at_least(0))
    output_usd_per_1k_tokens: float = setting(check=at_least(0))
