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
import logging
import os
import threading
import time
import types
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx

from axtui import locations
from axtui.api_models import (
    AlertEventOut,
    AlertList,
    AlertRuleOut,
    BudgetAlertOut,
    BudgetOut,
    BudgetSet,
    RateLimitList,
    RoutingOut,
)
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import RoutingConfig, Settings
from axtui.cost.budgets import BudgetInfo
from axtui.cost.reports import Breakdown, BreakdownRow, CostSummary
from axtui.cost.rollups import Totals
from axtui.errors import AxError, InvalidRequest, ProviderError
from axtui.governance.standing import Standing
from axtui.governance.teams import TeamInfo
from axtui.metrics.alerts.model import RuleInfo
from axtui.metrics.history import History, HistoryPoint
from axtui.metrics.snapshot import AlertSummary, Snapshot
from axtui.money import NANOS_PER_USD, usd_to_nanos
from axtui.ratelimit.rules import StoredLimit
from axtui.routing.explain import Explanation
from axtui.server.keys import KeyInfo
from axtui.tui.data import Backend, BackendBase, LiveView
from axtui.tui.screens.budget_rows import unlimited_rows
from axtui.tui.views import (
    AlertsView,
    BudgetsView,
    CostView,
    ExportResult,
    KeysView,
    RoutingView,
    SpendPoint,
    range_spec,
)
from axtui.types import CallRecord

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


_STORED_FIELDS = frozenset(f.name for f in dataclasses.fields(StoredLimit))


def _nanos(text: str | None) -> int | None:
    return None if text is None else usd_to_nanos(Decimal(text))


def _globs(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)


def _key_info(d: dict[str, Any]) -> KeyInfo:
    """A key from its JSON (`axtui.server.key_admin.key_json`)."""
    return KeyInfo(
        id=d["id"], user=d["user"], name=d.get("name") or "", rpm=d.get("rpm"), tpm=d.get("tpm"),
        budget_nanos=_nanos(d.get("budget_usd")), trusted=bool(d.get("trusted")), created=d.get("created") or 0.0,
        revoked=d.get("revoked"), own_team=d.get("team"), team=d.get("effective_team"),
        models=_globs(d.get("models")), expires=d.get("expires"), tags=tuple(d.get("tags") or ()),
        prev_until=d.get("grace_until"),
    )


def _team_info(d: dict[str, Any]) -> TeamInfo:
    """A team from its JSON (`axtui.governance.teams.TeamInfo.to_json`)."""
    return TeamInfo(name=d["name"], members=tuple(d.get("members") or ()), models=_globs(d.get("models")),
                    budget_nanos=_nanos(d.get("budget_usd")), period=d.get("period"), hard=bool(d.get("hard")),
                    rpm=d.get("rpm"), tpm=d.get("tpm"), created=d.get("created") or 0.0)


def _standing(d: dict[str, Any]) -> Standing:
    """Spend and budget use from `axtui.governance.standing.standing_json` fields (none when the server has none)."""
    spent = _nanos(d.get("spent_usd_this_month")) or 0
    pct = d.get("budget_used_pct")
    return Standing(spent, None if pct is None else float(pct) / 100)


@dataclass(slots=True)
class _Stream:
    """What the event-stream thread keeps: the newest snapshot and whether it is connected."""

    snapshot: Snapshot | None = None
    received_at: float = 0.0
    connected: bool = False
    error: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)


class RemoteBackend(BackendBase):
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
        #: Whose calls the server shows: ``all`` (admin key) or ``user:NAME`` (a gateway key's own).
        self.view = "all"

    @property
    def label(self) -> str:
        host = self.url.removeprefix("http://").removeprefix("https://")
        # A gateway key sees its own calls only: the header says so.
        return host if self.view == "all" else f"{host} · own view ({self.view})"

    @property
    def applies_routing_now(self) -> bool:
        """The server applies saved routing in every worker within a second."""
        return True

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        try:
            first = self._get("/api/metrics/realtime", params={"recent": 0})
            self.view = str(first.get("view", "all")) if isinstance(first, dict) else "all"
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
            self._emit_alert(AlertEventOut.model_validate_json(data).to_event())
        elif kind == "budget":
            self._emit_alert(BudgetAlertOut.model_validate_json(data).to_alert())

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
        data = AlertList.model_validate(self._get("/api/alerts"))
        return [a.to_summary() for a in data.active]

    # -- costs ----------------------------------------------------------------------------

    def _history(self, since: float, until: float, step: str, by: str | None = None) -> History:
        params: dict[str, Any] = {"range": f"@{since:.3f}", "until": f"@{until:.3f}", "step": step}
        if by is not None:
            params.update(by=by, limit=1000)
        return History.from_json(self._get("/api/metrics/history", params=params))

    def costs(self, range_name: str, by: str) -> CostView:
        """Spend over a range from the server's history (rollups), with a projection from the last hour."""
        from axtui.cost.periods import period_bounds
        from axtui.cost.projection import project

        seconds, grain, grain_s = range_spec(range_name)
        now = self.clock.now()
        since = now - seconds
        total = Totals()
        points = []
        for p in self._history(since, now, grain).points:
            t = _totals(p)
            total.add(t)
            points.append(SpendPoint(float(p.start), t.cost_nanos, t.calls))
        groups: dict[str, Totals] = {}
        # A gateway key's history has no per-provider, model or tag rows (they cover every tenant).
        if self.view == "all" or by in ("user", "key"):
            for p in self._history(since, now, "day", by=by).points:
                groups.setdefault(p.key, Totals()).add(_totals(p))
        rows = tuple(BreakdownRow(key=k, totals=t) for k, t in groups.items())
        tz = self.settings.budgets.timezone
        day_start, day_end = period_bounds("day", now, tz)
        month_start, month_end = period_bounds("month", now, tz)
        month = [(p.start, _totals(p)) for p in self._history(month_start, now, "hour").points]
        month_nanos = sum(t.cost_nanos for _, t in month)
        day_nanos = sum(t.cost_nanos for start, t in month if start >= day_start)
        rate = Decimal(sum(t.cost_nanos for start, t in month if start >= now - 3600)) / Decimal(3600)
        projection = project(rate_per_s=rate, window_s=3600, now=now, day_so_far_nanos=day_nanos,
                             day_end=float(day_end or now), month_so_far_nanos=month_nanos,
                             month_end=float(month_end or now))
        summary = CostSummary(since=since, until=now, totals=total, top_models=(), projection=projection)
        breakdown = Breakdown(by=by, since=since, until=now, provider=None, rows=rows, total=total)
        unknown = [(r.key, r.totals.unknown_price_calls) for r in rows if r.totals.unknown_price_calls]
        return CostView(range_name, by, since, now, summary, breakdown, points, grain_s, unknown)

    # -- budgets and limits ---------------------------------------------------------------

    def budgets(self) -> BudgetsView:
        """Budgets with their standing and rate limits with their use, from the server."""
        statuses = [b.to_status() for b in self._budget_list()]
        try:
            data = RateLimitList.model_validate(self._get("/api/ratelimits"))
            limits, error = [x.to_status() for x in data.limits], None
            stored = [StoredLimit(**{k: v for k, v in d.items() if k in _STORED_FIELDS}) for d in data.stored]
            limits += unlimited_rows(stored, limits)
        except AxError as exc:
            limits, error = [], exc.message
        return BudgetsView(budgets=statuses, limits=limits, limits_error=error)

    def _budget_list(self) -> list[BudgetOut]:
        return [BudgetOut.model_validate(b) for b in self._get("/api/budgets")]

    def _put_budget(self, scope: str, period: str, amount: str, hard: bool) -> BudgetInfo:
        body = self._request("PUT", "/api/budgets", json={"scope": scope, "period": period, "amount": amount,
                                                          "hard": hard})
        return BudgetSet.model_validate(body).budget.to_info()

    def add_budget(self, scope: str, period: str, amount: str, hard: bool) -> BudgetInfo:
        """Create or change a budget on the server."""
        return self._put_budget(scope, period, amount, hard)

    def _known(self, budget_id: int) -> BudgetInfo:
        """The budget as the server has it now (another client may have changed it)."""
        found = next((b for b in self._budget_list() if b.id == budget_id), None)
        if found is None:
            raise InvalidRequest(f"there is no budget #{budget_id} on {self.label}")
        return found.to_info()

    def set_budget_amount(self, budget_id: int, amount: str) -> BudgetInfo:
        """Change a budget's limit (the server validates the amount)."""
        from axtui.money import parse_usd

        try:
            parse_usd(amount)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        b = self._known(budget_id)
        return self._put_budget(str(b.scope), b.period, amount.strip(), b.hard)

    def toggle_hard(self, budget_id: int) -> BudgetInfo:
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

    # -- keys and teams -------------------------------------------------------------------

    def keys(self) -> KeysView:
        """Keys and teams from ``GET /api/keys`` and ``GET /api/teams`` (the admin key)."""
        keys = self._get("/api/keys")
        teams = self._get("/api/teams")
        return KeysView(keys=[_key_info(k) for k in keys], teams=[_team_info(t) for t in teams],
                        key_standing={k["id"]: _standing(k) for k in keys},
                        team_standing={t["name"]: _standing(t) for t in teams}, now=self.clock.now())

    def revoke_key(self, key_id: str) -> KeyInfo:
        """Revoke a key on the server (``DELETE /api/keys/{id}``)."""
        return _key_info(self._request("DELETE", f"/api/keys/{quote(key_id, safe='')}"))

    def rotate_key(self, key_id: str, grace: str | None) -> tuple[str, KeyInfo]:
        """Rotate a key on the server (``POST /api/keys/{id}/rotate``); returns the new secret and the key."""
        data = self._request("POST", f"/api/keys/{quote(key_id, safe='')}/rotate", json={"grace": grace})
        return str(data["key"]), _key_info(data)

    # -- alerts ---------------------------------------------------------------------------

    def alerts(self) -> AlertsView:
        """Rules with their state and the latest events, from the server."""
        data = AlertList.model_validate(self._get("/api/alerts"))
        rules = [r.to_rule() for r in data.rules]
        events = [AlertEventOut.model_validate(e).to_event()
                  for e in self._get("/api/alerts/events", params={"limit": 100})]
        events.reverse()
        return AlertsView(rules=rules, events=events, now=self.clock.now())

    def add_rule(self, text: str, name: str | None, severity: str) -> RuleInfo:
        """Add a rule on the server (it answers 400 naming the column of a mistake)."""
        return self._rule("POST", "/api/alerts", json={"rule": text, "name": name or None, "severity": severity})

    def remove_rule(self, rule_id: int) -> RuleInfo:
        """Remove a rule on the server."""
        return self._rule("DELETE", f"/api/alerts/{rule_id}")

    def update_rule(self, rule_id: int, text: str, name: str | None, severity: str) -> RuleInfo:
        """Change a rule on the server (a changed condition starts again at ok)."""
        return self._rule("PATCH", f"/api/alerts/{rule_id}",
                          json={"rule": text, "name": name or None, "severity": severity})

    def acknowledge_rule(self, rule_id: int) -> RuleInfo:
        """Mark a rule's current episode as seen, on the server."""
        return self._rule("POST", f"/api/alerts/{rule_id}/acknowledge")

    def silence_rule(self, rule_id: int, seconds: float | None) -> RuleInfo:
        """Stop a rule's notifications for ``seconds`` on the server (None lifts the silence)."""
        return self._rule("POST", f"/api/alerts/{rule_id}/silence", json={"seconds": seconds})

    def _rule(self, method: str, path: str, **kwargs: Any) -> RuleInfo:
        return AlertRuleOut.model_validate(self._request(method, path, **kwargs)).to_rule()

    def call_record(self, request_id: str, ts: float) -> CallRecord | None:
        """Not served over HTTP: the detail view shows what the live stream carried."""
        return None

    # -- routing and export ---------------------------------------------------------------

    def routing(self) -> RoutingView:
        """The server's routing, each deployment's live health and weight, and A/B results."""
        return self._routing_view(self._get("/api/routing"))

    def _routing_view(self, raw: Any) -> RoutingView:
        from axtui.routing.abreport import ABReport
        from axtui.routing.health import HealthSnapshot

        data = RoutingOut.model_validate(raw)
        routing = RoutingConfig.model_validate(data.routing)
        # The routing screen stages edits on top of the backend's settings: the server's, here.
        self.settings = self.settings.model_copy(update={"routing": routing})
        return RoutingView(
            strategy=routing.strategy,
            health=[rebuild(HealthSnapshot, h) for h in data.health],
            weights=dict(data.weights),
            rules=list(routing.rules),
            ab_tests=list(routing.ab_tests),
            reports={name: rebuild(ABReport, r) for name, r in data.reports.items()},
            config_path=Path(data.config_path or "(the server's config file)"),
            models=list(data.models),
        )

    def explain(self, model: str, user: str, tokens: int | None) -> Explanation:
        """Which deployment the server would pick for ``model`` and ``user`` now, and why.

        Raises:
            InvalidRequest: the server serves no such model (its message lists what it serves).
        """
        params: dict[str, Any] = {"model": model, "user": user or "anonymous"}
        if tokens is not None:
            params["tokens"] = tokens
        return rebuild(Explanation, self._get("/api/routing/explain", params=params))

    def whatif(self, range_name: str, strategy: str | None, prices: str | None) -> dict[str, Any]:
        """The server's calls of the last ``range_name`` replayed under ``strategy`` (admin key).

        Raises:
            InvalidRequest: a price file was given (the server cannot read the dashboard's files; run
                ``ax cost whatif --prices FILE`` where the calls are recorded), or the strategy is unknown.
        """
        if prices:
            raise InvalidRequest("a price file is read where the calls are recorded, not over --url; run "
                                 "`ax cost whatif --prices FILE` on the gateway's machine", param="prices")
        seconds, _, _ = range_spec(range_name)
        params: dict[str, Any] = {"seconds": seconds}
        if strategy:
            params["strategy"] = strategy
        data: dict[str, Any] = self._get("/api/cost/whatif", params=params)
        return data

    def save_routing(self, routing: RoutingConfig, weights: dict[str, float]) -> Path:
        """Save routing and weights to the server's config file (admin key); it applies them at once."""
        body = {"routing": routing.model_dump(mode="json"), "weights": dict(weights)}
        view = self._routing_view(self._request("PUT", "/api/routing", json=body))
        return view.config_path

    def export(self, what: str, fmt: str, path: Path, since: float | None, until: float | None) -> ExportResult:
        """Download an export from the server (it needs the admin key) to ``path`` on this machine.

        The file is written beside ``path`` and renamed when complete, so a
        broken download never leaves half a file under the name asked for; a
        new one is readable by its owner only.

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
            with (
                locations.replace_private(path, binary=True) as out,
                self._client.stream("GET", "/api/export", params=params,
                                    timeout=httpx.Timeout(30.0, read=300.0)) as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    raise _problem(response, self.url)
                for chunk in response.iter_bytes():
                    out.write(chunk)
            rows = _count_rows(path, fmt)
        except httpx.HTTPError as exc:
            raise ProviderError(f"the export from {self.url} broke off: {exc}; try again") from None
        except OSError as exc:
            raise InvalidRequest(f"cannot write {path}: {exc.strerror}; choose another path") from None
        return ExportResult(path=path, rows=rows, what=what, fmt=fmt)


def rebuild(cls: type[T], data: Any) -> T:
    """A dataclass (nested ones, lists, tuples and optionals too) from its `dataclasses.asdict` JSON."""
    built: T = _value(cls, data)
    return built


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


def _totals(p: HistoryPoint) -> Totals:
    unknown = p.unknown_price_calls
    return Totals(calls=p.calls, errors=p.errors, refused=p.refused, input_tokens=p.input_tokens,
                  output_tokens=p.output_tokens, cost_nanos=usd_to_nanos(p.cost_usd),
                  priced_calls=max(0, p.calls - unknown - p.refused), unknown_price_calls=unknown,
                  cache_hits=p.cache_hits, saved_nanos=usd_to_nanos(p.saved_usd))


if TYPE_CHECKING:  # mypy proves the remote backend is a whole `Backend`
    _IS_A_BACKEND: Backend = RemoteBackend("http://127.0.0.1:8787", Settings())
