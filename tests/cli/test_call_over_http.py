"""`ax call` through real adapters to `ax sim serve`, as a user would set it up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from axtui import locations
from tests.support import sim_serve

pytestmark = pytest.mark.processes


def _ax(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "axtui", *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture(scope="module")
def sim_server() -> Iterator[str]:
    with sim_serve() as url:
        yield url


@pytest.fixture
def env(ax_home: Path, sim_server: str) -> dict[str, str]:
    locations.config_path().write_text(
        f"""
[[providers]]
name = "oai"
kind = "openai"
base_url = "{sim_server}/v1"
api_key_env = "SIM_OPENAI_KEY"
models = ["gpt-4o-mini"]

[[providers]]
name = "claude"
kind = "anthropic"
base_url = "{sim_server}/v1"
api_key_env = "SIM_ANTHROPIC_KEY"
models = ["claude-haiku-4-5"]

[[providers]]
name = "gem"
kind = "gemini"
base_url = "{sim_server}/v1beta"
api_key_env = "SIM_GEMINI_KEY"
models = ["gemini-2.5-flash"]
"""
    )
    return {**os.environ, "SIM_OPENAI_KEY": "sk-test-1", "SIM_ANTHROPIC_KEY": "sk-ant-test", "SIM_GEMINI_KEY": "g-test"}


@pytest.mark.parametrize(("model", "provider"), [("gpt-4o-mini", "oai"), ("claude-haiku-4-5", "claude"),
                                                 ("gemini-2.5-flash", "gem")])
@pytest.mark.parametrize("stream", [False, True])
def test_call_works_through_each_wire_format(env: dict[str, str], model: str, provider: str, stream: bool) -> None:
    args = ["call", "Explain the WAL mode of SQLite briefly", "--model", model, "--json"]
    done = _ax(*args, *(["--stream"] if stream else []), env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["answer"]
    rec = data["record"]
    assert rec["provider"] == provider and rec["status"] == "ok"
    assert rec["input_tokens"] > 0 and rec["output_tokens"] > 0 and not rec["usage_estimated"]


def test_plain_streaming_prints_the_answer(env: dict[str, str]) -> None:
    done = _ax("call", "Name three colours", "--model", "claude-haiku-4-5", "--stream", env=env)
    assert done.returncode == 0 and len(done.stdout.strip()) > 10


def test_missing_key_names_the_variable_and_is_a_config_error(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "SIM_GEMINI_KEY"}
    done = _ax("call", "hi", "--model", "gemini-2.5-flash", env=env)
    assert done.returncode == 2  # the setup is wrong, not the provider
    assert "SIM_GEMINI_KEY" in done.stderr and "Traceback" not in done.stderr
