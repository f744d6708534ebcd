"""``ax config``: where the config file is, what it says, an example to start from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from axtui.cli._common import console, fail, handle_errors
from axtui.config import ROUTING_STRATEGIES

EXAMPLE = '''\
# ax configuration. Every section is optional; with no [[providers]] ax
# serves its built-in simulated fleet. Keys are read from the environment
# variables named here and are never stored.

# --- Providers -----------------------------------------------------------
# The simulated fleet, handy next to real providers for testing.
# [[providers]]
# name = "sim"
# kind = "sim"
# profile = "demo"
# models = ["gpt-4o-mini"]

[[providers]]
name = "openai"
kind = "openai"                       # OpenAI chat completions wire format
api_key_env = "OPENAI_API_KEY"
models = ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"]

[[providers]]
name = "anthropic"
kind = "anthropic"
api_key_env = "ANTHROPIC_API_KEY"
models = ["claude-sonnet-4-5", "claude-haiku-4-5"]

[[providers]]
name = "gemini"
kind = "gemini"
api_key_env = "GEMINI_API_KEY"
models = ["gemini-2.5-flash", "gemini-2.5-pro"]

[[providers]]
name = "ollama"
kind = "openai"                       # any OpenAI-compatible server: Ollama, vLLM, LM Studio, Groq, OpenRouter
base_url = "http://127.0.0.1:11434/v1"
models = ["llama3.1:8b"]
enabled = false                       # switch on when Ollama runs here
# responses = "native"                # /v1/responses sent to the server's own POST /responses (default:
                                      # native for api.openai.com, "translate" to chat elsewhere)

# Azure OpenAI: models map to the resource's deployments. The key comes from
# api_key_env; without it, an Entra ID token (`pip install 'axtui[azure]'`).
# [[providers]]
# name = "azure"
# kind = "azure"
# base_url = "https://my-resource.openai.azure.com"
# api_key_env = "AZURE_API_KEY"
# api_version = "2024-10-21"
# models = ["gpt-4o"]
# deployments = { "gpt-4o" = "my-gpt4o-deployment" }
# responses = "native"                # /v1/responses on the resource's v1 API, where Azure offers it

# AWS Bedrock (Converse API), signed with the standard AWS credentials:
# AWS_ACCESS_KEY_ID…, AWS_PROFILE or a role (`pip install 'axtui[bedrock]'`).
# [[providers]]
# name = "bedrock"
# kind = "bedrock"
# region = "us-east-1"
# models = ["us.anthropic.claude-haiku-4-5-20251001-v1:0", "amazon.nova-pro-v1:0"]
# endpoint_url = "https://bedrock-runtime.us-east-1.amazonaws.com"   # optional

# Google Vertex AI: Gemini (and claude-* models on Vertex), with application
# default credentials or GOOGLE_APPLICATION_CREDENTIALS (`pip install 'axtui[vertex]'`).
# [[providers]]
# name = "vertex"
# kind = "vertex"
# project = "my-project"
# location = "us-central1"
# models = ["gemini-2.0-flash-001", "claude-haiku-4-5@20251001"]

# A self-hosted model costs nothing per token (or its amortised GPU cost).
[prices."ollama/llama3.1:8b"]
input = 0
output = 0

# --- Routing -------------------------------------------------------------
[routing]
strategy = "latency"                  # @STRATEGIES@
aliases = { fast = ["gpt-4o-mini", "gemini-2.5-flash", "claude-haiku-4-5"], smart = ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro"] }

# [[routing.rules]]
# name = "long prompts go to the big context"
# model = "*"
# min_prompt_tokens = 100000
# strategy = "cost"
# deployments = ["gemini/gemini-2.5-pro"]

# --- Cache ---------------------------------------------------------------
[cache]
enabled = true
ttl_s = 3600
scope = "user"                        # user | key | global
semantic = true
threshold = 0.9

# --- Rate limits ---------------------------------------------------------
[ratelimit]
backend = "store"                     # store (all local ax processes) | memory | redis (AX_REDIS_URL)
# user_requests = "60/minute"
# user_tokens = "100000/minute"

# --- Budgets and the recorder --------------------------------------------
[budgets]
timezone = "UTC"
thresholds = [50, 80, 100]

[recorder]
flush_interval_ms = 250
log_prompts = false                   # prompts are stored only as hashes unless this is true

[server]
host = "127.0.0.1"
port = 8787

# --- Traces (OpenTelemetry; needs `pip install 'axtui[otel]'`) ----------------
# [telemetry]
# otlp_endpoint = "http://127.0.0.1:4318"   # or set OTEL_EXPORTER_OTLP_ENDPOINT
# service_name = "ax"                       # or OTEL_SERVICE_NAME
# capture_content = false                   # prompts and answers in spans (scrubbed)
# export_metrics = false                    # also push the /metrics figures over OTLP
'''.replace("@STRATEGIES@", " | ".join(ROUTING_STRATEGIES))  # every strategy there is, never a list that drifts


@click.group()
def config() -> None:
    """The config file: path, show, init, import."""


@config.command()
@handle_errors
def path() -> None:
    """Print where the config file is (it may not exist yet)."""
    from axtui import locations

    click.echo(str(locations.config_path()))


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Print the effective settings as JSON.")
@handle_errors
def show(as_json: bool) -> None:
    """Print the effective settings (defaults filled in, secrets never shown)."""
    import tomli_w
    from rich.markup import escape

    from axtui import locations
    from axtui.cli._common import dump_json, err_console
    from axtui.cli._setup import check_providers
    from axtui.config import load_settings
    from axtui.engine.compose import effective_providers

    path = locations.config_path()
    settings = effective_providers(load_settings())
    for warning in check_providers(settings):
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    data = _hide_secrets(settings.model_dump(mode="json", exclude_none=True))
    if as_json:
        dump_json(data)
        return
    origin = str(path) if path.exists() else f"{path} (not there: defaults and the demo fleet)"
    console.print(f"# from {origin}", markup=False)
    click.echo(tomli_w.dumps(data))


def _hide_secrets(value: Any, key: str = "") -> Any:
    """The settings as printed: credential headers masked, key-shaped text scrubbed anywhere."""
    from axtui.redaction import REDACTED, is_secret_header, scrub

    if isinstance(value, dict):
        if key == "headers":
            return {k: REDACTED if is_secret_header(k) else scrub(str(v)) for k, v in value.items()}
        return {k: _hide_secrets(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide_secrets(v, key) for v in value]
    if isinstance(value, str):
        return scrub(value)
    return value


@config.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@handle_errors
def init(force: bool) -> None:
    """Write a commented example config with real providers."""
    from axtui import locations
    from axtui.config import parse_settings, write_config_text

    path = locations.config_path()
    if path.exists() and not force:
        fail(f"{path} already exists; pass --force to overwrite it")
    parse_settings(EXAMPLE, "the example")  # the example must always be valid
    write_config_text(path, EXAMPLE)
    console.print(f"wrote {path}; set OPENAI_API_KEY, ANTHROPIC_API_KEY and GEMINI_API_KEY, then try `ax call hello`")


@config.group(name="import")
def import_() -> None:
    """Translate another gateway's config into ax's."""


@import_.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the config here (readable by you only) instead of printing it.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@handle_errors
def litellm(file: Path, output: Path | None, force: bool) -> None:
    """Translate a LiteLLM proxy config.yaml into ax's TOML.

    Models, endpoints, key variables, routing strategy, fallbacks, retries,
    rate limits and the cache are translated; what cannot be mapped is
    listed on stderr with the reason; budgets become commands to run. No
    secret is ever written: `os.environ/NAME` becomes `api_key_env = "NAME"`
    and literal keys are left out.

    Example: ax config import litellm litellm_config.yaml -o ~/.config/ax/config.toml
    """
    import yaml

    from axtui import locations
    from axtui.cli._common import err_console
    from axtui.litellm_config import translate_litellm

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{file}: cannot be read ({exc.__class__.__name__}: {exc.strerror if isinstance(exc, OSError) else exc})")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        fail(f"{file}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}; fix the file and try again")
    result = translate_litellm(data)
    toml = result.toml()
    if output is None:
        click.echo(toml, nl=False)
    else:
        if output.exists() and not force:
            fail(f"{output} already exists; pass --force to replace it")
        locations.private_dir(output.parent)
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(toml)
        err_console.print(f"wrote {output}", markup=False)
    if result.unmapped:
        err_console.print(f"not mapped ({len(result.unmapped)}):", markup=False)
        for line in result.unmapped:
            err_console.print(f"  - {line}", markup=False, soft_wrap=True)
    if result.commands:
        err_console.print("run once (budgets live in ax's store, not its config):", markup=False)
        for line in result.commands:
            err_console.print(f"  {line}", markup=False, soft_wrap=True)
