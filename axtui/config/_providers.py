"""Providers and deployments: the upstream accounts ax calls and the models each serves."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from pydantic import Field, field_validator, model_validator

from axtui.config._base import _HEADER_NAME, _At, _control, _Section, _shown_url, _url_problem

__all__ = ["DeploymentConfig", "PriceOverride", "ProviderConfig"]


class PriceOverride(_Section):
    """Per-million-token prices in dollars that replace the price sheet's.

    Keyed in ``[prices]`` by a deployment id (``"local/llama3.1:8b"``) or a
    model name (``"gpt-4o"``). Unset cache and reasoning prices fall back
    to the input (cache reads and writes) or output (reasoning) price; a
    self-hosted model is ``{ input = 0, output = 0 }``.
    """

    input: Decimal = Field(default=Decimal(0), ge=0)
    output: Decimal = Field(default=Decimal(0), ge=0)
    cached_input: Decimal | None = Field(default=None, ge=0)
    cache_write: Decimal | None = Field(default=None, ge=0)
    cache_write_1h: Decimal | None = Field(default=None, ge=0)
    reasoning: Decimal | None = Field(default=None, ge=0)


class ProviderConfig(_Section):
    """One upstream provider account.

    ``kind`` names a registered provider kind (``openai``, ``anthropic``,
    ``gemini``, ``azure``, ``bedrock``, ``vertex``, ``sim``, or a plugin's). The key is read from the
    environment variable named by ``api_key_env`` at call time; it is never
    stored.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str = "openai"
    base_url: str | None = None
    api_key_env: str | None = None
    models: list[str] = Field(default_factory=list)
    region: str = ""
    #: Azure OpenAI: the ``api-version`` query parameter.
    api_version: str | None = None
    #: Azure OpenAI: model name -> the Azure deployment that serves it.
    deployments: dict[str, str] = Field(default_factory=dict)
    #: Bedrock and Vertex AI: an endpoint that replaces the regional one.
    endpoint_url: str | None = None
    #: Vertex AI: the Google Cloud project and location (region).
    project: str | None = None
    location: str | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    headers: dict[str, str] = Field(default_factory=dict)
    profile: str | None = None
    enabled: bool = True
    #: OpenAI and Azure: how ``/v1/responses`` reaches this provider: ``native``
    #: (its own ``POST /responses``) or ``translate`` (as chat completions).
    #: Unset: native for api.openai.com, translate elsewhere (many servers lack it).
    responses: str | None = None

    @field_validator("responses")
    @classmethod
    def _responses_mode(cls, value: str | None) -> str | None:
        if value is not None and value not in ("native", "translate"):
            raise ValueError(
                f"responses must be \"native\" (the server has POST /responses) or \"translate\" (serve the "
                f"Responses API as chat completions), not {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _responses_kind(self) -> ProviderConfig:
        if self.responses == "native" and self.kind not in ("openai", "azure"):
            raise ValueError(
                f"provider {self.name!r}: responses = \"native\" is for kinds \"openai\" and \"azure\" (a "
                f"server with POST /responses); a provider of kind {self.kind!r} serves the Responses API "
                f"translated, so leave responses out"
            )
        return self

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        problem = None if value is None else _url_problem(value)
        if problem is not None:
            raise ValueError(
                f"base_url {_shown_url(str(value))!r} {problem}; write it like "
                "https://api.openai.com/v1 or http://127.0.0.1:11434/v1 (http:// or https://, a host name or "
                "address, an IPv6 address in brackets as in http://[::1]:8080/v1, an optional :PORT from 1 to "
                "65535, then the path)"
            )
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        problem = None if value is None else _url_problem(value)
        if problem is not None:
            raise ValueError(
                f"endpoint_url {_shown_url(str(value))!r} {problem}; write it like "
                "https://bedrock-runtime.us-east-1.amazonaws.com (http:// or https://, a host, an optional :PORT "
                "from 1 to 65535), or leave it out for the region's own endpoint"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _header_lines(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise _At(
                    f"{name!r} is not a header name; a name is letters, digits and - (like "
                    "X-Request-Source), without spaces, colons or control characters",
                    name,
                )
            # The value is never echoed: it may be a credential.
            bad = _control(text, tab=True)
            if bad is not None:
                raise _At(
                    f"the value of header {name!r} holds the control character {bad!r}; a header value is one "
                    "line of text (a newline would end the header and start another), so remove it",
                    name,
                )
        return value

    @field_validator("api_key_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        # The value is never echoed: a key pasted here by mistake must not
        # be printed back.
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                "api_key_env names the environment variable that holds the key (like OPENAI_API_KEY), not the "
                "key itself; put the key in that variable (export OPENAI_API_KEY=...) and write its name here"
            )
        return value


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DeploymentConfig(_Section):
    """One way to serve a logical model, beyond a provider's ``models`` list.

    ``base_model`` names the model ``upstream_model`` serves when its name
    says none: a Bedrock application inference profile's ARN is opaque, so
    its model id (``anthropic.claude-sonnet-4-20250514-v1:0``) is given
    here, and that model's prices and features apply.
    """

    model: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    upstream_model: str | None = None
    base_model: str | None = Field(default=None, min_length=1)
    region: str | None = None
    weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    context_window: int | None = Field(default=None, gt=0)
    max_output: int | None = Field(default=None, gt=0)
    tools: bool | None = None
    vision: bool | None = None
    json_mode: bool | None = None
    price: PriceOverride | None = None

    @field_validator("weight", mode="before")
    @classmethod
    def _finite_weight(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(
                f"weight {value} is not a weight; give a finite number, 0 or more: the deployment's share of "
                "the weighted strategy's draws (1 when left out; 0 makes it the last choice)"
            )
        return value
