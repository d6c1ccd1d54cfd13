"""The instructions the model gets, from the data file beside this module (``prompt.md``).

The prompt is text an editor may change without touching code. The bounds it states are the
constants here, which ``answer.py`` checks the answer against, so what is asked for and what is
accepted cannot drift; the CDK app reads them too (this module imports nothing heavy). The
prompt's version (a digest of the filled text) is recorded with every summary it produced.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from string import Template

from lambdas.summarize.view import estimate_tokens

MAX_SUMMARY_CHARS = 600
MAX_TAGS = 8
MAX_TAG_CHARS = 40
# A tag: one to three words of letters, digits, apostrophes, ampersands or hyphens.
TAG_PATTERN = r"^[\w'&-]+( [\w'&-]+){0,2}$"

PROMPT_FILE = Path(__file__).with_name("prompt.md")
PROMPT = Template(PROMPT_FILE.read_text(encoding="utf-8")).substitute(
    max_summary_chars=MAX_SUMMARY_CHARS, max_tags=MAX_TAGS, max_tag_chars=MAX_TAG_CHARS
)
PROMPT_VERSION = hashlib.sha256(PROMPT.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
# The user turn: this line, then the asset's view.
USER_MESSAGE = "What the analysis found in the asset, as JSON:\n"
# What the prompt and the user turn's own words take of an asset's token budget (estimated).
PROMPT_TOKENS = estimate_tokens(PROMPT) + estimate_tokens(USER_MESSAGE)
