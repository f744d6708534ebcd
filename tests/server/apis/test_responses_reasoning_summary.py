"""``reasoning.summary`` on ``/v1/responses`` served translated, through `ax serve` over `ax sim serve`.

Claude (4 and later) and Gemini (2.5 and later) share summaries of their thinking: asked for a summary,
the reasoning item carries it as ``summary`` and a stream sends the summary events. A model whose
translated answer can hold no summary is refused, naming the field. (Natively served requests send the
field upstream as it came: `test_responses_native`.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from ...support import use_sim_aws
from .._live import LiveServer

THINKERS = ["claude-haiku-4-5", "gemini-2.5-flash"]


def client(live: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=30)


@pytest.mark.parametrize("model", THINKERS)
def test_a_summary_asked_for_is_the_reasoning_items_summary(over_sim: LiveServer, key: str, model: str) -> None:
    api = client(over_sim, key)
    response = api.responses.create(model=model, input="Why is the sky blue?",
                                    reasoning={"effort": "low", "summary": "auto"})
    assert [o.type for o in response.output] == ["reasoning", "message"]
    reasoning = response.output[0]
    assert reasoning.type == "reasoning"
    assert [s.type for s in reasoning.summary] == ["summary_text"] and reasoning.summary[0].text
    assert not reasoning.content, "the thinking is given once, as the summary"
    assert response.reasoning is not None and response.reasoning.summary == "auto"
    # Without one asked for, the same thinking is the item's content, as before.
    plain = api.responses.create(model=model, input="Why is the sky blue?", reasoning={"effort": "low"})
    assert plain.output[0].type == "reasoning" and plain.output[0].content and not plain.output[0].summary
    assert plain.reasoning is not None and plain.reasoning.summary is None
    # The field's earlier name, still in the SDK's type, asks the same.
    earlier = api.responses.create(model=model, input="Why is the sky blue?",
                                   reasoning={"effort": "low", "generate_summary": "concise"})
    assert earlier.output[0].type == "reasoning" and earlier.output[0].summary


@pytest.mark.parametrize("model", THINKERS)
def test_a_streamed_summary_sends_the_summary_events(over_sim: LiveServer, key: str, model: str) -> None:
    with client(over_sim, key).responses.stream(model=model, input="Why do leaves fall?",
                                                reasoning={"effort": "low", "summary": "detailed"}) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    summary_events = [k for k in kinds if "reasoning" in k]
    assert summary_events[0] == "response.reasoning_summary_part.added"
    assert summary_events[-2:] == ["response.reasoning_summary_text.done", "response.reasoning_summary_part.done"]
    assert set(summary_events[1:-2]) == {"response.reasoning_summary_text.delta"}
    assert "response.reasoning_text.delta" not in kinds
    assert kinds.index("response.reasoning_summary_part.done") < kinds.index("response.output_text.delta")
    deltas = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    (done,) = [e for e in events if e.type == "response.reasoning_summary_text.done"]
    reasoning = final.output[0]
    assert reasoning.type == "reasoning" and deltas and done.text == deltas
    assert [s.text for s in reasoning.summary] == [deltas] and not reasoning.content
    assert final.reasoning is not None and final.reasoning.summary == "detailed"
    # The stored response is the one streamed.
    stored = client(over_sim, key).responses.retrieve(final.id)
    assert stored.output[0].type == "reasoning" and [s.text for s in stored.output[0].summary] == [deltas]


@pytest.mark.parametrize(("model", "reasoning", "says"), [
    # Through chat completions an OpenAI-compatible server shares no summary (OpenAI's own models give theirs
    # only on the Responses API spoken natively).
    ("gpt-4o-mini", {"effort": "low", "summary": "auto"}, "leave reasoning.summary out"),
    # Claude and Gemini think through ax only when an effort asks them to: there would be nothing to summarise.
    ("claude-haiku-4-5", {"summary": "auto"}, "add reasoning.effort"),
    ("gemini-2.5-flash", {"effort": "none", "summary": "concise"}, "add reasoning.effort"),
    ("claude-haiku-4-5", {"effort": "low", "summary": "verbose"}, "auto, concise, detailed"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_a_summary_that_cannot_be_given_is_400_naming_the_field(over_sim: LiveServer, key: str, model: str,
                                                                reasoning: dict[str, Any], says: str,
                                                                stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(over_sim, key).responses.create(model=model, input="Why is the sky blue?", reasoning=reasoning,
                                               stream=stream)  # type: ignore[call-overload]
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "reasoning.summary" and says in body["message"]


@pytest.fixture
def over_bedrock_profile(sim_upstream: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[LiveServer]:
    """A gateway (no keys) serving ``sonnet`` from a Bedrock application inference profile of the sim server."""
    pytest.importorskip("botocore")
    from axtui.config import Settings

    use_sim_aws(monkeypatch, tmp_path)
    settings = Settings.model_validate({
        "providers": [{"name": "br", "kind": "bedrock", "region": "eu-west-1", "max_retries": 0,
                       "endpoint_url": f"{sim_upstream}/bedrock"}],
        "deployments": [{"model": "sonnet", "provider": "br",
                         "upstream_model": "arn:aws:bedrock:eu-west-1:210987654321:application-inference-profile/"
                                           "axsimsonnet45",
                         "base_model": "anthropic.claude-sonnet-4-5-20250929-v1:0"}],
    })
    server = LiveServer(settings, no_auth=True).start()
    yield server
    server.stop()


@pytest.mark.parametrize("stream", [False, True])
def test_a_summary_through_a_profile_whose_arn_names_no_model_is_its_models(
    over_bedrock_profile: LiveServer, stream: bool
) -> None:
    # The profile serves Claude Sonnet 4.5 (its base_model), whose thinking is a summary: the ARN says nothing.
    api = client(over_bedrock_profile, "unused")
    if stream:
        with api.responses.stream(model="sonnet", input="Why do leaves fall?",
                                  reasoning={"effort": "low", "summary": "auto"}) as events:
            kinds = [e.type for e in events]
            response = events.get_final_response()
        assert "response.reasoning_summary_text.delta" in kinds and "response.reasoning_text.delta" not in kinds
    else:
        response = api.responses.create(model="sonnet", input="Why do leaves fall?",
                                        reasoning={"effort": "low", "summary": "auto"})
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary and reasoning.summary[0].text
    assert not reasoning.content
