"""The alert rule language: one rule per line.

::

    METRIC OP VALUE [per PERIOD] [for DURATION] [where DIM=VALUE[,DIM=VALUE...]]

Examples::

    p95_latency_ms > 2000 for 5m where provider=openai
    error_rate > 0.05 for 10m          (or: error_rate > 5%)
    spend_usd > 50 per day             (or: spend_usd > $50 per day)
    cache_hit_rate < 0.3 for 30m
    budget_used_pct >= 80 where user=alice

``for`` is how long the condition must hold before the rule fires (it is
pending until then). ``per`` names the calendar period of a spend rule.
Values of ``where`` are bare words (letters, digits and ``_ . - / : @``) or
quoted strings. A mistake raises `RuleSyntaxError`, which names the column
and what was expected there.

Parsing is pure: no I/O, no clock.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from axtui.errors import InvalidRequest

__all__ = [
    "DIMENSIONS",
    "METRICS",
    "OPERATORS",
    "PERIODS",
    "AlertRule",
    "MetricSpec",
    "RuleSyntaxError",
    "compare",
    "format_duration",
    "format_number",
    "parse_duration",
    "parse_rule",
]

Op = Literal[">", ">=", "<", "<=", "==", "!="]
Period = Literal["hour", "day", "month"]

OPERATORS: tuple[Op, ...] = (">=", "<=", "==", "!=", ">", "<")
PERIODS: tuple[Period, ...] = ("hour", "day", "month")
#: Dimensions a ``where`` clause may name, for any metric that allows filters.
DIMENSIONS: tuple[str, ...] = ("provider", "deployment", "model", "user", "key")

_LIVE_DIMS = ("provider", "deployment", "model", "user")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What a metric measures and what a rule on it may say.

    Attributes:
        name: the metric's name in rules.
        description: one line for help and listings.
        source: ``live`` (the in-memory windows), ``spend`` (the store's
            rollups for a calendar period) or ``budget`` (budget status).
        unit: ``ms``, ``ratio`` (0–1; ``5%`` is accepted), ``pct`` (0–100),
            ``usd``, ``count`` or ``rate``.
        dims: the dimensions ``where`` may filter on.
        needs_period: whether ``per hour|day|month`` is required.
    """

    name: str
    description: str
    source: Literal["live", "spend", "budget"]
    unit: Literal["ms", "ratio", "pct", "usd", "count", "rate"]
    dims: tuple[str, ...] = _LIVE_DIMS
    needs_period: bool = False


def _live(name: str, unit: Literal["ms", "ratio", "count", "rate", "usd"], description: str) -> MetricSpec:
    return MetricSpec(name, description, "live", unit)


#: Every metric a rule may name.
METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        _live("p50_latency_ms", "ms", "median latency of served calls over the evaluation window"),
        _live("p95_latency_ms", "ms", "95th percentile latency of served calls"),
        _live("p99_latency_ms", "ms", "99th percentile latency of served calls"),
        _live("ttft_ms", "ms", "median time to first token of served calls"),
        _live("p95_ttft_ms", "ms", "95th percentile time to first token"),
        _live("error_rate", "ratio", "upstream failures / calls (0-1; 5% is accepted)"),
        _live("rps", "rate", "calls per second"),
        _live("requests", "count", "calls in the evaluation window"),
        _live("errors", "count", "failed calls in the evaluation window"),
        _live("rate_limited", "count", "calls refused by a rate limit in the evaluation window"),
        _live("budget_refused", "count", "calls refused by a hard budget in the evaluation window"),
        _live("cache_hit_rate", "ratio", "cache hits / served calls (0-1)"),
        _live("cost_per_min_usd", "usd", "spend per minute over the evaluation window"),
        _live("tokens_per_min", "rate", "input plus output tokens per minute"),
        MetricSpec(
            "spend_usd",
            "spend in the current calendar hour, day or month (needs `per hour|day|month`)",
            "spend",
            "usd",
            ("provider", "model", "user", "key"),
            needs_period=True,
        ),
        MetricSpec(
            "budget_used_pct",
            "highest percentage used among the matching budgets (all budgets without `where`)",
            "budget",
            "pct",
            ("provider", "model", "user", "key"),
        ),
    )
}

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WORD = re.compile(r"[A-Za-z0-9_.\-/:@*]+")
# A token may also carry a leading $ or + and a trailing % (amounts, percentages).
_TOKEN_WORD = re.compile(r"[A-Za-z0-9_.\-/:@*$%+]+")
#: Beyond these a rule can never fire; they are typos (an extra digit, an exponent).
_MAX_FOR_S = 30 * 86400
_MAX_THRESHOLD = Decimal(10**12)
_NUMBER = re.compile(r"\$?[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?")


class RuleSyntaxError(InvalidRequest):
    """An alert rule does not parse; says where (a 1-based column) and what was expected."""

    def __init__(self, rule: str, column: int, expected: str, found: str | None = None) -> None:
        self.rule = rule
        self.column = column
        self.expected = expected
        self.found = found
        what = f"expected {expected}" + (f", found {found!r}" if found is not None else "")
        caret = " " * (column - 1) + "^"
        super().__init__(f"alert rule, column {column}: {what}\n  {rule}\n  {caret}", param="rule")


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A parsed rule. ``str(rule)`` is its canonical text, which parses back to it.

    Attributes:
        metric: a key of `METRICS`.
        op: the comparison.
        threshold: the value compared against, in the metric's unit (ratios
            as fractions: ``5%`` is stored as ``0.05``).
        period: the calendar period of a spend rule, else None.
        for_s: seconds the condition must hold before firing.
        where: ``(dimension, value)`` filters, all of which must match.
    """

    metric: str
    op: Op
    threshold: Decimal
    period: Period | None = None
    for_s: float = 0.0
    where: tuple[tuple[str, str], ...] = field(default=())

    @property
    def spec(self) -> MetricSpec:
        """The metric's description."""
        return METRICS[self.metric]

    @property
    def filters(self) -> dict[str, str]:
        """The ``where`` clause as a dict."""
        return dict(self.where)

    def holds(self, value: Decimal | float) -> bool:
        """Whether ``value`` meets the condition."""
        return compare(value, self.op, self.threshold)

    def __str__(self) -> str:
        parts = [self.metric, self.op, format_number(self.threshold)]
        if self.period:
            parts += ["per", self.period]
        if self.for_s:
            parts += ["for", format_duration(self.for_s)]
        if self.where:
            parts += ["where", ",".join(f"{k}={_quote(v)}" for k, v in self.where)]
        return " ".join(parts)


def compare(value: Decimal | float, op: Op, threshold: Decimal) -> bool:
    """``value OP threshold``, in exact decimal arithmetic."""
    v = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    if op == ">":
        return v > threshold
    if op == ">=":
        return v >= threshold
    if op == "<":
        return v < threshold
    if op == "<=":
        return v <= threshold
    if op == "==":
        return v == threshold
    return v != threshold


def format_number(value: Decimal) -> str:
    """A threshold as people write it: ``2000``, ``0.05``, never ``2E+3``."""
    text = format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _quote(value: str) -> str:
    return value if _WORD.fullmatch(value) else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``30s``, ``5m``, ``1h30m``, ``2d``.

    Raises:
        ValueError: not a duration; the message shows the accepted forms.
    """
    t = text.strip().lower()
    pos = 0
    total = 0.0
    for m in _DURATION_RE.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not t or pos != len(t):
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 5m, 1h30m or 7d")
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact duration text for ``seconds`` (``300`` -> ``5m``)."""
    if seconds <= 0:
        return "0s"
    out = []
    rest = seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            n = int(rest // size)
            out.append(f"{n}{unit}")
            rest -= n * size
    if rest:
        out.append(f"{rest:g}s" if rest >= 1 or rest == int(rest) else f"{round(rest * 1000)}ms")
    return "".join(out)


@dataclass(slots=True)
class _Token:
    text: str
    column: int  # 1-based
    kind: Literal["word", "op", "comma", "eq", "string", "end"]
    value: str = ""


def _tokens(rule: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    n = len(rule)
    while i < n:
        ch = rule[i]
        if ch.isspace():
            i += 1
            continue
        col = i + 1
        if rule.startswith((">=", "<=", "==", "!="), i):
            out.append(_Token(rule[i : i + 2], col, "op"))
            i += 2
        elif ch in "<>":
            out.append(_Token(ch, col, "op"))
            i += 1
        elif ch == "=":
            out.append(_Token(ch, col, "eq"))
            i += 1
        elif ch == ",":
            out.append(_Token(ch, col, "comma"))
            i += 1
        elif ch in "\"'":
            j = i + 1
            buf = []
            while j < n and rule[j] != ch:
                if rule[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(rule[j])
                j += 1
            if j >= n:
                raise RuleSyntaxError(rule, col, f"a closing {ch} for the string that starts here")
            out.append(_Token(rule[i : j + 1], col, "string", "".join(buf)))
            i = j + 1
        else:
            m = _TOKEN_WORD.match(rule, i)
            if m is None:
                raise RuleSyntaxError(rule, col, "a metric, operator, number or keyword", ch)
            out.append(_Token(m.group(), col, "word", m.group()))
            i = m.end()
    out.append(_Token("", n + 1, "end"))
    return out


class _Parser:
    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.toks = _tokens(rule)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.toks[self.i]

    def fail(self, expected: str, tok: _Token | None = None) -> RuleSyntaxError:
        t = tok or self.tok
        return RuleSyntaxError(self.rule, t.column, expected, t.text if t.kind != "end" else "the end of the rule")

    def next(self) -> _Token:
        t = self.tok
        if t.kind != "end":
            self.i += 1
        return t

    def parse(self) -> AlertRule:
        metric_tok = self.tok
        if metric_tok.kind != "word":
            raise self.fail("a metric name such as p95_latency_ms or error_rate")
        name = metric_tok.text.lower()
        spec = METRICS.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, METRICS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise self.fail(f"a metric name, one of: {', '.join(METRICS)}{hint}")
        self.next()
        op_tok = self.tok
        if op_tok.kind != "op":
            raise self.fail("an operator: >, >=, <, <=, == or !=")
        op: Op = op_tok.text  # type: ignore[assignment]
        self.next()
        threshold = self._value(spec)
        period: Period | None = None
        for_s = 0.0
        where: list[tuple[str, str]] = []
        seen: set[str] = set()
        seen_last = ""
        while self.tok.kind != "end":
            kw_tok = self.tok
            kw = kw_tok.text.lower() if kw_tok.kind == "word" else ""
            allowed = [k for k in ("per", "for", "where") if k not in seen and (k != "per" or spec.needs_period)]
            if kw not in allowed:
                options = [f"'{k}'" for k in allowed]
                if "where" in seen and seen_last == "where":
                    options.insert(0, "',' before another filter")
                hint = (
                    f" ({name} is measured over the evaluation window, so it takes no 'per')"
                    if kw == "per" and not spec.needs_period
                    else ""
                )
                raise self.fail(", ".join(options) + " or the end of the rule" + hint)
            seen.add(kw)
            seen_last = kw
            self.next()
            if kw == "per":
                p_tok = self.next()
                if p_tok.kind != "word" or p_tok.text.lower() not in PERIODS:
                    raise self.fail("a period: hour, day or month", p_tok)
                period = p_tok.text.lower()  # type: ignore[assignment]
            elif kw == "for":
                d_tok = self.next()
                try:
                    for_s = parse_duration(d_tok.text) if d_tok.kind == "word" else -1
                except ValueError:
                    for_s = -1
                if for_s < 0:
                    raise self.fail("a duration such as 30s, 5m, 1h or 1h30m", d_tok)
                if for_s > _MAX_FOR_S:
                    # A condition that must hold for months never fires: surely a typo.
                    raise self.fail("a duration of at most 30d", d_tok)
            else:
                where = self._where(spec)
        if spec.needs_period and period is None:
            raise RuleSyntaxError(
                self.rule,
                self.tok.column,
                f"'per hour', 'per day' or 'per month' ({name} is spend in a calendar period)",
            )
        return AlertRule(name, op, threshold, period, for_s, tuple(where))

    def _value(self, spec: MetricSpec) -> Decimal:
        t = self.tok
        text = t.text
        if t.kind == "word" and (converted := _with_unit(spec, text)) is not None:
            # What people type: 2s or 500ms for a latency, 60/min or 1/s for a rate.
            if converted > _MAX_THRESHOLD:
                raise self.fail(f"a number up to {format_number(_MAX_THRESHOLD)}")
            self.next()
            return converted
        m = _NUMBER.fullmatch(text) if t.kind == "word" else None
        if m is None:
            raise self.fail(f"a number to compare {spec.name} with" + _unit_hint(spec))
        dollar = text.startswith("$")
        percent = text.endswith("%")
        body = text.removeprefix("$").removesuffix("%")
        if dollar and spec.unit != "usd":
            raise self.fail(f"a number without '$': {spec.name} is not money")
        if percent and spec.unit not in ("ratio", "pct"):
            raise self.fail(f"a number without '%': {spec.name} is not a rate or a percentage")
        try:
            value = Decimal(body)
        except InvalidOperation:
            raise self.fail("a number") from None
        if not value.is_finite():
            raise self.fail("a finite number")
        if value > _MAX_THRESHOLD:
            raise self.fail(f"a number up to {format_number(_MAX_THRESHOLD)}")
        if percent and spec.unit == "ratio":
            value = value / 100
        if spec.unit == "ratio" and not (0 <= value <= 1):
            raise self.fail(f"a fraction between 0 and 1 (or a percentage such as 5%): {spec.name} is a ratio")
        if value < 0:
            raise self.fail(f"a number of at least 0 for {spec.name}")
        self.next()
        return value

    def _where(self, spec: MetricSpec) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        while True:
            d_tok = self.next()
            dim = d_tok.text.lower() if d_tok.kind == "word" else ""
            if dim not in spec.dims:
                raise self.fail(f"a dimension {spec.name} can be filtered on: {', '.join(spec.dims)}", d_tok)
            if any(k == dim for k, _ in out):
                raise self.fail(f"each dimension once; {dim} is already set", d_tok)
            if self.tok.kind != "eq":
                raise self.fail(f"'=' after {dim}")
            self.next()
            v_tok = self.next()
            if v_tok.kind not in ("word", "string") or (v_tok.kind == "word" and not v_tok.text):
                raise self.fail(f"a value for {dim} (a word, or a quoted string)", v_tok)
            value = v_tok.value if v_tok.kind == "string" else v_tok.text
            if not value:
                raise self.fail(f"a non-empty value for {dim}", v_tok)
            out.append((dim, value))
            if self.toks[self.i].kind != "comma":
                return out
            self.next()


_LATENCY = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)")
_PER = re.compile(r"(\d+(?:\.\d+)?)/(s|sec|second|m|min|minute|h|hr|hour)")
_PER_S = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hr": 3600, "hour": 3600}


def _with_unit(spec: MetricSpec, text: str) -> Decimal | None:
    """A threshold written with its unit, in the metric's own unit: ``2s`` is 2000 ms, ``60/min`` 1 rps.

    None when ``text`` carries no unit this metric understands (the plain-number path decides).
    """
    if spec.unit == "ms" and (m := _LATENCY.fullmatch(text)):
        return Decimal(m[1]) * {"ms": 1, "s": 1000, "m": 60_000}[m[2]]
    if spec.unit == "rate" and (m := _PER.fullmatch(text)):
        own = 60 if spec.name.endswith("_per_min") else 1  # rps is per second, tokens_per_min per minute
        return round(Decimal(m[1]) * own / _PER_S[m[2]], 6).normalize()
    return None


def _unit_hint(spec: MetricSpec) -> str:
    return {
        "ms": " (milliseconds, like 2000, or 2s)",
        "ratio": " (a fraction like 0.05, or 5%)",
        "pct": " (a percentage like 80)",
        "usd": " (dollars, like 50 or $50)",
        "count": " (a count, like 10)",
        "rate": " (per second or per minute, like 20, or 60/min)",
    }[spec.unit]


def parse_rule(text: str) -> AlertRule:
    """Parse one rule.

    Raises:
        RuleSyntaxError: the rule is malformed; the message points at the column.
    """
    stripped = text.strip()
    if not stripped:
        raise RuleSyntaxError(text, 1, "a rule such as 'p95_latency_ms > 2000 for 5m'")
    if "\n" in stripped:
        raise RuleSyntaxError(stripped, stripped.index("\n") + 1, "one rule on one line")
    return _Parser(stripped).parse()
