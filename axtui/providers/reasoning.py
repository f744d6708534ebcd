"""How ``reasoning_effort`` becomes each provider's thinking budget.

OpenAI names an effort (chat's ``reasoning_effort``, the Responses API's
``reasoning.effort``); Anthropic and Gemini take a budget of thinking
tokens. The mapping:

| effort    | Anthropic ``thinking.budget_tokens`` | Gemini ``thinkingConfig.thinkingBudget`` |
| --------- | ------------------------------------ | ---------------------------------------- |
| `none`    | thinking off                         | 0 (off where the model allows it)        |
| `minimal` | 1,024 (Anthropic's minimum)          | 512                                      |
| `low`     | 2,048                                | 1,024                                    |
| `medium`  | 8,192                                | 8,192                                    |
| `high`    | 16,384                               | 24,576 (2.5 Flash's maximum)             |
| `xhigh`   | 32,768                               | 32,768 (2.5 Pro's maximum)               |

A caller who sends the provider's own setting (``thinking`` or
``thinkingConfig``) keeps it; the effort is then ignored. Anthropic counts
thinking inside ``max_tokens``, so when the caller's limit is not above
the budget, ``max_tokens`` becomes budget plus that limit; and it refuses
``temperature`` and ``top_k`` beside thinking, so those are left out.
Gemini is asked to include its thoughts (``includeThoughts``), so chat
answers can return them as ``reasoning_content``. Reasoning tokens are
priced as output, as the providers bill them.

What the thinking a provider shares *is* differs by model, and decides
whether it may answer the Responses API's ``reasoning.summary``
(`summarises_thinking`):

| model                                 | the thinking text it shares                   |
| ------------------------------------- | --------------------------------------------- |
| Claude 4 and later (any host)         | a summary of its thinking (Anthropic's docs)  |
| Gemini 2.5 and later (any host)       | thought summaries (Google's docs)             |
| Claude 3.7, Gemini 2.0 and older      | its full thinking                             |
| others (DeepSeek, Qwen, gpt-oss… on   | its full reasoning (``reasoning_content``)    |
| OpenAI-compatible servers)            |                                               |

OpenAI's own models share no reasoning text through chat completions;
their summaries come only through the Responses API spoken natively.
"""

from __future__ import annotations

import re

__all__ = ["ANTHROPIC_BUDGETS", "GEMINI_BUDGETS", "anthropic_budget", "gemini_budget", "summarises_thinking"]

ANTHROPIC_BUDGETS: dict[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16_384, "xhigh": 32_768}
GEMINI_BUDGETS: dict[str, int] = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24_576,
                                  "xhigh": 32_768}


def anthropic_budget(effort: str | None) -> int | None:
    """Anthropic's thinking budget for an effort (None: no thinking)."""
    return ANTHROPIC_BUDGETS.get(effort) if effort else None


def gemini_budget(effort: str | None) -> int | None:
    """Gemini's thinking budget for an effort (None: leave the model's default)."""
    return GEMINI_BUDGETS.get(effort) if effort else None


#: Model ids whose shared thinking is a summary of it: Claude 4+ and Gemini 2.5+, under any host's naming
#: (``claude-sonnet-4-5``, ``anthropic.claude-opus-4-1-…``, ``anthropic/claude-haiku-4-5``, ``claude-4-opus``,
#: ``gemini-2.5-pro``, ``google/gemini-3-pro-preview``, ``gemini-flash-latest``). Claude 3.x and 2, and Gemini
#: 1.x/2.0 are left out (3.7 shares its full thinking), and so are open models distilled from them, which share
#: their full reasoning whatever their name says.
_SUMMARISING = re.compile(r"claude-(?:[a-z]+-)?(?:[4-9]|\d{2})(?!\d)|gemini-(?:2\.5|[3-9]|\d{2})"
                          r"|gemini-(?:flash|pro)(?:-lite)?-latest", re.IGNORECASE)
_DISTILLED = re.compile(r"distill", re.IGNORECASE)


def summarises_thinking(model: str) -> bool:
    """Whether the thinking text ``model`` shares is a summary of its thinking (see the module docstring).

    Such text may answer a Responses ``reasoning.summary``; any other is the
    model's full reasoning, and is never passed off as a summary.
    """
    return _SUMMARISING.search(model) is not None and _DISTILLED.search(model) is None
