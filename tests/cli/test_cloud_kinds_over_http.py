"""`ax call` to Azure, Bedrock and Vertex as `ax sim serve` plays them: records, prices and breakdowns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from axtui import locations
from axtui.cost.calculator import cost_usd
from axtui.cost.sheet import PriceSheet
from axtui.types import Usage
from tests.support import sim_serve

pytest.importorskip("botocore")

HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
# model -> the provider that serves it
SERVED = {"gpt-4o": "az", HAIKU: "br", "gemini-2.5-flash": "vx"}


def _ax(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "axtui", *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture(scope="module")
def sim_server() -> Iterator[str]:
    with sim_serve() as url:
        yield url


@pytest.fixture
def env(ax_home: Path, sim_server: str, tmp_path: Path) -> dict[str, str]:
    from axtui.providers.sim.cloud_bedrock import SIM_ACCESS_KEY_ID, SIM_SECRET_ACCESS_KEY

    locations.config_path().write_text(
        f"""
[[providers]]
name = "az"
kind = "azure"
base_url = "{sim_server}/azure"
api_key_env = "SIM_AZURE_KEY"
api_version = "2024-10-21"
models = ["gpt-4o"]
deployments = {{ "gpt-4o" = "gpt-4o-prod" }}

[[providers]]
name = "br"
kind = "bedrock"
region = "us-east-1"
endpoint_url = "{sim_server}/bedrock"
models = ["{HAIKU}"]

[[providers]]
name = "vx"
kind = "vertex"
project = "my-project"
location = "us-central1"
endpoint_url = "{sim_server}/vertex"
api_key_env = "SIM_VERTEX_TOKEN"
models = ["gemini-2.5-flash"]
"""
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**clean, "SIM_AZURE_KEY": "azure-key-for-tests", "SIM_VERTEX_TOKEN": "ya29.test",
            "AWS_ACCESS_KEY_ID": SIM_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SIM_SECRET_ACCESS_KEY,
            "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true"}


def test_each_cloud_serves_calls_that_are_recorded_priced_and_broken_down(env: dict[str, str]) -> None:
    sheet = PriceSheet.load(include_user=False)
    for (model, provider), stream in [(m, s) for m in SERVED.items() for s in (False, True)]:
        done = _ax("call", f"Explain the WAL mode of SQLite briefly (stream={stream})", "--model", model, "--json",
                   *(["--stream"] if stream else []), env=env)
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        record = data["record"]
        assert data["answer"] and record["provider"] == provider and record["status"] == "ok"
        assert record["input_tokens"] > 0 and record["output_tokens"] > 0 and not record["usage_estimated"]
        price = sheet.get(model)
        assert price is not None
        usage = Usage(input_tokens=record["input_tokens"], output_tokens=record["output_tokens"],
                      cached_input_tokens=record.get("cached_input_tokens") or 0,
                      cache_write_tokens=record.get("cache_write_tokens") or 0)
        want = cost_usd(price, usage)
        got = Decimal(str(record["cost_usd"]))
        assert want > 0 and abs(got - want) <= want / 100, f"{model}: recorded {got}, sheet says {want}"
    done = _ax("cost", "breakdown", "--by", "provider", "--json", env=env)
    assert done.returncode == 0, done.stderr
    rows = {row["provider"]: row for row in json.loads(done.stdout)["rows"]}
    assert {"az", "br", "vx"} <= set(rows)
    assert all(Decimal(rows[p]["cost_usd"]) > 0 for p in ("az", "br", "vx"))


def test_a_wrong_aws_secret_fails_with_advice(env: dict[str, str]) -> None:
    done = _ax("call", "hi", "--model", HAIKU, env={**env, "AWS_SECRET_ACCESS_KEY": "wrong-secret-value"})
    assert done.returncode == 1
    assert "InvalidSignatureException" in done.stderr and "AWS credentials" in done.stderr
    assert "wrong-secret-value" not in done.stderr and "Traceback" not in done.stderr
