"""The remote backend (``--url``): a running ``ax serve`` over its metrics API and event stream.

Live snapshots and alert events arrive over ``GET /api/metrics/stream``
(server-sent events) on a background thread, reconnecting with backoff;
until the first snapshot, and whenever the stream is down, a screen reads
``GET /api/metrics/realtime`` instead. Costs come from
``/api/metrics/history``; budgets, rate limits and alert rules from
``/api/budgets``, ``/api/ratelimits`` and ``/api/alerts`` (writes need the
admin key: ``AX_ADMIN_KEY``; reads take it or a gateway key,
``AX_API_KEY``).

Alert rules are changed, acknowledged and silenced, a subject's limit
reset, routing seen, explained and saved (``/api/routing``) and exports
downloaded (``/api/export``) through the same API.
"""

from __future__ import annotations

import collections.abc
import csv
import dataclasses
import json
import logging
import os
import threading
import time
import types
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from axtui.bus import AlertChanged, BudgetCrossed
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import Settings
from axtui.errors import AxError, InvalidRequest, ProviderError
from axtui.metrics.snapshot import AlertSummary, Snapshot
from axtui.money import NANOS_PER_USD, usd_to_nanos
from axtui.tui.data import Backend, LiveView
from axtui.tui.views import AlertsView, BudgetsView, CostView, ExportResult, RoutingView, SpendPoint, range_spec

__all__ = ["RemoteBackend", "parse_sse", "rebuild"]

T = TypeVar("T")

log = logging.getLogger(__name__)


def parse_sse(lines: list[str]) -> tuple[str, str] | None:
    """One server-sent event from its lines: (event, data), or None for a comment or retry line."""
    event, data = "message", []
    for line in lines:
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if not data:
        return None
    return event, "\n".join(data)


def _nanos(text: str | None) -> int | None:
    return None if text is None else usd_to_nanos(Decimal(text))


@dataclass(slots=True)
class _Stream:
    """What the event-stream thread keeps: the newest snapshot and whether it is connected."""

    snapshot: Snapshot | None = None
    received_at: float = 0.0
    connected: bool = False
    error: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)


class RemoteBackend(Backend):
    """Reads and edits a running ``ax serve`` over HTTP.

    Args:
        url: the server's base URL (``http://127.0.0.1:8787``).
        settings: local settings (only ``[ui]`` and time zones are used).
        clock: the time source.
        transport: an httpx transport (tests pass one that calls the app in-process).
        stream: listen to the event stream (tests may poll only).
    """

    mode = "remote"

    def __init__(self, url: str, settings: Settings, clock: Clock = SYSTEM_CLOCK, *,
                 transport: httpx.BaseTransport | None = None, stream: bool = True) -> None:
        super().__init__(settings, clock)
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"--url {url!r} is not an http(s) URL; write it like http://127.0.0.1:8787")
        self.url = url.rstrip("/").removesuffix("/v1")
        key = os.environ.get("AX_ADMIN_KEY") or os.environ.get("AX_API_KEY") or ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, transport=transport,
                                    timeout=httpx.Timeout(10.0, connect=3.0))
        self._want_stream = stream
        self._stream = _Stream()
        self._thread: threading.Thread | None = None
        self._budgets: list[Any] = []

    @property
    def label(self) -> str:
        return self.url.removeprefix("http://").removeprefix("https://")

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._get("/api/metrics/realtime", params={"recent": 0})
            if self._want_stream:
                self._thread = threading.Thread(target=self._listen, name="ax-dashboard-stream", daemon=True)
                self._thread.start()
        except AxError as exc:
            self.error = exc.message
            raise
        finally:
            self.ready.set()

    def close(self) -> None:
        self._stream.stop.set()
        self._client.close()
        if self._thread is not None:
            self._thread.join(3)

    # -- HTTP -----------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ProviderError(f"cannot reach {self.url}: {exc}; is `ax serve` running there?") from None
        if response.status_code >= 400:
            raise _problem(response, self.url)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _get(self, path: str, **kwargs: Any) -> Any:
        return self._request("GET", path, **kwargs)

    # -- the event stream -----------------------------------------------------------------

    def _listen(self) -> None:
        backoff = 1.0
        s = self._stream
        while not s.stop.is_set():
            try:
                with self._client.stream("GET", "/api/metrics/stream", params={"interval": 1.0},
                                         timeout=httpx.Timeout(10.0, read=30.0)) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _problem(response, self.url)
                    s.connected, s.error, backoff = True, None, 1.0
                    lines: list[str] = []
                    for line in response.iter_lines():
                        if s.stop.is_set():
                            return
                        if line:
                            lines.append(line)
                            continue
                        event = parse_sse(lines)
                        lines = []
                        if event is not None:
                            self._on_event(*event)
            except (httpx.HTTPError, AxError, ValueError) as exc:
                s.error = getattr(exc, "message", None) or str(exc)
            s.connected = False
            if s.stop.wait(backoff):
                return
            backoff = min(backoff * 2, 15.0)

    def _on_event(self, kind: str, data: str) -> None:
        if kind == "snapshot":
            self._stream.snapshot = Snapshot.from_json(data)
            self._stream.received_at = time.monotonic()
        elif kind == "alert":
            from axtui.metrics.alerts.model import AlertEvent

            self._emit_alert(AlertChanged(rebuild(AlertEvent, json.loads(data))))
        elif kind == "budget":
            from axtui.cost.alerts import BudgetAlert

            self._emit_alert(BudgetCrossed(rebuild(BudgetAlert, json.loads(data))))

    # -- realtime -------------------------------------------------------------------------

    def live(self, series_s: int) -> LiveView:
        self.wait_ready(30)
        s = self._stream
        fresh = s.snapshot is not None and time.monotonic() - s.received_at < 5.0
        if fresh:
            snap = s.snapshot
            assert snap is not None
        else:
            snap = Snapshot.from_json(self._get("/api/metrics/realtime", params={"series_s": max(10, series_s)}))
        return LiveView(snapshot=snap, health={}, alerts=list(snap.alerts))

    def alert_summaries(self) -> list[AlertSummary]:
        data = self._get("/api/alerts")
        out = []
        for a in data.get("active", []):
            out.append(AlertSummary(**{k: a[k] for k in ("rule_id", "name", "severity", "state", "since")},
                                    value=a.get("value"), rule=a.get("rule", "")))
        return out

    # -- costs ----------------------------------------------------------------------------

    def costs(self, range_name: str, by: str) -> CostView:
        """Spend over a range from the server's history (rollups), with a projection from the last hour."""
        from axtui.cost.periods import period_bounds
        from axtui.cost.projection import project
        from axtui.cost.rollups import Totals

        seconds, grain, grain_s = range_spec(range_name)
        now = self.clock.now()
        since = f"@{now - seconds:.3f}"
        points_data = self._get("/api/metrics/history", params={"range": since, "until": f"@{now:.3f}",
                                                                "step": grain})
        grouped = self._get("/api/metrics/history", params={"range": since, "until": f"@{now:.3f}",
                                                            "step": "day", "by": by, "limit": 1000})
        total = Totals()
        points = []
        for p in points_data.get("points", []):
            t = _totals(p)
            total.add(t)
            points.append(SpendPoint(float(p["start"]), t.cost_nanos, t.calls))
        groups: dict[str, Totals] = {}
        for p in grouped.get("points", []):
            groups.setdefault(p["key"], Totals()).add(_totals(p))
        rows = tuple(SimpleNamespace(key=k, totals=t) for k, t in groups.items())
        tz = self.settings.budgets.timezone
        day_start, day_end = period_bounds("day", now, tz)
        month_start, month_end = period_bounds("month", now, tz)
        month = self._get("/api/metrics/history", params={"range": f"@{month_start}", "until": f"@{now:.3f}",
                                                          "step": "hour"})
        month_nanos = sum(_totals(p).cost_nanos for p in month.get("points", []))
        day_nanos = sum(_totals(p).cost_nanos for p in month.get("points", []) if p["start"] >= day_start)
        hour = [p for p in month.get("points", []) if p["start"] >= now - 3600]
        rate = Decimal(sum(_totals(p).cost_nanos for p in hour)) / Decimal(3600)
        projection = project(rate_per_s=rate, window_s=3600, now=now, day_so_far_nanos=day_nanos,
                             day_end=float(day_end or now), month_so_far_nanos=month_nanos,
                             month_end=float(month_end or now))
        priced = total.priced_calls
        summary = SimpleNamespace(
            totals=total, projection=projection, total_usd=Decimal(total.cost_nanos) / NANOS_PER_USD,
            cost_per_call_usd=(Decimal(total.cost_nanos) / priced / NANOS_PER_USD) if priced else None,
        )
        breakdown = SimpleNamespace(rows=rows, total=total)
        unknown = [(r.key, r.totals.unknown_price_calls) for r in rows if r.totals.unknown_price_calls]
        return CostView(range_name, by, now - seconds, now, summary, breakdown, points, grain_s, unknown)

    # -- budgets and limits ---------------------------------------------------------------

    def budgets(self) -> BudgetsView:
        """Budgets with their standing and rate limits with their use, from the server."""
        statuses = [_budget_status(b) for b in self._get("/api/budgets")]
        self._budgets = statuses
        try:
            data = self._get("/api/ratelimits")
            limits, error = [_limit_status(x) for x in data.get("limits", [])], None
        except AxError as exc:
            limits, error = [], exc.message
        return BudgetsView(budgets=statuses, limits=limits, limits_error=error)

    def _put_budget(self, scope: str, period: str, amount: str, hard: bool) -> Any:
        body = self._request("PUT", "/api/budgets", json={"scope": scope, "period": period, "amount": amount,
                                                          "hard": hard})
        return _budget_status(body["budget"]).budget

    def add_budget(self, scope: str, period: str, amount: str, hard: bool) -> Any:
        """Create or change a budget on the server."""
        return self._put_budget(scope, period, amount, hard)

    def _known(self, budget_id: int) -> Any:
        """The budget as the server has it now (another client may have changed it)."""
        self._budgets = [_budget_status(b) for b in self._get("/api/budgets")]
        found = next((s for s in self._budgets if s.budget.id == budget_id), None)
        if found is None:
            raise InvalidRequest(f"there is no budget #{budget_id} on {self.label}")
        return found.budget

    def set_budget_amount(self, budget_id: int, amount: str) -> Any:
        """Change a budget's limit (the server validates the amount)."""
        from axtui.money import parse_usd

        try:
            parse_usd(amount)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        b = self._known(budget_id)
        return self._put_budget(str(b.scope), b.period, amount.strip(), b.hard)

    def toggle_hard(self, budget_id: int) -> Any:
        """Make a budget hard or soft."""
        b = self._known(budget_id)
        return self._put_budget(str(b.scope), b.period, format(Decimal(b.limit_nanos) / NANOS_PER_USD, "f"),
                                not b.hard)

    def delete_budget(self, budget_id: int) -> Any:
        """Delete a budget on the server."""
        return self._request("DELETE", f"/api/budgets/{budget_id}")

    def set_limit(self, subject: str, requests: str | None, tokens: str | None) -> Any:
        """Store a per-subject limit on the server."""
        body = {"subject": subject, "requests": requests or None, "tokens": tokens or None}
        return self._request("PUT", "/api/ratelimits", json=body)

    def delete_limit(self, subject: str) -> Any:
        """Remove a subject's stored limits on the server."""
        return self._request("DELETE", f"/api/ratelimits/{quote(subject, safe=':')}")

    def reset_limit(self, subject: str) -> Any:
        """Forget what a subject used, on the server: its quota is full again."""
        return self._request("POST", f"/api/ratelimits/{quote(subject, safe=':')}/reset")

    # -- alerts ---------------------------------------------------------------------------

    def alerts(self) -> AlertsView:
        """Rules with their state and the latest events, from the server."""
        from axtui.metrics.alerts.model import AlertEvent, RuleInfo

        data = self._get("/api/alerts")
        rules = [RuleInfo(**r) for r in data.get("rules", [])]
        events = []
        for e in self._get("/api/alerts/events", params={"limit": 100}):
            known = {k: e.get(k) for k in AlertEvent.__dataclass_fields__ if k in e}
            known.setdefault("rule", "")
            known.setdefault("value", None)
            known.setdefault("threshold", "")
            known.setdefault("labels", {})
            events.append(AlertEvent(**known))
        events.reverse()
        return AlertsView(rules=rules, events=events, now=self.clock.now())

    def add_rule(self, text: str, name: str | None, severity: str) -> Any:
        """Add a rule on the server (it answers 400 naming the column of a mistake)."""
        return self._rule("POST", "/api/alerts", json={"rule": text, "name": name or None, "severity": severity})

    def remove_rule(self, rule_id: int) -> Any:
        """Remove a rule on the server."""
        return self._request("DELETE", f"/api/alerts/{rule_id}")

    def update_rule(self, rule_id: int, text: str, name: str | None, severity: str) -> Any:
        """Change a rule on the server (a changed condition starts again at ok)."""
        return self._rule("PATCH", f"/api/alerts/{rule_id}",
                          json={"rule": text, "name": name or None, "severity": severity})

    def acknowledge_rule(self, rule_id: int) -> Any:
        """Mark a rule's current episode as seen, on the server."""
        return self._rule("POST", f"/api/alerts/{rule_id}/acknowledge")

    def silence_rule(self, rule_id: int, seconds: float | None) -> Any:
        """Stop a rule's notifications for ``seconds`` on the server (None lifts the silence)."""
        return self._rule("POST", f"/api/alerts/{rule_id}/silence", json={"seconds": seconds})

    def _rule(self, method: str, path: str, **kwargs: Any) -> Any:
        from axtui.metrics.alerts.model import RuleInfo

        return RuleInfo(**self._request(method, path, **kwargs))

    # -- routing and export ---------------------------------------------------------------

    def routing(self) -> RoutingView:
        """The server's routing, each deployment's live health and weight, and A/B results."""
        return self._routing_view(self._get("/api/routing"))

    def _routing_view(self, data: dict[str, Any]) -> RoutingView:
        from axtui.config import RoutingConfig
        from axtui.routing.abreport import ABReport
        from axtui.routing.health import HealthSnapshot

        routing = RoutingConfig.model_validate(data["routing"])
        # The routing screen stages edits on top of the backend's settings: the server's, here.
        self.settings = self.settings.model_copy(update={"routing": routing})
        return RoutingView(
            strategy=routing.strategy,
            health=[rebuild(HealthSnapshot, h) for h in data["health"]],
            weights={k: float(v) for k, v in data["weights"].items()},
            rules=list(routing.rules),
            ab_tests=list(routing.ab_tests),
            reports={name: rebuild(ABReport, r) for name, r in data["reports"].items()},
            config_path=Path(data["config_path"]),
            models=list(data["models"]),
        )

    def explain(self, model: str, user: str, tokens: int | None) -> Any:
        """Which deployment the server would pick for ``model`` and ``user`` now, and why.

        Raises:
            InvalidRequest: the server serves no such model (its message lists what it serves).
        """
        from axtui.routing.explain import Explanation

        params: dict[str, Any] = {"model": model, "user": user or "anonymous"}
        if tokens is not None:
            params["tokens"] = tokens
        return rebuild(Explanation, self._get("/api/routing/explain", params=params))

    def save_routing(self, routing: Any, weights: Any) -> Path:
        """Save routing and weights to the server's config file (admin key); it applies them at once."""
        body = {"routing": routing.model_dump(mode="json"), "weights": dict(weights)}
        view = self._routing_view(self._request("PUT", "/api/routing", json=body))
        return view.config_path

    def export(self, what: str, fmt: str, path: Path, since: float | None, until: float | None) -> ExportResult:
        """Download an export from the server (it needs the admin key) to ``path`` on this machine.

        The file is written beside ``path`` and renamed when complete, so a
        broken download never leaves half a file under the name asked for.

        Raises:
            InvalidRequest: bad arguments (from the server), or ``path`` cannot be written.
            ProviderError: the server cannot be reached, or the download broke off.
        """
        path = Path(path).expanduser()
        params = {"what": what, "format": fmt}
        if since is not None:
            params["since"] = f"@{since}"
        if until is not None:
            params["until"] = f"@{until}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(f".{path.name}.part")
            with part.open("wb") as out, self._client.stream("GET", "/api/export", params=params,
                                                             timeout=httpx.Timeout(30.0, read=300.0)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _problem(response, self.url)
                for chunk in response.iter_bytes():
                    out.write(chunk)
            rows = _count_rows(part, fmt)
            part.replace(path)
        except httpx.HTTPError as exc:
            raise ProviderError(f"the export from {self.url} broke off: {exc}; try again") from None
        except OSError as exc:
            raise InvalidRequest(f"cannot write {path}: {exc.strerror}; choose another path") from None
        return ExportResult(path=path, rows=rows, what=what, fmt=fmt)


def rebuild(cls: type[T], data: Any) -> T:
    """A dataclass (nested ones, lists, tuples and optionals too) from its `dataclasses.asdict` JSON."""
    return _value(cls, data)  # type: ignore[no-any-return]


def _value(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(tp) if a is not type(None)]
        return _value(kinds[0], data) if len(kinds) == 1 else data
    if origin in (list, tuple, collections.abc.Sequence):
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        items = [_value(inner, x) for x in data]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        _, inner = typing.get_args(tp) or (Any, Any)
        return {k: _value(inner, v) for k, v in data.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _value(hints[f.name], data[f.name])
                     for f in dataclasses.fields(tp) if f.init and f.name in data})
    return data


def _count_rows(path: Path, fmt: str) -> int:
    """The rows in an export file (CSV fields may hold line breaks; JSON rows never do)."""
    with path.open(encoding="utf-8", newline="") as f:
        if fmt == "csv":
            return max(0, sum(1 for _ in csv.reader(f)) - 1)  # less the header
        return sum(1 for line in f if line.lstrip(",").startswith("{"))


def _problem(response: httpx.Response, url: str) -> AxError:
    try:
        body = response.json()
        message = body.get("error", {}).get("message") or body.get("detail") or response.text
    except ValueError:
        message = response.text
    if response.status_code in (401, 403):
        return InvalidRequest(f"{url} refused the dashboard ({response.status_code}): {message}. Set AX_ADMIN_KEY "
                              "(or AX_API_KEY to only watch)")
    if response.status_code in (400, 404):  # a bad value, or something that is not there: the user's to fix
        return InvalidRequest(str(message))
    return ProviderError(f"{url} answered {response.status_code}: {message}")


def _totals(p: dict[str, Any]) -> Any:
    from axtui.cost.rollups import Totals

    cost = usd_to_nanos(Decimal(p["cost_usd"]))
    unknown = int(p.get("unknown_price_calls", 0))
    return Totals(calls=int(p["calls"]), errors=int(p["errors"]), refused=int(p.get("refused", 0)),
                  input_tokens=int(p["input_tokens"]), output_tokens=int(p["output_tokens"]), cost_nanos=cost,
                  priced_calls=max(0, int(p["calls"]) - unknown - int(p.get("refused", 0))),
                  unknown_price_calls=unknown, cache_hits=int(p["cache_hits"]),
                  saved_nanos=usd_to_nanos(Decimal(p.get("saved_usd", "0"))))


def _budget_status(b: dict[str, Any]) -> Any:
    from axtui.cost.budgets import Scope

    limit = _nanos(b["limit_usd"]) or 0
    spent = _nanos(b.get("spent_usd")) or 0
    budget = SimpleNamespace(id=b["id"], scope=Scope.parse(b["scope"]), period=b["period"], limit_nanos=limit,
                             hard=b["hard"])
    budget.describe = lambda: f"#{b['id']} {b['scope']} ${b['limit_usd']}/{b['period']}"
    forecast = SimpleNamespace(exhausted=bool(b.get("over")), runs_out_at=b.get("runs_out_at"),
                               projected_nanos=_nanos(b.get("projected_usd")))
    used = Decimal(b["used"]) if b.get("used") is not None else (Decimal(spent) / limit if limit else Decimal(0))
    return SimpleNamespace(budget=budget, spent_nanos=spent, used=used, over=bool(b.get("over")), forecast=forecast)


def _limit_status(x: dict[str, Any]) -> Any:
    scope, subject = x["scope"], x["subject"]
    label = "global" if scope == "global" else (f"{scope}:*" if subject == "*" else f"{scope}:{subject}")
    amount = int(str(x["limit"]).split("/", 1)[0]) if str(x["limit"]).split("/", 1)[0].isdigit() else 0
    return SimpleNamespace(scope=scope, subject=subject, label=label, unit=x["unit"], limit=x["limit"], amount=amount,
                           used=x.get("used"), remaining=x.get("remaining"), reset_after=x.get("reset_after"),
                           algorithm=x.get("algorithm", "token-bucket"), source=x.get("source", "server"))
