"""`ax config import litellm`: a LiteLLM proxy config becomes ax's, with nothing secret carried over."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from axtui.cli import main
from axtui.config import parse_settings
from axtui.errors import ConfigError
from axtui.litellm_config import translate_litellm

SAMPLE = Path(__file__).parent / "litellm" / "proxy_config.yaml"
SECRETS = ("THIS-IS-A-LITERAL-SECRET", "LITERAL-MASTER-KEY", "SECRETSECRET")


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def _translated() -> dict[str, Any]:
    result = _run("config", "import", "litellm", str(SAMPLE))
    assert result.exit_code == 0, result.output
    return tomllib.loads(result.stdout)


def test_the_translation_is_a_valid_ax_config_with_each_endpoint_a_provider() -> None:
    result = _run("config", "import", "litellm", str(SAMPLE))
    assert result.exit_code == 0, result.output
    settings = parse_settings(result.stdout)
    by_name = {p.name: p for p in settings.providers}
    assert by_name["openai"].models == ["gpt-4o", "gpt-4o-mini"]
    assert by_name["openai"].api_key_env == "OPENAI_API_KEY"
    assert by_name["anthropic"].kind == "anthropic"
    assert by_name["gemini"].api_key_env == "GEMINI_API_KEY"
    assert by_name["ollama"].base_url == "http://localhost:11434/v1", "Ollama's OpenAI-compatible API lives under /v1"
    assert by_name["groq"].base_url == "https://api.groq.com/openai/v1"
    assert all(p.max_retries == 3 and p.timeout_s == 30 for p in settings.providers)
    deployments = {(d.model, d.provider): d for d in settings.deployments}
    assert deployments[("claude-sonnet", "anthropic")].upstream_model == "claude-3-5-sonnet-20241022"
    vllm = deployments[("llama3", "gpu-box")]
    assert (vllm.upstream_model, vllm.weight) == ("meta-llama/Meta-Llama-3-8B-Instruct", 3.0)
    assert "llama3" in by_name["ollama"].models, "two entries of one model_name are two deployments ax balances"


def test_routing_cache_and_limits_follow_litellms_settings() -> None:
    config = _translated()
    routing = config["routing"]
    assert routing["strategy"] == "latency"
    assert (routing["circuit_failures"], routing["circuit_cooldown_s"]) == (3, 60)
    rules = {r["model"]: r["fallbacks"] for r in routing["rules"]}
    assert rules == {"gpt-4o": ["claude-sonnet"], "gpt-4o-mini": ["gpt-4o"]}
    assert config["cache"] == {"enabled": True, "semantic": True, "ttl_s": 600, "threshold": 0.92}
    assert config["ratelimit"]["provider_requests"] == {"openai": "500/minute"}
    assert config["ratelimit"]["provider_tokens"] == {"openai": "200000/minute"}


def test_no_secret_is_written_or_printed_and_references_become_variable_names() -> None:
    result = _run("config", "import", "litellm", str(SAMPLE))
    everything = result.stdout + result.stderr
    for secret in SECRETS:
        assert secret not in everything
    config = tomllib.loads(result.stdout)
    anthropic = next(p for p in config["providers"] if p["kind"] == "anthropic")
    assert anthropic["api_key_env"] == "ANTHROPIC_API_KEY", "a literal key's place is taken by the usual variable"
    assert "model_list[3].litellm_params.api_key: a literal secret was left out" in result.stderr
    assert "general_settings.master_key: a literal secret was left out" in result.stderr
    assert "SLACK_WEBHOOK_URL" in result.stderr and "values are not copied" in result.stderr


def test_what_cannot_be_mapped_is_listed_with_the_reason_and_budgets_become_commands() -> None:
    result = _run("config", "import", "litellm", str(SAMPLE))
    err = " ".join(result.stderr.split())
    assert "provider prefix 'cohere' has no ax counterpart; skipped" in err
    assert "litellm_settings.success_callback ['langfuse']" in err and "OpenTelemetry" in err
    assert "litellm_settings.drop_params: no ax counterpart" in err
    assert 'scope = "global"' in err, "the cache's sharing differs and the user is told how to keep it"
    assert "ax cost budget set 250 --scope global --period month --hard" in err
    assert "AX_REDIS_URL" in err and "AX_DATABASE_URL" in err


def test_azure_entries_become_an_azure_provider_with_its_deployments() -> None:
    result = _run("config", "import", "litellm", str(SAMPLE))
    by_name = {p.name: p for p in parse_settings(result.stdout).providers}
    azure = by_name["azure"]
    assert azure.kind == "azure"
    assert azure.base_url == "https://my-resource.openai.azure.com"
    assert (azure.api_key_env, azure.api_version) == ("AZURE_API_KEY", "2024-10-21")
    assert azure.deployments == {"azure-gpt-4o": "my-gpt4o-deployment"}
    assert azure.models == ["azure-gpt-4o"]
    assert "no 'azure' provider kind" not in result.stderr


def test_vertex_entries_become_a_vertex_provider_with_project_and_location() -> None:
    result = _run("config", "import", "litellm", str(SAMPLE))
    settings = parse_settings(result.stdout)
    vertex = next(p for p in settings.providers if p.kind == "vertex")
    assert (vertex.project, vertex.location, vertex.api_key_env) == ("my-project", "us-central1", None)
    served = next(d for d in settings.deployments if d.model == "gemini-vertex")
    assert (served.provider, served.upstream_model) == (vertex.name, "gemini-1.5-pro")
    assert "no 'vertex' provider kind" not in result.stderr


def test_bedrock_entries_become_a_bedrock_provider_without_copying_aws_keys() -> None:
    result = _run("config", "import", "litellm", str(SAMPLE))
    settings = parse_settings(result.stdout)
    bedrock = next(p for p in settings.providers if p.kind == "bedrock")
    assert (bedrock.region, bedrock.api_key_env, bedrock.endpoint_url) == ("us-east-1", None, None)
    served = next(d for d in settings.deployments if d.model == "claude-bedrock")
    assert (served.provider, served.upstream_model) == (bedrock.name, "anthropic.claude-3-5-sonnet-20240620-v1:0")
    assert "AWS_SECRET_ACCESS_KEY" not in result.stdout
    assert "no 'bedrock' provider kind" not in result.stderr


@pytest.mark.parametrize("kind", ["azure", "bedrock", "vertex"])
def test_cloud_entries_are_reported_when_this_ax_lacks_their_kind(kind: str) -> None:
    data = yaml.safe_load(SAMPLE.read_text())
    result = translate_litellm(data, known_kinds={"openai", "anthropic", "gemini"})
    assert any(f"no {kind!r} provider kind; skipped" in line for line in result.unmapped)


def test_output_file_is_private_and_not_replaced_without_force(tmp_path: Path) -> None:
    out = tmp_path / "ax" / "config.toml"
    assert _run("config", "import", "litellm", str(SAMPLE), "-o", str(out)).exit_code == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    parse_settings(out.read_text())
    again = _run("config", "import", "litellm", str(SAMPLE), "-o", str(out))
    assert again.exit_code != 0 and "--force" in again.output
    assert _run("config", "import", "litellm", str(SAMPLE), "-o", str(out), "--force").exit_code == 0


def test_bad_files_get_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("model_list:\n  - model_name: x\n    litellm_params: [unclosed\n")
    result = _run("config", "import", "litellm", str(broken))
    assert result.exit_code != 0 and "not valid YAML at line" in result.output
    other = tmp_path / "other.yaml"
    other.write_text("services:\n  web: {}\n")
    result = _run("config", "import", "litellm", str(other))
    assert result.exit_code != 0 and "not a LiteLLM proxy config" in result.output
    assert not isinstance(result.exception, ConfigError) or result.exit_code != 0
    missing = _run("config", "import", "litellm", str(tmp_path / "nope.yaml"))
    assert missing.exit_code != 0 and "cannot be read" in missing.output


def test_a_minimal_config_and_strategies_map_one_to_one() -> None:
    for litellm, ax in [("simple-shuffle", "weighted"), ("least-busy", "least-busy"), ("cost-based-routing", "cost")]:
        data = {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m"}}],
                "router_settings": {"routing_strategy": litellm}}
        result = translate_litellm(data)
        assert result.config["routing"]["strategy"] == ax
        assert result.config["cache"] == {"enabled": False}, "LiteLLM without a cache stays without one"


def test_two_names_for_one_deployment_become_a_model_and_its_alias() -> None:
    params = {"model": "openai/good", "api_key": "os.environ/OPENAI_API_KEY"}
    out = translate_litellm({"model_list": [{"model_name": "fast", "litellm_params": params},
                                            {"model_name": "cheap", "litellm_params": dict(params)}]})
    settings = parse_settings(out.toml())  # a deployment serves one name: the other calls it
    assert settings.routing.aliases == {"cheap": ["fast"]}
    assert [(d.model, d.upstream_model) for d in settings.deployments] == [("fast", "good")]
    assert any("'cheap' is the same deployment as 'fast'" in n for n in out.unmapped)
