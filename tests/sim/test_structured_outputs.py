"""Structured outputs: a simulated model answers ``response_format`` JSON schemas with a value of the schema.

In process and over HTTP, through the official SDKs' ``parse`` helpers and
through ax's own adapters (Anthropic's ``output_config``, Gemini's
``responseJsonSchema``), and for Gemini's OpenAPI-style ``responseSchema``.
"""

from __future__ import annotations

import datetime
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, Any, Literal

import anthropic
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from axtui.clock import FakeClock
from axtui.config import ProviderConfig
from axtui.providers import Provider, create_provider
from axtui.providers.sim import SimProvider
from axtui.providers.sim.schema import schema_instance
from axtui.types import Chunk

from .helpers import ask, deployment

MakeSim = Callable[..., SimProvider]
PROMPT = "Solve 8x + 7 = -23 step by step"


class Unit(StrEnum):
    """An enum: pydantic puts it in $defs and refers to it."""

    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Step(BaseModel):
    """A nested model: a $ref inside an array."""

    explanation: str
    output: str


class Solution(BaseModel):
    """What OpenAI's structured-outputs guide parses; every field required, as its strict mode wants."""

    steps: list[Step]
    final_answer: str
    confidence: float
    attempts: int
    checked: bool
    unit: Unit
    kind: Literal["linear", "quadratic"]
    note: str | None


class Node(BaseModel):
    """A model that contains itself."""

    name: str
    children: list[Node] = []


class Everything(BaseModel):
    """Every shape pydantic writes into a schema that a simulated answer must satisfy."""

    solution: Solution
    tree: Node
    when: datetime.datetime
    day: datetime.date
    ident: uuid.UUID
    pair: tuple[int, str]
    counts: dict[str, int]
    small: Annotated[int, Field(ge=10, le=12)]
    even: Annotated[int, Field(gt=0, multiple_of=4)]
    ratio: Annotated[float, Field(gt=0.5, lt=0.6)]
    short: Annotated[str, Field(max_length=12)]
    long: Annotated[str, Field(min_length=200)]
    tags: Annotated[list[str], Field(min_length=2, max_length=3)]
    maybe: Unit | None = None
    fixed: Literal["v1"] = "v1"


def _format(model: type[BaseModel]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": model.__name__, "schema": model.model_json_schema()}}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), prompt=st.text(max_size=60), answer=st.booleans())
def test_every_value_made_for_a_pydantic_schema_validates(seed: int, prompt: str, answer: bool) -> None:
    rng = random.Random(seed)
    sentence = (lambda: f"A sentence about {prompt!r}.") if answer else None
    value = schema_instance(Everything.model_json_schema(), rng, prompt.split(), sentence=sentence)
    parsed = Everything.model_validate_json(json.dumps(value))
    if answer:
        assert parsed.solution.steps and parsed.tags, "an answer fills its arrays"


def test_gemini_openapi_schemas_are_filled_in_their_property_order() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "population": {"type": "INTEGER", "minimum": 1_000},
                       "districts": {"type": "ARRAY", "items": {"type": "STRING"}}, "capital": {"type": "BOOLEAN"},
                       "mayor": {"type": "STRING", "nullable": True}},
        "propertyOrdering": ["population", "city", "capital", "districts", "mayor"],
    }
    value = schema_instance(schema, random.Random(3), ["oslo"], sentence=lambda: "Oslo.")
    assert list(value) == ["population", "city", "capital", "districts", "mayor"]
    assert value["population"] >= 1_000 and isinstance(value["capital"], bool)
    assert value["districts"] and all(isinstance(d, str) for d in value["districts"])


async def test_in_process_answers_and_streams_are_instances_of_the_schema(make_sim: MakeSim) -> None:
    for name, model in (("openai", "gpt-4o"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-flash")):
        dep = deployment(name, model)
        request = ask(PROMPT, model, response_format=_format(Everything))
        plain = await make_sim(name, profile="fast", seed=2).chat(request, dep)
        chunks: list[Chunk] = [c async for c in make_sim(name, profile="fast", seed=2).stream(request, dep)]
        assert Everything.model_validate_json(plain.content), name
        assert "".join(c.delta for c in chunks) == plain.content
        assert "solve" in Everything.model_validate_json(plain.content).solution.final_answer.lower(), \
            "text values are the simulator's prose about the prompt"


async def test_the_openai_sdk_parses_plain_and_streamed_answers(sim_url: str) -> None:
    async with openai.AsyncOpenAI(base_url=sim_url + "/v1", api_key="sk-test", max_retries=0) as client:
        ask_for = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]}
        plain = await client.chat.completions.parse(response_format=Solution, **ask_for)  # type: ignore[arg-type]
        parsed = plain.choices[0].message.parsed
        assert isinstance(parsed, Solution) and parsed.steps

        async with client.chat.completions.stream(response_format=Solution, **ask_for) as stream:  # type: ignore[arg-type]
            final = await stream.get_final_completion()
        assert final.choices[0].message.parsed == parsed

        native = await client.responses.parse(model="gpt-4o-mini", input=PROMPT, text_format=Solution)
        assert isinstance(native.output_parsed, Solution)


async def test_the_anthropic_sdk_parses_structured_outputs(sim_url: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=sim_url, api_key="sk-ant-test", max_retries=0) as client:
        message = await client.messages.parse(model="claude-haiku-4-5", max_tokens=2_000, output_format=Solution,
                                              messages=[{"role": "user", "content": PROMPT}])
    assert isinstance(message.parsed_output, Solution) and message.parsed_output.steps


@pytest.mark.parametrize(("kind", "path", "model"), [("openai", "/v1", "gpt-4o-mini"),
                                                     ("anthropic", "/v1", "claude-haiku-4-5"),
                                                     ("gemini", "/v1beta", "gemini-2.5-flash")])
async def test_adapters_over_http_get_the_in_process_answer(
    serve: Callable[..., Awaitable[str]], monkeypatch: pytest.MonkeyPatch, kind: str, path: str, model: str
) -> None:
    monkeypatch.setenv("AX_SIM_TEST_KEY", "sk-sim-test")
    url = await serve("fast", seed=7)
    adapter: Provider = create_provider(ProviderConfig(name=kind, kind=kind, base_url=url + path,
                                                       api_key_env="AX_SIM_TEST_KEY", max_retries=0))
    local = SimProvider(ProviderConfig(name=kind, kind="sim", profile="fast"), seed=7, clock=FakeClock())
    dep = deployment(kind, model)
    try:
        got = await adapter.chat(ask(PROMPT, model, response_format=_format(Solution)), dep)
        streamed = [c async for c in adapter.stream(ask(PROMPT, model, response_format=_format(Solution)), dep)]
    finally:
        await adapter.aclose()
    want = await local.chat(ask(PROMPT, model, response_format=_format(Solution)), dep)
    assert Solution.model_validate_json(got.content) and got.content == want.content
    assert "".join(c.delta for c in streamed) == want.content


async def test_gemini_response_schema_in_openapi_style(http: httpx.AsyncClient) -> None:
    schema = {"type": "OBJECT", "properties": {"city": {"type": "STRING"}, "population": {"type": "INTEGER"},
                                               "size": {"type": "STRING", "enum": ["small", "big"]}},
              "required": ["city", "population", "size"]}
    config = {"responseMimeType": "application/json", "responseSchema": schema}
    body = {"contents": [{"role": "user", "parts": [{"text": "Describe Oslo"}]}], "generationConfig": config}
    plain = await http.post("/v1beta/models/gemini-2.5-flash:generateContent", json=body,
                            headers={"x-goog-api-key": "test"})
    assert plain.status_code == 200, plain.text
    value = json.loads(plain.json()["candidates"][0]["content"]["parts"][0]["text"])
    assert isinstance(value["city"], str) and isinstance(value["population"], int)
    assert value["size"] in ("small", "big")

    config = {"responseMimeType": "application/json"}
    body["generationConfig"] = config
    loose = await http.post("/v1beta/models/gemini-2.5-flash:generateContent", json=body,
                            headers={"x-goog-api-key": "test"})
    assert isinstance(json.loads(loose.json()["candidates"][0]["content"]["parts"][0]["text"]), dict)
