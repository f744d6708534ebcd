"""Bedrock deployments named by ARN are priced and spoken to as the Claude model they serve.

A foundation-model or system inference-profile ARN names its model in its
resource id; an application inference profile's ARN names none, so its
deployment says which with ``base_model``. Calls go over real HTTP on
127.0.0.1 to the simulated Bedrock, which checks SigV4 and serves an
application profile as the model `SIM_APPLICATION_PROFILES` says it was
made from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from axtui.config import Settings, parse_settings
from axtui.cost.sheet import PriceSheet
from axtui.engine.compose import build_catalog, build_gateway
from axtui.errors import ConfigError
from axtui.providers.sim import build_app
from axtui.types import CallRecord, ChatRequest, Deployment, Usage

from ..support import use_sim_aws

pytest.importorskip("botocore")

SONNET_4 = "anthropic.claude-sonnet-4-20250514-v1:0"
#: (form, upstream model, base_model) of a deployment serving Claude Sonnet 4: the forms the brief names.
SONNET_4_FORMS = [
    ("foundation-model ARN", f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET_4}", None),
    ("system inference-profile ARN", f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{SONNET_4}", None),
    ("application inference-profile ARN",
     "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123xyz", SONNET_4),
]

SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
#: The same forms for Claude Sonnet 4.5, which the simulated Bedrock serves (``axsimsonnet45`` is its profile).
SONNET_45_FORMS = [
    ("foundation-model ARN", f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET_45}", None),
    ("system inference-profile ARN", f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{SONNET_45}",
     None),
    ("application inference-profile ARN",
     "arn:aws:bedrock:eu-west-1:210987654321:application-inference-profile/axsimsonnet45", SONNET_45),
]


def _config(upstream: str, base_model: str | None, endpoint: str = "") -> str:
    """A config with one Bedrock provider and one deployment of ``sonnet`` through ``upstream``."""
    endpoint_line = f'endpoint_url = "{endpoint}"\n' if endpoint else ""
    base_line = f'base_model = "{base_model}"\n' if base_model else ""
    return (f'[[providers]]\nname = "br"\nkind = "bedrock"\nregion = "us-east-1"\nmax_retries = 0\n{endpoint_line}'
            f'\n[[deployments]]\nmodel = "sonnet"\nprovider = "br"\nupstream_model = "{upstream}"\n{base_line}')


def _served(settings: Settings) -> Deployment:
    (deployment,) = build_catalog(settings).resolve("sonnet")
    return deployment


def _usage(record: CallRecord) -> Usage:
    return Usage(input_tokens=record.input_tokens, output_tokens=record.output_tokens,
                 cached_input_tokens=record.cached_input_tokens, cache_write_tokens=record.cache_write_tokens,
                 reasoning_tokens=record.reasoning_tokens)


@pytest.mark.parametrize(("form", "upstream", "base_model"), SONNET_4_FORMS, ids=[f[0] for f in SONNET_4_FORMS])
def test_each_arn_form_is_priced_as_the_model_it_serves(form: str, upstream: str, base_model: str | None) -> None:
    sheet = PriceSheet.load(include_user=False)
    deployment = _served(parse_settings(_config(upstream, base_model), "ax.toml"))
    assert deployment.upstream_model == upstream, "the ARN is still what is called"
    price = sheet.lookup(deployment)
    want = sheet.get(SONNET_4)
    assert want is not None and price == want, f"a {form} is priced as {SONNET_4}"
    assert price.max_output == 64_000 and price.rates.cache_write is not None
    usage = Usage(input_tokens=12_000, output_tokens=900, cached_input_tokens=8_000, cache_write_tokens=2_000)
    plain = Deployment(provider="br", model="sonnet", upstream_model=SONNET_4)
    cost = sheet.cost(deployment, usage)
    assert cost is not None and cost == sheet.cost(plain, usage) and cost > 0


def test_an_application_profile_without_its_model_is_refused_naming_the_fix() -> None:
    profile = SONNET_4_FORMS[2][1]
    with pytest.raises(ConfigError) as caught:
        parse_settings(_config(profile, None), "ax.toml")
    message = str(caught.value)
    assert "ax.toml, line 10: deployments.0.upstream_model:" in message, message
    assert "application inference profile" in message and 'add base_model = "anthropic.claude-' in message

    listed = f'[[providers]]\nname = "br"\nkind = "bedrock"\nregion = "us-east-1"\nmodels = ["{profile}"]\n'
    with pytest.raises(ConfigError) as caught:
        parse_settings(listed, "ax.toml")
    message = str(caught.value)
    assert "ax.toml, line 5: providers.0.models:" in message, message
    assert f'upstream_model = "{profile}", base_model = ' in message and "[[deployments]]" in message

    with pytest.raises(ConfigError, match=r"line 11: deployments\.0\.base_model: base_model 'claude-sonnet-4' names "
                                          r"no Bedrock model; .*anthropic\.claude-sonnet-4-20250514-v1:0"):
        parse_settings(_config(profile, "claude-sonnet-4"), "ax.toml")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The simulated Bedrock's test credentials in the environment, and no other AWS configuration."""
    use_sim_aws(monkeypatch, tmp_path)


@pytest.fixture
async def bedrock_url(aws: None) -> AsyncIterator[str]:
    """The simulated Bedrock runtime of a fresh sim server on 127.0.0.1."""
    server = TestServer(build_app("fast", seed=3), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/") + "/bedrock"
    await server.close()


def _thoughtful(prompt: str, *, stream: bool = False) -> ChatRequest:
    return ChatRequest(model="sonnet", messages=[{"role": "user", "content": prompt}], reasoning_effort="low",
                       temperature=0.5, stream=stream)


@pytest.mark.parametrize(("form", "upstream", "base_model"), SONNET_45_FORMS, ids=[f[0] for f in SONNET_45_FORMS])
async def test_a_call_through_each_arn_form_thinks_and_is_priced_end_to_end(
    bedrock_url: str, form: str, upstream: str, base_model: str | None
) -> None:
    settings = parse_settings(_config(upstream, base_model, bedrock_url), "ax.toml")
    sheet = PriceSheet.load(include_user=False)
    plain = Deployment(provider="br", model="sonnet", upstream_model=SONNET_45)
    async with await build_gateway(settings) as gateway:
        done = await gateway.call(_thoughtful("Which of two sorted lists should a merge read first?"))
        streamed = gateway.stream(_thoughtful("How does a B-tree stay balanced?", stream=True))
        chunks = [chunk async for chunk in streamed]
    answer = done.response
    assert answer.content and answer.reasoning, f"Claude's thinking was asked for through a {form}"
    assert answer.thinking_blocks and answer.thinking_blocks[0].get("signature")
    assert "".join(c.delta for c in chunks) and "".join(c.reasoning for c in chunks)
    assert any(c.reasoning_signature for c in chunks)
    for record in (done.record, streamed.record):
        assert record.status == "ok" and record.model == upstream, record.error_message
        assert record.cost_nanos is not None and record.cost_nanos > 0, f"a call through a {form} is priced"
        assert record.cost_nanos == sheet.cost(plain, _usage(record)), f"priced as {SONNET_45}"

