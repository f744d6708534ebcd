"""`Settings`: every section together, and the checks that span sections."""

from __future__ import annotations

import re

import tomli_w
from pydantic import Field, model_validator

from axtui.bedrock_ids import APPLICATION_PROFILE, arn_resource, is_model_id, named_model
from axtui.config._base import _At, _Section
from axtui.config._providers import DeploymentConfig, PriceOverride, ProviderConfig
from axtui.config._routing import RoutingConfig
from axtui.config._sections import (
    AlertsConfig,
    BudgetsConfig,
    CacheConfig,
    MetricsConfig,
    RateLimitConfig,
    RecorderConfig,
    ServerConfig,
    TelemetryConfig,
    UIConfig,
    WebhooksConfig,
)

__all__ = ["Settings"]


class Settings(_Section):
    """Everything configurable. An empty file serves the demo fleet."""

    providers: list[ProviderConfig] = Field(default_factory=list)
    deployments: list[DeploymentConfig] = Field(default_factory=list)
    recorder: RecorderConfig = Field(default_factory=RecorderConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    ratelimit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    ui: UIConfig = Field(default_factory=UIConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    prices: dict[str, PriceOverride] = Field(default_factory=dict)

    @property
    def uses_demo_fleet(self) -> bool:
        """True when no provider is configured: the built-in fleet serves."""
        return not any(p.enabled for p in self.providers)

    @model_validator(mode="after")
    def _names_unique(self) -> Settings:
        seen: set[str] = set()
        for p in self.providers:
            if p.name in seen:
                raise ValueError(f"two providers are named {p.name!r}; give each a unique name")
            seen.add(p.name)
        for d in self.deployments:
            if self.providers and d.provider not in seen:
                raise ValueError(
                    f"deployment of {d.model!r} names provider {d.provider!r}, which is not configured; "
                    f"configured: {', '.join(sorted(seen))}"
                )
        self._one_model_per_deployment()
        return self

    @model_validator(mode="after")
    def _bedrock_models_named(self) -> Settings:
        """Refuse a Bedrock application inference profile whose model is not named, and a base_model that is no id.

        The profile's ARN is opaque, so without ``base_model`` ax would call
        it as no model at all: no price, no thinking, the wrong request.
        """
        bedrock = {p.name for p in self.providers if p.kind == "bedrock"}
        for i, p in enumerate(self.providers):
            for m in p.models if p.name in bedrock else ():
                if _is_application_profile(m):
                    raise _At(
                        f"provider {p.name!r} lists {m!r}, an application inference profile: its ARN does not say "
                        "which model it serves, so ax cannot tell which prices and features apply; serve it from a "
                        f"[[deployments]] entry that names its model: model = \"…\", provider = {_toml_string(p.name)}, "
                        f"upstream_model = {_toml_string(m)}, base_model = \"anthropic.claude-…\" (the model id the "
                        "profile was made from), and remove it from models",
                        "providers", i, "models",
                    )
        for i, d in enumerate(self.deployments):
            if d.provider not in bedrock:
                continue
            upstream = d.upstream_model or d.model
            if d.base_model is None and _is_application_profile(upstream):
                raise _At(
                    f"[[deployments]] number {i + 1} calls {upstream!r}, an application inference profile: its ARN "
                    "does not say which model it serves, so ax cannot tell which prices and features (Claude's "
                    "thinking, say) apply; add base_model = \"anthropic.claude-…\" with the id of the model the "
                    "profile was made from (`aws bedrock get-inference-profile` lists it under models)",
                    "deployments", i, "upstream_model" if d.upstream_model else "model",
                )
            named = None if d.base_model is None else named_model(d.base_model)
            if d.base_model is not None and not (named and is_model_id(named)):
                raise _At(
                    f"base_model {d.base_model!r} names no Bedrock model; give the id of the model the deployment "
                    "serves, like \"anthropic.claude-sonnet-4-20250514-v1:0\" (or its inference profile "
                    "\"us.anthropic.claude-sonnet-4-20250514-v1:0\", or its foundation-model ARN)",
                    "deployments", i, "base_model",
                )
        return self

    def _one_model_per_deployment(self) -> None:
        """Refuse two model names for one provider/upstream_model: the catalog would serve only the first.

        A deployment is identified by ``provider/upstream_model`` (health,
        weights, prices and records are kept by it), so one upstream model
        of one provider is one deployment, of one model. An entry with the
        same model as a provider's ``models`` list or an earlier entry
        refines that deployment, as before.
        """
        first: dict[str, tuple[str, str]] = {}  # deployment id -> (what declared it first, its model)
        for p in self.providers:
            for m in p.models:
                first.setdefault(f"{p.name}/{m}", (f"the models list of provider {p.name!r}", m))
        for i, d in enumerate(self.deployments):
            upstream = d.upstream_model or d.model
            dep_id = f"{d.provider}/{upstream}"
            before, model = first.setdefault(dep_id, (f"[[deployments]] number {i + 1}", d.model))
            if model == d.model:
                continue
            served_elsewhere = any(m == d.model for p in self.providers for m in p.models) or any(
                e.model == d.model and f"{e.provider}/{e.upstream_model or e.model}" != dep_id
                for e in self.deployments
            )
            fix = (
                f"remove this entry ({d.model!r} keeps its other deployments), or point it at another provider "
                "or upstream model"
                if served_elsewhere
                else f"to call it by both names, remove this entry and add an alias: [routing.aliases] "
                f"{_toml_key(d.model)} = [{_toml_string(model)}]"
            )
            raise _At(
                f"[[deployments]] number {i + 1} serves model {d.model!r} from upstream model {upstream!r} of "
                f"provider {d.provider!r}, which {before} already serves as model {model!r}; a deployment is "
                f"identified by provider/upstream_model ({dep_id!r}), so only {model!r} would be served by it and "
                f"this entry would be dropped: {fix}",
                "deployments",
                i,
            )


def _is_application_profile(model: str) -> bool:
    resource = arn_resource(model)
    return resource is not None and resource[0] == APPLICATION_PROFILE


def _toml_key(name: str) -> str:
    """``name`` as a TOML key: bare when it can be, quoted otherwise."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_string(name)


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string."""
    return tomli_w.dumps({"x": text}).partition("=")[2].strip()
