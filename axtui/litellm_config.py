"""Translating a LiteLLM proxy ``config.yaml`` into ax's config (``ax config import litellm``).

What maps, LiteLLM → ax:

| LiteLLM                                              | ax                                                     |
| ---------------------------------------------------- | ------------------------------------------------------ |
| ``model_list`` entry, ``litellm_params.model``       | a ``[[providers]]`` (one per endpoint and credentials) |
|   prefix ``openai/`` or none, ``azure/``,            |   kind ``openai``, ``azure``, ``anthropic``,           |
|   ``anthropic/``, ``gemini/``, ``vertex_ai/``,       |   ``gemini``, ``vertex``, ``bedrock``; Ollama, vLLM,   |
|   ``bedrock/``, ``ollama/``, ``groq/`` …             |   Groq … as ``openai`` with their ``base_url``         |
| ``model_name`` ≠ the upstream model                  | ``[[deployments]]`` with ``upstream_model``            |
| several entries with one ``model_name``              | several deployments of one model (ax balances them)    |
| several ``model_name`` s for one provider and model  | the first, and ``[routing.aliases]`` for the others    |
| ``api_key: os.environ/NAME``                         | ``api_key_env = "NAME"`` (a literal key is never kept) |
| ``api_base``, ``api_version``, ``timeout``,          | ``base_url``, ``api_version``, ``timeout_s``,          |
| ``max_retries``, ``weight``, ``rpm`` / ``tpm``       | ``max_retries``, ``weight``, provider rate limits      |
| ``router_settings.routing_strategy``                 | ``[routing] strategy``                                 |
| ``fallbacks`` / ``context_window_fallbacks``         | a routing rule per model with ``fallbacks``            |
| ``allowed_fails`` / ``cooldown_time``                | ``circuit_failures`` / ``circuit_cooldown_s``          |
| ``litellm_settings.cache`` and ``cache_params``      | ``[cache]`` (semantic for the ``*-semantic`` types)    |
| ``max_budget`` / ``budget_duration``                 | an ``ax cost budget set`` command to run               |
| ``general_settings.master_key: os.environ/NAME``     | ``[server] admin_key_env = "NAME"``                    |

Everything else (callbacks, alerting, database URLs, guardrails …) is
reported with the reason it is not mapped and, where ax has a counterpart,
what to use instead. No secret is ever written or printed: values given
literally are reported by where they were, never by what they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import tomli_w

from axtui.errors import ConfigError

__all__ = ["Translation", "translate_litellm"]

#: OpenAI-compatible LiteLLM prefixes and the base URL LiteLLM uses for each when ``api_base`` is not given.
_COMPATIBLE: dict[str, str | None] = {
    "openai": None,
    "text-completion-openai": None,
    "custom_openai": None,
    "hosted_vllm": None,
    "vllm": None,
    "ollama": "http://localhost:11434",
    "ollama_chat": "http://localhost:11434",
    "lm_studio": "http://localhost:1234/v1",
    "groq": "https://api.groq.com/openai/v1",
    "together_ai": "https://api.together.xyz/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "xai": "https://api.x.ai/v1",
    "perplexity": "https://api.perplexity.ai",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "cerebras": "https://api.cerebras.ai/v1",
}
#: The environment variable LiteLLM reads for each prefix when no ``api_key`` is given.
_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "azure": "AZURE_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "groq": "GROQ_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "xai": "XAI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
    "deepinfra": "DEEPINFRA_API_KEY",
    "cerebras": "CEREBRAS_API_KEY",
}
_LOCAL = {"ollama", "ollama_chat", "lm_studio", "hosted_vllm", "vllm"}
_STRATEGIES = {
    "simple-shuffle": ("weighted", None),
    "shuffle": ("weighted", None),
    "least-busy": ("least-busy", None),
    "latency-based-routing": ("latency", None),
    "cost-based-routing": ("cost", None),
    "usage-based-routing": ("least-busy", "ax has no TPM-usage-based strategy; least-busy is the nearest"),
    "usage-based-routing-v2": ("least-busy", "ax has no TPM-usage-based strategy; least-busy is the nearest"),
}
_PERIODS = {"1d": "day", "24h": "day", "7d": "week", "1w": "week", "30d": "month", "1mo": "month", "1M": "month"}
_ENV_REF = re.compile(r"^os\.environ/([A-Za-z_][A-Za-z0-9_]*)$")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Translation:
    """The result: ax's config as data and TOML, and what the user must know or do."""

    config: dict[str, Any]
    #: Things not mapped, each with why and what to use instead.
    unmapped: list[str] = field(default_factory=list)
    #: Commands to run once (budgets live in the store, not the config).
    commands: list[str] = field(default_factory=list)
    #: Environment variables the new config reads.
    env: list[str] = field(default_factory=list)

    def toml(self) -> str:
        """The config file's text."""
        head = "# Translated from a LiteLLM proxy config by `ax config import litellm`.\n"
        if self.env:
            head += "# It reads these environment variables: " + ", ".join(sorted(set(self.env))) + "\n"
        return head + "\n" + tomli_w.dumps(self.config).rstrip("\n") + "\n"


@dataclass
class _Provider:
    name: str
    data: dict[str, Any]
    limited: int = 0
    rpm: int = 0
    tpm: int = 0


class _Translator:
    def __init__(self, known_kinds: set[str]) -> None:
        self.kinds = known_kinds
        self.out = Translation(config={})
        self.providers: dict[tuple[Any, ...], _Provider] = {}
        self.deployments: list[dict[str, Any]] = []
        #: The name each provider/upstream model is served as first; a later name for it is an alias.
        self.served: dict[tuple[str, str], str] = {}
        self.aliases: dict[str, list[str]] = {}
        self.retries: int | None = None
        self.timeout: float | None = None

    def note(self, text: str) -> None:
        self.out.unmapped.append(text)

    def secret(self, value: Any, where: str, suggested: str | None) -> str | None:
        """The variable a secret is read from; a literal secret is reported and never kept."""
        if value is None:
            return None
        match = _ENV_REF.match(str(value).strip())
        if match:
            self.out.env.append(match.group(1))
            return match.group(1)
        fix = (f"put it in the environment variable {suggested}, which the new config reads" if suggested
               else "put it in an environment variable and name that variable in the config")
        self.note(f"{where}: a literal secret was left out (ax never stores secrets); {fix}")
        if suggested:
            self.out.env.append(suggested)
        return suggested

    # -- model_list ---------------------------------------------------------------------------

    def model(self, i: int, entry: Any) -> None:
        where = f"model_list[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("litellm_params"), Mapping):
            self.note(f"{where}: no litellm_params; skipped")
            return
        params: Mapping[str, Any] = entry["litellm_params"]
        public = str(entry.get("model_name") or "").strip()
        target = str(params.get("model") or "").strip()
        if not public or not target:
            self.note(f"{where}: model_name or litellm_params.model is missing; skipped")
            return
        prefix, _, upstream = target.partition("/")
        if not upstream:
            prefix, upstream = "openai", target
        if prefix == "bedrock" and upstream.startswith(("converse/", "invoke/")):
            upstream = upstream.split("/", 1)[1]
        made = self.provider_for(where, prefix, params)
        if made is None:
            return
        provider, kind = made
        rpm, tpm = int(params.get("rpm") or 0), int(params.get("tpm") or 0)
        provider.rpm += rpm
        provider.tpm += tpm
        provider.limited += bool(rpm or tpm)
        if kind == "azure":
            provider.data.setdefault("deployments", {})[public] = upstream
            _add(provider.data.setdefault("models", []), public)
            upstream = public
        first = self.served.setdefault((provider.name, upstream), public)
        if first != public and kind != "azure":
            # One deployment (provider/upstream model) serves one name in ax: the other name calls it.
            _add(self.aliases.setdefault(public, []), first)
            self.note(f"{where}: {public!r} is the same deployment as {first!r} ({provider.name}/{upstream}); "
                      f"written as [routing.aliases] {public} = [{first!r}]")
            return
        weight = params.get("weight")
        if upstream == public and weight is None:
            _add(provider.data.setdefault("models", []), public)
            return
        deployment: dict[str, Any] = {"model": public, "provider": provider.name}
        if upstream != public:
            deployment["upstream_model"] = upstream
        if weight is not None:
            deployment["weight"] = float(weight)
        self.deployments.append(deployment)

    def provider_for(self, where: str, prefix: str, params: Mapping[str, Any]) -> tuple[_Provider, str] | None:
        base = params.get("api_base") or params.get("base_url")
        extra: dict[str, Any] = {}
        if prefix in _COMPATIBLE:
            kind = "openai"
            base = base or _COMPATIBLE[prefix]
            if prefix.startswith("ollama") and base and not str(base).rstrip("/").endswith("/v1"):
                base = str(base).rstrip("/") + "/v1"  # Ollama's OpenAI-compatible API
        elif prefix in ("azure", "azure_ai"):
            kind = "azure"
            if params.get("api_version"):
                extra["api_version"] = str(params["api_version"])
            if params.get("azure_ad_token") or params.get("tenant_id"):
                self.note(f"{where}: Entra ID credentials are not copied; ax's azure kind takes them from the "
                          "azure-identity default chain when no api_key_env is set")
        elif prefix == "anthropic":
            kind = "anthropic"
        elif prefix == "gemini":
            kind = "gemini"
        elif prefix in ("vertex_ai", "vertex_ai_beta"):
            kind = "vertex"
            for src, dst in (("vertex_project", "project"), ("vertex_location", "location")):
                if params.get(src):
                    extra[dst] = str(params[src])
            if params.get("vertex_credentials"):
                self.note(f"{where}: vertex_credentials is not copied; point GOOGLE_APPLICATION_CREDENTIALS at the "
                          "service-account file (ax uses Google's application default credentials)")
        elif prefix == "bedrock":
            kind = "bedrock"
            if params.get("aws_region_name"):
                extra["region"] = str(params["aws_region_name"])
            if params.get("aws_bedrock_runtime_endpoint"):
                base = params["aws_bedrock_runtime_endpoint"]
            for secret in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
                if params.get(secret) and not _ENV_REF.match(str(params[secret])):
                    self.note(f"{where}: {secret} was given literally and left out; ax reads AWS credentials from "
                              "the standard chain (AWS_ACCESS_KEY_ID …, a profile, or a role)")
            if params.get("aws_profile_name"):
                self.note(f"{where}: aws_profile_name: set AWS_PROFILE={params['aws_profile_name']} for ax")
        else:
            self.note(f"{where}: provider prefix {prefix!r} has no ax counterpart; skipped (an OpenAI-compatible "
                      "server can be added as kind = \"openai\" with its base_url)")
            return None
        if kind not in self.kinds:
            self.note(f"{where}: this ax has no {kind!r} provider kind; skipped")
            return None
        if kind == "bedrock" and base:
            extra["endpoint_url"] = str(base)
            base = None
        key_env = None
        if kind not in ("bedrock", "vertex"):
            suggested = _KEY_ENV.get(prefix) or (None if prefix in _LOCAL else f"{prefix.upper()}_API_KEY")
            key_env = self.secret(params.get("api_key"), f"{where}.litellm_params.api_key", suggested)
            if key_env is None and suggested and not (prefix in _LOCAL or (base and _is_local(str(base)))):
                key_env = suggested
                self.out.env.append(suggested)
        identity = (kind, base, key_env, tuple(sorted(extra.items())))
        if identity in self.providers:
            return self.providers[identity], kind
        data: dict[str, Any] = {"name": "", "kind": kind}
        if base:
            data["base_url"] = str(base).rstrip("/")
        if key_env:
            data["api_key_env"] = key_env
        data.update(extra)
        if params.get("timeout") is not None:
            data["timeout_s"] = float(params["timeout"])
        if params.get("max_retries") is not None:
            data["max_retries"] = min(int(params["max_retries"]), 10)
        data["name"] = self.unique_name(_provider_name(prefix, kind, base))
        provider = _Provider(data["name"], data)
        self.providers[identity] = provider
        return provider, kind

    def unique_name(self, name: str) -> str:
        taken = {p.name for p in self.providers.values()}
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name}-{n}", n + 1
        return candidate

    # -- the settings sections ----------------------------------------------------------------

    def router(self, settings: Mapping[str, Any], routing: dict[str, Any]) -> None:
        strategy = settings.get("routing_strategy")
        if strategy is not None:
            mapped = _STRATEGIES.get(str(strategy))
            if mapped is None:
                self.note(f"router_settings.routing_strategy {strategy!r} has no ax counterpart; ax's default "
                          "(latency) applies")
            else:
                routing["strategy"] = mapped[0]
                if mapped[1]:
                    self.note(f"router_settings.routing_strategy {strategy!r}: {mapped[1]}")
        if settings.get("allowed_fails") is not None:
            routing["circuit_failures"] = max(1, int(settings["allowed_fails"]))
        if settings.get("cooldown_time") is not None:
            routing["circuit_cooldown_s"] = max(0.001, float(settings["cooldown_time"]))
        if settings.get("num_retries") is not None:
            self.retries = int(settings["num_retries"])
        if settings.get("timeout") is not None:
            self.timeout = float(settings["timeout"])
        for host_key in ("redis_host", "redis_url"):
            if settings.get(host_key):
                self.note("router_settings redis: set AX_REDIS_URL (redis://[:PASSWORD@]HOST:PORT/0) for limits and "
                          "counters shared across replicas; the password is not copied")
                break
        self.fallbacks(settings, "router_settings", routing)
        for key in settings:
            if key not in {"routing_strategy", "allowed_fails", "cooldown_time", "num_retries", "timeout",
                           "redis_host", "redis_port", "redis_password", "redis_url", "fallbacks",
                           "context_window_fallbacks", "content_policy_fallbacks", "model_group_alias"}:
                self.note(f"router_settings.{key}: no ax counterpart; ignored")
        aliases = settings.get("model_group_alias")
        if isinstance(aliases, Mapping):
            for alias, model in aliases.items():
                target = model.get("model") if isinstance(model, Mapping) else model
                if target:
                    routing.setdefault("aliases", {})[str(alias)] = [str(target)]

    def fallbacks(self, settings: Mapping[str, Any], section: str, routing: dict[str, Any]) -> None:
        for key in ("fallbacks", "context_window_fallbacks"):
            for item in settings.get(key) or []:
                if not isinstance(item, Mapping):
                    continue
                for model, targets in item.items():
                    rules = routing.setdefault("rules", [])
                    rule = next((r for r in rules if r["model"] == str(model)), None)
                    if rule is None:
                        rule = {"name": f"fallbacks-{_NAME_CHARS.sub('-', str(model))}", "model": str(model),
                                "fallbacks": []}
                        rules.append(rule)
                    for t in targets if isinstance(targets, list) else [targets]:
                        _add(rule["fallbacks"], str(t))
            if key == "context_window_fallbacks" and settings.get(key):
                self.note(f"{section}.context_window_fallbacks: ax moves on to the fallbacks after any deployment "
                          "says the prompt is too long, so they are merged with the plain fallbacks")
        if settings.get("content_policy_fallbacks"):
            self.note(f"{section}.content_policy_fallbacks: ax does not retry a refused answer elsewhere; ignored")

    def litellm_settings(self, settings: Mapping[str, Any], routing: dict[str, Any]) -> dict[str, Any]:
        cache: dict[str, Any] = {"enabled": bool(settings.get("cache"))}
        params = settings.get("cache_params") or {}
        if cache["enabled"]:
            kind = str(params.get("type") or "local")
            cache["semantic"] = kind.endswith("semantic")
            if params.get("ttl") is not None:
                cache["ttl_s"] = int(params["ttl"])
            if cache["semantic"] and params.get("similarity_threshold") is not None:
                cache["threshold"] = float(params["similarity_threshold"])
            self.note("litellm_settings.cache: LiteLLM shares cached answers between all callers; ax keeps them per "
                      'user. Set [cache] scope = "global" to share them as before')
            if kind not in ("local", "redis", "redis-semantic", "qdrant-semantic"):
                self.note(f"litellm_settings.cache_params.type {kind!r}: ax keeps its cache in its own store")
        else:
            self.note("litellm_settings.cache is off, so ax's cache is switched off too; set [cache] enabled = true "
                      "to have ax answer repeated questions from its cache")
        if settings.get("num_retries") is not None and self.retries is None:
            self.retries = int(settings["num_retries"])
        if settings.get("request_timeout") is not None and self.timeout is None:
            self.timeout = float(settings["request_timeout"])
        self.fallbacks(settings, "litellm_settings", routing)
        budget = settings.get("max_budget")
        if budget is not None:
            period = _PERIODS.get(str(settings.get("budget_duration") or "30d"))
            if period is None:
                self.note(f"litellm_settings.budget_duration {settings.get('budget_duration')!r}: ax budgets run per "
                          "day, week, month or in total; choose one in the command below")
                period = "month"
            self.out.commands.append(f"ax cost budget set {float(budget):g} --scope global --period {period} --hard")
        for key in ("success_callback", "failure_callback", "callbacks"):
            names = settings.get(key)
            if names:
                self.note(f"litellm_settings.{key} {names}: ax records every call itself (ax monitor export, the "
                          "metrics API) and sends traces over OpenTelemetry ([telemetry] otlp_endpoint); "
                          "callbacks are not run")
        handled = {"cache", "cache_params", "num_retries", "request_timeout", "fallbacks", "context_window_fallbacks",
                   "content_policy_fallbacks", "max_budget", "budget_duration", "success_callback",
                   "failure_callback", "callbacks"}
        for key in settings:
            if key not in handled:
                self.note(f"litellm_settings.{key}: no ax counterpart; ignored")
        return cache

    def general_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        server: dict[str, Any] = {}
        if settings.get("master_key") is not None:
            name = self.secret(settings["master_key"], "general_settings.master_key", "AX_ADMIN_KEY")
            if name and name != "AX_ADMIN_KEY":
                server["admin_key_env"] = name
            self.note("general_settings.master_key: ax's admin key guards /api; callers use gateway keys made with "
                      "`ax keys create` (LiteLLM's virtual keys are not copied)")
        if settings.get("database_url"):
            self.note("general_settings.database_url: ax keeps its own store; set AX_DATABASE_URL to a PostgreSQL "
                      "database for it (LiteLLM's spend logs are not imported)")
        if settings.get("alerting"):
            self.note(f"general_settings.alerting {settings['alerting']}: use ax's alert rules with a webhook "
                      '(ax monitor alerts add "error_rate > 5% for 10m" --webhook URL)')
        for key in settings:
            if key not in {"master_key", "database_url", "alerting"}:
                self.note(f"general_settings.{key}: no ax counterpart; ignored")
        return server

    # -- assembly -----------------------------------------------------------------------------

    def finish(self, routing: dict[str, Any], cache: dict[str, Any], server: dict[str, Any]) -> None:
        config = self.out.config
        providers = []
        ratelimit: dict[str, Any] = {}
        for p in self.providers.values():
            if self.retries is not None:
                p.data.setdefault("max_retries", min(self.retries, 10))
            if self.timeout is not None:
                p.data.setdefault("timeout_s", self.timeout)
            providers.append(p.data)
            if p.rpm:
                ratelimit.setdefault("provider_requests", {})[p.name] = f"{p.rpm}/minute"
            if p.tpm:
                ratelimit.setdefault("provider_tokens", {})[p.name] = f"{p.tpm}/minute"
            if p.limited > 1:
                self.note(f"rpm/tpm of the {p.limited} deployments on provider {p.name!r} are added up into one "
                          "provider limit (ax limits per provider, not per deployment)")
        if providers:
            config["providers"] = providers
        if self.deployments:
            config["deployments"] = self.deployments
        if routing:
            config["routing"] = routing
        if ratelimit:
            config["ratelimit"] = ratelimit
        config["cache"] = cache
        if server:
            config["server"] = server


def translate_litellm(data: Any, *, known_kinds: set[str] | None = None) -> Translation:
    """Translate a parsed LiteLLM proxy config.

    Args:
        data: the YAML document, parsed.
        known_kinds: the provider kinds this ax has (default: the registry's).

    Raises:
        ConfigError: the document is not a LiteLLM proxy config, or what it
            translates to is not a valid ax config (the message says why).
    """
    if not isinstance(data, Mapping) or not any(
        k in data for k in ("model_list", "router_settings", "litellm_settings", "general_settings")
    ):
        raise ConfigError("this is not a LiteLLM proxy config: it has none of model_list, router_settings, "
                          "litellm_settings or general_settings at the top level")
    if known_kinds is None:
        from axtui.providers.registry import kinds

        known_kinds = set(kinds())
    t = _Translator(known_kinds)
    models = data.get("model_list") or []
    if not isinstance(models, list):
        raise ConfigError("model_list must be a list of models (each with model_name and litellm_params)")
    for i, entry in enumerate(models):
        t.model(i, entry)
    routing: dict[str, Any] = {}
    if t.aliases:
        routing["aliases"] = dict(t.aliases)
    t.router(data.get("router_settings") or {}, routing)
    cache = t.litellm_settings(data.get("litellm_settings") or {}, routing)
    server = t.general_settings(data.get("general_settings") or {})
    if data.get("environment_variables"):
        names = ", ".join(sorted(str(k) for k in data["environment_variables"]))
        t.note(f"environment_variables ({names}): values are not copied; set them in ax's environment")
    for key in data:
        if key not in {"model_list", "router_settings", "litellm_settings", "general_settings",
                       "environment_variables"}:
            t.note(f"{key}: no ax counterpart; ignored")
    t.finish(routing, cache, server)
    from axtui.config import parse_settings

    parse_settings(t.out.toml(), "the translated config")
    return t.out


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1") or host.endswith(".local")


def _provider_name(prefix: str, kind: str, base: Any) -> str:
    """``groq``, ``azure``, … for named services; the host for a self-hosted OpenAI-compatible server."""
    self_hosted = prefix in ("openai", "custom_openai", "text-completion-openai", "hosted_vllm", "vllm")
    if self_hosted and base:
        host = urlsplit(str(base)).hostname or prefix
        if host == "api.openai.com":
            return "openai"
        return "local" if _is_local(str(base)) else _NAME_CHARS.sub("-", host.split(".")[0])
    return _NAME_CHARS.sub("-", prefix.replace("_", "-"))
