"""Enter on a row: everything about one call, one alert event, one deployment.

`DetailScreen` is a modal of labelled sections; the functions here build
the sections from the domain objects (pure, so tests read them directly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

from axtui.cost.alerts import BudgetAlert
from axtui.metrics.alerts.model import AlertEvent
from axtui.metrics.snapshot import RecentCall, Stats
from axtui.money import MAX_MONEY_DIGITS, nanos_to_usd
from axtui.tui import fmt
from axtui.tui.data import DeploymentState
from axtui.types import CallRecord

__all__ = ["DetailScreen", "Section", "call_sections", "deployment_sections", "event_sections"]

#: A titled block of (label, value) lines.
Section = tuple[str, list[tuple[str, str]]]


def _money(nanos: int | None) -> str:
    return "unknown (no price for this model)" if nanos is None else fmt.usd_fixed(nanos_to_usd(nanos), MAX_MONEY_DIGITS)


def call_sections(call: RecentCall, record: CallRecord | None) -> list[Section]:
    """A call from the live log, with what the store recorded of it when found."""
    ended = fmt.clock_time(call.ts + call.latency_ms / 1000)
    request = [("ended", ended), ("user", call.user), ("model asked", call.requested_model),
               ("request id", call.request_id or "–")]
    if record is not None:
        request += [("key", record.key or "–"), ("tags", ", ".join(record.tags) or "–"),
                    ("endpoint", record.endpoint), ("stream", "yes" if record.stream else "no")]
    route = [("deployment", call.deployment or "none served it"), ("provider", call.provider or "–"),
             ("model served", call.model or "–")]
    if record is not None:
        route += [("strategy", record.route or "–"), ("rule", record.rule or "none matched"),
                  ("A/B variant", record.variant or "–"), ("region", record.region or "–"),
                  ("attempts", str(record.attempts))]
    result = [("status", call.status), ("latency", fmt.ms(call.latency_ms)), ("first token", fmt.ms(call.ttft_ms))]
    if call.error_class:
        result.append(("error", call.error_class))
    if record is not None and record.error_message:
        result.append(("message", record.error_message))
    if record is not None and record.http_status:
        result.append(("HTTP status", str(record.http_status)))
    tokens = [("input", fmt.count(call.input_tokens)), ("output", fmt.count(call.output_tokens))]
    if record is not None:
        tokens = [("input", f"{fmt.count(record.input_tokens)} ({fmt.count(record.cached_input_tokens)} cached, "
                            f"{fmt.count(record.cache_write_tokens)} written to the cache)"),
                  ("output", f"{fmt.count(record.output_tokens)} ({fmt.count(record.reasoning_tokens)} reasoning)")]
        if record.usage_estimated:
            tokens.append(("note", "estimated: the provider reported no usage"))
    cost = [("cost", "–" if call.status != "ok" else
             (_money(record.cost_nanos) if record is not None else
              fmt.usd_fixed(call.cost_usd, 6) if call.cost_usd is not None else "unknown")),
            ("cache", call.cache)]
    if record is not None and record.similarity is not None:
        cost.append(("similarity", f"{record.similarity:.3f}"))
    if record is not None and record.saved_nanos:
        cost.append(("saved", _money(record.saved_nanos)))
    sections: list[Section] = [("Request", request), ("Route", route), ("Result", result), ("Tokens", tokens),
                               ("Cost and cache", cost)]
    if record is None:
        sections.append(("", [("", "the store has not written this call yet (or another process keeps it): "
                                   "route reasons, attempts and similarity show once it has")]))
    return sections


def event_sections(event: AlertEvent | BudgetAlert) -> list[Section]:
    """An alert rule's transition, or a budget threshold crossed."""
    if isinstance(event, BudgetAlert):
        return [("Budget threshold", [
            ("time", fmt.clock_time(event.ts)), ("budget", f"#{event.budget_id} {event.scope} per {event.period}"),
            ("threshold", f"{event.threshold}%"), ("spent", _money(event.spent_nanos)),
            ("limit", _money(event.limit_nanos)), ("message", event.message), ("webhook", event.delivery)])]
    lines = [("time", fmt.clock_time(event.ts)), ("rule", f"#{event.rule_id} {event.rule_name}"),
             ("condition", event.rule or "–"), ("event", event.kind), ("severity", event.severity),
             ("value", "–" if event.value is None else f"{event.value:.6g}"), ("threshold", event.threshold or "–"),
             ("labels", ", ".join(f"{k}={v}" for k, v in event.labels.items()) or "–"),
             ("message", event.message)]
    delivery = [("webhook", event.delivery), ("attempts", str(event.attempts))]
    if event.delivery_error:
        delivery.append(("error", event.delivery_error))
    return [("Alert event", lines), ("Delivery", delivery)]


def deployment_sections(stats: Stats, state: DeploymentState | None, calls: Sequence[RecentCall]) -> list[Section]:
    """A deployment's numbers over the last minute, its circuit, and its calls in the live log."""
    numbers = [("req/s", fmt.rate(stats.rps)), ("calls", fmt.count(stats.requests)),
               ("errors", f"{fmt.count(stats.errors)} ({fmt.pct(stats.error_rate)})"),
               ("p50", fmt.ms(stats.p50_ms)), ("p95", fmt.ms(stats.p95_ms)),
               ("$/min", fmt.usd(stats.cost_per_min_usd))]
    circuit = [("health", state.health if state is not None else "–")]
    if state is not None:
        circuit += [("circuit", state.state), ("why", state.reason or "–"), ("in flight", str(state.in_flight))]
        if state.cooldown_s:
            circuit.append(("after a 429", f"no calls sent for {state.cooldown_s:.0f}s: the provider said too many requests"))
    recent = [(fmt.clock_time(c.ts + c.latency_ms / 1000),
               f"{c.user:<10} {c.status:<8} {fmt.ms(c.latency_ms):>7} "
               f"{fmt.usd_fixed(c.cost_usd, 6) if c.cost_usd is not None else '–':>10}") for c in calls[-15:]]
    return [("Last minute", numbers), ("Circuit", circuit),
            (f"Its calls in the log ({fmt.count(len(calls))})", recent or [("", "none kept")])]


class DetailScreen(ModalScreen[None]):
    """A titled modal of sections; esc, q or enter closes it."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape,q,enter", "dismiss", "Close"),
    ]

    def __init__(self, title: str, sections: list[Section]) -> None:
        super().__init__()
        self.title_text = title
        self.sections = sections

    def compose(self) -> ComposeResult:
        lines = [f"[b]{escape(self.title_text)}[/]"]
        width = max((len(label) for _, rows in self.sections for label, _ in rows), default=8)
        for title, rows in self.sections:
            lines.append("")
            if title:
                lines.append(f"[b $accent]{escape(title)}[/]")
            for label, value in rows:
                lines.append(f"  [dim]{escape(label):<{width}}[/]  {escape(value)}")
        lines += ["", "[dim]esc closes[/]"]
        with VerticalScroll(id="detail", classes="dialog"):
            yield Static("\n".join(lines), id="detail-body")
