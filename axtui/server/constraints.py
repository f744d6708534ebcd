"""What the API accepts, as JSON Schema: the patterns ``/openapi.json`` states for free-text fields.

Each pattern describes inputs the server accepts (a test generates values
from them and sends them). Where the server's own grammar is richer (the
alert rule language, say), the pattern covers the common forms and the
field's description names the rest.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ALERT_RULE",
    "BUDGET_AMOUNT",
    "BUDGET_SCOPE",
    "CACHE_DIRECTIVE",
    "END_USER",
    "LIMIT_SUBJECT",
    "LIMIT_VALUE",
    "RATE_LIMIT_RULES",
    "WEBHOOK_URL",
    "ApiBody",
]

_OP = r"(?:>|>=|<|<=|==|!=)"
_WORD = r"[A-Za-z0-9_.-]{1,40}"
_FOR = r"(?: for [1-9][0-9]?[smh])?"
_LIVE_WHERE = rf"(?: where (?:provider|deployment|model|user)={_WORD})?"
_STORED_WHERE = rf"(?: where (?:provider|model|user|key)={_WORD})?"
_LIVE_METRICS = ("p50_latency_ms|p95_latency_ms|p99_latency_ms|ttft_ms|p95_ttft_ms|rps|requests|errors|rate_limited|"
                 "budget_refused|cost_per_min_usd|tokens_per_min")

#: ``METRIC OP VALUE [per PERIOD] [for DURATION] [where DIM=VALUE]``, the forms a rule takes.
ALERT_RULE = (
    rf"^(?:(?:{_LIVE_METRICS}) {_OP} [0-9]{{1,9}}(?:\.[0-9]{{1,3}})?{_FOR}{_LIVE_WHERE}"
    rf"|(?:error_rate|cache_hit_rate) {_OP} (?:0(?:\.[0-9]{{1,3}})?|1){_FOR}{_LIVE_WHERE}"
    rf"|spend_usd {_OP} [0-9]{{1,9}}(?:\.[0-9]{{1,2}})? per (?:hour|day|month){_STORED_WHERE}"
    rf"|budget_used_pct {_OP} [0-9]{{1,3}}{_STORED_WHERE})$"
)
#: An http(s) URL with a host.
WEBHOOK_URL = r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,200}[A-Za-z0-9])?(?::[1-9][0-9]{0,4})?(?:/[A-Za-z0-9._~/-]{0,500})?$"
#: Dollars: more than zero, at most nine decimals (nano-dollars), an optional ``$``.
BUDGET_AMOUNT = r"^\$?(?:[1-9][0-9]{0,8}(?:\.[0-9]{1,9})?|0?\.[0-9]{0,8}[1-9])$"
#: ``global``, or ``provider|model|user|key`` and a name.
BUDGET_SCOPE = r"^(?:global|(?:provider|model|user|key|team):\S{1,256})$"
#: ``alice``, ``user:alice``, ``key:ID``, ``team:NAME``, ``provider:NAME`` or ``global``.
LIMIT_SUBJECT = r"^(?:global|(?:user|key|provider|team):[A-Za-z0-9_.@-]{1,64}|[A-Za-z0-9_.@-]{1,64})$"
#: ``60/minute``, ``unlimited`` or ``default``.
LIMIT_VALUE = r"^(?:[1-9][0-9]{0,13}/(?:second|minute|hour|day)|unlimited|default)$"
#: What a rate-limit change must say: some limit or algorithm; a burst only for a token bucket.
RATE_LIMIT_RULES: dict[str, Any] = {"allOf": [
    {"anyOf": [{"required": [name], "properties": {name: {"type": "string"}}}
               for name in ("requests", "tokens", "algorithm")]},
    {"anyOf": [{"properties": {"burst": {"type": "null"}}},
               {"required": ["algorithm"], "properties": {"algorithm": {"const": "token-bucket"}}}]},
]}
#: An end user's name: no spaces, commas, slashes or control characters (a name reaches terminals).
END_USER = r"^[^\s,/\x00-\x1f\x7f-\x9f]{1,256}$"
#: ``no-cache``, ``no-store``, ``ttl=SECONDS``, comma-separated.
CACHE_DIRECTIVE = r"^(?:no-cache|no-store|ttl=[0-9]{1,7})(?:, ?(?:no-cache|no-store|ttl=[0-9]{1,7}))*$"


class ApiBody(BaseModel):
    """A body the API takes: a field it does not know is refused (400 naming it), never dropped in silence
    (``{"enabled": false}`` answered 200 and changed nothing), and so is a number JSON parsers let through but no
    setting can hold (``Infinity``, ``NaN``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
