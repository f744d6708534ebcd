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
"""

from __future__ import annotations

__all__ = ["ANTHROPIC_BUDGETS", "GEMINI_BUDGETS", "anthropic_budget", "gemini_budget"]

ANTHROPIC_BUDGETS: dict[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16_384, "xhigh": 32_768}
GEMINI_BUDGETS: dict[str, int] = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24_576,
                                  "xhigh": 32_768}


def anthropic_budget(effort: str | None) -> int | None:
    """Anthropic's thinking budget for an effort (None: no thinking)."""
    return ANTHROPIC_BUDGETS.get(effort) if effort else None


def gemini_budget(effort: str | None) -> int | None:
    """Gemini's thinking budget for an effort (None: leave the model's default)."""
    return GEMINI_BUDGETS.get(effort) if effort else None
