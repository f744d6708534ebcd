"""``ax config``: where the config file is, what it says, an example to start from."""

from __future__ import annotations

from typing import Any

import click

from axtui.cli._common import console, fail, handle_errors

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

# A self-hosted model costs nothing per token (or its amortised GPU cost).
[prices."ollama/llama3.1:8b"]
input = 0
output = 0

# --- Routing -------------------------------------------------------------
[routing]
strategy = "latency"                  # latency | cost | capability | weighted | least-busy | round-robin
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
'''


@click.group()
def config() -> None:
    """The config file: path, show, init."""


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
    from axtui.config import parse_settings

    path = locations.config_path()
    if path.exists() and not force:
        fail(f"{path} already exists; pass --force to overwrite it")
    parse_settings(EXAMPLE, "the example")  # the example must always be valid
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EXAMPLE, encoding="utf-8")
    console.print(f"wrote {path}; set OPENAI_API_KEY, ANTHROPIC_API_KEY and GEMINI_API_KEY, then try `ax call hello`")
