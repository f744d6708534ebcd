"""``ax route``: explain, status, rules, and A/B reports and feedback, on the simulated fleet."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from axtui.cli import main
from axtui.clock import FakeClock
from axtui.config import ProviderConfig, RoutingConfig, Settings, save_settings
from axtui.engine.compose import build_gateway
from axtui.providers.sim.profiles import _PROFILES, register_profile
from axtui.providers.sim.spec import Faults, Latency, ModelProfile, Profile, ProviderProfile
from axtui.types import Caller, ChatRequest

PROFILE = "routing-ab"


def _profile() -> Profile:
    return Profile(PROFILE, (
        ProviderProfile("east", (ModelProfile("m-a"), ModelProfile("m-b", vision=True)), region="us-east",
                        latency=Latency(100, 150, 1_000), faults=Faults.none()),
        ProviderProfile("west", (ModelProfile("m-b", vision=True),), region="eu-west",
                        latency=Latency(400, 600, 1_000), faults=Faults.none()),
    ))


@pytest.fixture
def configured() -> Iterator[Settings]:
    register_profile(PROFILE, _profile)
    settings = Settings(
        providers=[ProviderConfig(name=n, kind="sim", profile=PROFILE) for n in ("east", "west")],
        routing=RoutingConfig.model_validate({
            "rules": [
                {"name": "eu-residency", "user": "eu-*", "region": "eu-west", "require_region": True},
                {"name": "big", "min_prompt_tokens": 50_000, "strategy": "cost"},
            ],
            "ab_tests": [{"name": "exp", "model": "m-a", "variants": [
                {"name": "control", "model": "m-a", "percent": 50},
                {"name": "treatment", "model": "m-b", "percent": 50}]}],
        }),
    )
    save_settings(settings)
    yield settings
    _PROFILES.pop(PROFILE, None)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["route", *args])
    return result.exit_code, result.output


async def _traffic(settings: Settings, users: int = 20, calls: int = 120) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    async with await build_gateway(settings, clock=FakeClock()) as gw:
        for i in range(calls):
            r = await gw.call(ChatRequest(model="m-a", messages=[{"role": "user", "content": f"question {i}"}]),
                              Caller(user=f"user-{i % users}"))
            out.append((r.record.request_id, r.record.variant))
    return out


@pytest.mark.usefixtures("configured")
def test_explain_shows_variant_rules_candidates_and_reasons() -> None:
    code, out = _run("explain", "m-a", "--user", "eu-ann", "--json")
    assert code == 0, out
    x = json.loads(out)
    assert x["ab_test"]["test"] == "exp"
    assert x["rule"] == "eu-residency" and x["required_region"] == "eu-west"
    assert x["rules_checked"] == [{"rule": "eu-residency", "matched": True, "why": "first rule that matches: it decides"}]
    if x["ab_test"]["variant"] == "treatment":
        assert [c["deployment"] for c in x["candidates"] if c["status"] == "chosen"] == ["west/m-b"]
        skipped = next(c for c in x["candidates"] if c["deployment"] == "east/m-b")
        assert skipped["status"] == "skipped" and "outside eu-west" in skipped["reason"]
    else:
        assert x["error"] and "requires region 'eu-west'" in x["error"]
    code, out = _run("explain", "m-b", "--user", "bob", "--tokens", "60000", "--images")
    assert code == 0, out
    assert "rule 1 ✗ eu-residency: user 'bob' does not match 'eu-*'" in out
    assert "rule 2 ✓ big" in out and "strategy: cost" in out
    assert "east/m-b" in out and "west/m-b" in out


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "nope"], "unknown model 'nope'"),
        (["explain", "m-a", "--strategy", "fastest"], "unknown routing strategy 'fastest'"),
        (["ab", "report", "missing"], "no A/B test named 'missing'"),
        (["ab", "feedback", "chatcmpl-none", "up"], "no recorded call has request id 'chatcmpl-none'"),
        (["ab", "feedback", "chatcmpl-none", "great"], "is not a score; use up, down, or a number"),
    ],
)
def test_bad_input_is_a_clear_usage_error(args: list[str], message: str) -> None:
    code, out = _run(*args)
    assert code == 2
    assert message in out


async def test_ab_report_and_feedback_from_the_call_log(configured: Settings) -> None:
    calls = await _traffic(configured)
    by_variant: dict[str, list[str]] = {}
    for rid, variant in calls:
        assert variant in ("exp:control", "exp:treatment")
        by_variant.setdefault(variant, []).append(rid)
    assert set(by_variant) == {"exp:control", "exp:treatment"}
    control_id = by_variant["exp:control"][0]
    code, out = _run("ab", "feedback", control_id, "up")
    assert code == 0 and "variant control" in out, out
    code, out = _run("ab", "feedback", by_variant["exp:control"][1], "0.5", "-m", "meh")
    assert code == 0, out

    code, out = _run("ab", "report", "exp", "--json")
    assert code == 0, out
    rep = json.loads(out)
    variants = {v["variant"]: v for v in rep["variants"]}
    assert variants["control"]["calls"] == len(by_variant["exp:control"])
    assert variants["treatment"]["calls"] == len(by_variant["exp:treatment"])
    assert variants["control"]["users"] + variants["treatment"]["users"] == 20  # sticky: each user in one arm
    assert variants["control"]["feedback_count"] == 2 and variants["control"]["feedback_mean"] == 0.75
    assert variants["treatment"]["feedback_count"] == 0
    # m-a only on east (fast); treatment's m-b goes to east too (latency), so both are quick
    assert variants["control"]["latency_p50_ms"] > 0 and variants["control"]["errors"] == 0

    code, out = _run("ab", "report", "exp")
    assert code == 0 and "control" in out and "0.75 (2)" in out, out


@pytest.mark.usefixtures("configured")
def test_rules_and_tests_are_listed_in_order() -> None:
    code, out = _run("rules")
    assert code == 0, out
    assert out.index("1. eu-residency") < out.index("2. big")
    assert "only in eu-west" in out and "A/B exp on m-a: control 50% → m-a, treatment 50% → m-b" in out
    code, out = _run("ab", "list", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == "exp"


@pytest.mark.usefixtures("configured")
def test_status_lists_every_deployment_even_without_traffic() -> None:
    code, out = _run("status")
    assert code == 0, out
    for name in ("east/m-a", "east/m-b", "west/m-b"):
        assert name in out
    code, out = _run("status", "--json")
    rows = json.loads(out)["deployments"]
    assert {r["deployment"] for r in rows} == {"east/m-a", "east/m-b", "west/m-b"}
    assert all(r["state"] == "closed" and r["calls"] == 0 and r["available"] for r in rows)
