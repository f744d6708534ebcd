"""One encoder per wire format for ax's usage: the gateway's answers and the simulated upstreams share it."""

from __future__ import annotations

import pytest

from axtui.providers.anthropic import anthropic_usage, anthropic_usage_body
from axtui.providers.openai import openai_usage, openai_usage_body
from axtui.server import anthropic_wire, wire
from axtui.types import Usage, token_count


def test_the_gateway_answers_with_the_providers_encoders() -> None:
    assert wire.usage_body is openai_usage_body
    assert anthropic_wire.usage_body is anthropic_usage_body


@pytest.mark.parametrize("counts", [(0, 0, 0, 0, 0), (120, 30, 40, 10, 7), (5, 0, 9, 2, 0), (2**31 - 1, 5, 6, 7, 8)])
def test_one_usage_encoder_per_wire_format_round_trips(counts: tuple[int, int, int, int, int]) -> None:
    fresh, out, read, written, reasoning = counts
    usage = Usage(token_count(fresh + read + written), out, read, written, 0, reasoning)
    assert anthropic_usage(anthropic_usage_body(usage)) == Usage(usage.input_tokens, out, read, written)
    back = openai_usage(openai_usage_body(usage))
    assert (back.input_tokens, back.output_tokens, back.cached_input_tokens, back.reasoning_tokens) == (
        usage.input_tokens, out, read, reasoning)
