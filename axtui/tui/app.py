"""The dashboard app: six screens as modes, themes, pause, refresh rate, alerts.

`AxApp` owns the backend: it starts it in a worker thread as the app
mounts (the first paint does not wait for the engine) and closes it when
the app exits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, ClassVar

from rich.console import RenderableType
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.events import Event, InputEvent, Resize
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen

from axtui.cost.alerts import BudgetAlert
from axtui.metrics.alerts.model import AlertEvent
from axtui.tui import fmt
from axtui.tui.data import Backend
from axtui.tui.messages import AlertEventArrived, BackendFailed, BackendStarted, DataChanged, SwitchScreen
from axtui.tui.screens import SCREENS
from axtui.tui.screens.alerts import AlertsScreen
from axtui.tui.screens.base import DashboardScreen
from axtui.tui.screens.budgets import BudgetsScreen
from axtui.tui.screens.costs import CostsScreen
from axtui.tui.screens.help import HelpScreen
from axtui.tui.screens.keys import KeysScreen
from axtui.tui.screens.realtime import RealtimeScreen
from axtui.tui.screens.routing import RoutingScreen
from axtui.tui.screens.too_small import TooSmallScreen
from axtui.tui.themes import DEFAULT_THEME, ThemeSet, load_themes
from axtui.tui.widgets.navbar import NavBar
from axtui.tui.widgets.tables import NARROW

__all__ = ["MIN_SIZE", "REFRESH_STEPS", "AxApp"]

#: The smallest terminal the dashboard lays out in (columns, rows).
MIN_SIZE = (80, 24)
#: Refresh rates ``+`` and ``-`` step through, in Hz.
REFRESH_STEPS: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0, 10.0)
#: What the command palette offers, as the help lists it.
_PALETTE = "command palette: actions, screens, themes, export"


class AxApp(App[None]):
    """``ax monitor realtime``.

    Args:
        backend: where the numbers come from (started here, closed on exit).
        theme: the theme to start with (default: the config's ``ui.theme``).
        themes: the loaded themes (default: shipped plus the user's).
        refresh_hz: refreshes per second (default: the config's ``ui.refresh_hz``).
        blink: whether text cursors blink (snapshot tests turn it off).
    """

    CSS_PATH = "app.tcss"
    TITLE = "ax"
    MODES: ClassVar[dict[str, Any]] = {
        "realtime": RealtimeScreen,
        "costs": CostsScreen,
        "budgets": BudgetsScreen,
        "alerts": AlertsScreen,
        "routing": RoutingScreen,
        "keys": KeysScreen,
    }
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        *(Binding(key, f"go('{mode}')", title, show=False) for mode, key, title in SCREENS),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("x", "export", "Export"),
        Binding("p", "pause", "Pause"),
        Binding("p", "resume", "Resume"),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+", show=False),
        Binding("minus", "slower", "Slower", key_display="-", show=False),
        # Textual binds its palette key only when no binding names the action, so both are named here. ctrl+p
        # goes first even in a text box, as Textual's own does; ':' types a colon there.
        Binding(App.COMMAND_PALETTE_BINDING, "command_palette", _PALETTE, show=False, priority=True),
        Binding("colon", "command_palette", _PALETTE, key_display=":", show=False),
        Binding("q,f10", "quit", "Quit", key_display="q"),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW, "-wide")]  # noqa: RUF012 - Textual's own annotation
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]  # noqa: RUF012

    #: Whether screens stop fetching and drawing.
    paused: reactive[bool] = reactive(False)
    #: Refreshes per second of the visible screen.
    refresh_hz: reactive[float] = reactive(2.0)

    def __init__(
        self,
        backend: Backend,
        *,
        theme: str | None = None,
        themes: ThemeSet | None = None,
        refresh_hz: float | None = None,
        blink: bool = True,
    ) -> None:
        super().__init__()
        #: Whether text cursors blink (off for screenshots).
        self.blink = blink
        self.backend = backend
        self.theme_set = themes if themes is not None else load_themes()
        self._start_theme = theme or backend.settings.ui.theme or DEFAULT_THEME
        self.set_reactive(AxApp.refresh_hz, refresh_hz or backend.settings.ui.refresh_hz)
        self.firing: dict[int | str, str] = {}
        self.problem: str | None = None
        self.started = False
        self._too_small = False
        #: Every dashboard screen made so far, by mode (they live as long as the app).
        self.dashboards: dict[str, DashboardScreen] = {}
        #: Whether the app was told to exit: keys and clicks that arrive meanwhile are dropped.
        self.leaving = False

    # -- start and stop -------------------------------------------------------------------

    async def on_mount(self) -> None:
        for t in self.theme_set.themes.values():
            self.register_theme(t)
        if self._start_theme in self.available_themes:
            self.theme = self._start_theme
        else:
            self.notify(f"no theme named {self._start_theme!r}; using {DEFAULT_THEME!r}", severity="warning")
            self.theme = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
        for problem in self.theme_set.problems:
            self.notify(problem, title="Theme not loaded", severity="warning", timeout=12)
        self.backend.on_alert(self._alert_from_backend)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        await self.switch_mode("realtime")
        self._check_size(self.size.width, self.size.height)
        self.set_interval(1.0, self.update_status)
        self._start_backend()

    def _alert_from_backend(self, event: AlertEvent | BudgetAlert) -> None:
        """Called from the backend's threads: hand the event to the UI thread."""
        self.post_message(AlertEventArrived(event))

    @work(thread=True, exclusive=True, group="backend", exit_on_error=False)
    def _start_backend(self) -> None:
        try:
            self.backend.start()
        except Exception as exc:
            self.post_message(BackendFailed(getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(BackendStarted())

    def on_backend_started(self, _: BackendStarted) -> None:
        self.started = True
        self.update_status()
        self._poll_alerts()

    def on_backend_failed(self, message: BackendFailed) -> None:
        self.report_problem(f"could not start: {message.error}")

    async def on_unmount(self) -> None:
        await asyncio.to_thread(self.backend.close)

    def exit(self, result: None = None, return_code: int = 0, message: RenderableType | None = None) -> None:
        """Leave the dashboard (`leaving` from now on)."""
        self.leaving = True
        super().exit(result, return_code, message)

    async def on_event(self, event: Event) -> None:
        # Keys typed right after q ("qx") would open a dialog on screens already being torn down,
        # which ends the dashboard in a traceback instead of quietly.
        if self.leaving and isinstance(event, InputEvent):
            return
        await super().on_event(event)

    # -- status and problems --------------------------------------------------------------

    @property
    def live_screen(self) -> DashboardScreen | None:
        """The dashboard screen in sight: on top, or behind a dialog (which leaves it live); None when hidden."""
        try:
            stack = self.screen_stack
        except Exception:  # no screen yet
            return None
        for screen in reversed(stack):
            if isinstance(screen, DashboardScreen):
                return screen if screen.in_sight else None
        return None

    def update_status(self) -> None:
        """Redraw the navigation bar's right side: source, live state, alerts, clock."""
        screen = self.live_screen
        if screen is None:
            return
        try:
            bars = list(screen.query(NavBar))
        except Exception:  # not mounted yet
            return
        if not bars:
            return
        narrow = self.size.width < NARROW
        label = self.backend.mode.upper() if narrow else self.backend.label
        parts = [f"[b $accent]{label}[/]"]
        if self.problem:
            parts.append(f"[$error]{self.problem[: 24 if narrow else 60]}[/]")
        elif not self.started:
            parts.append("[$warning]starting…[/]")
        elif self.paused:
            parts.append("[b $warning]❚❚ paused[/]")
        else:
            parts.append(f"[$success]●[/] {self.refresh_hz:g}Hz" if narrow else f"[$success]●[/] live {self.refresh_hz:g} Hz")
        if self.firing:
            parts.append(f"[b $error]▲{len(self.firing)}[/]" if narrow else f"[b $error]▲ {len(self.firing)} firing[/]")
        if not narrow:
            parts.append(fmt.clock_time(self.backend.clock.now()))
        status = " · ".join(parts)
        for bar in bars:
            bar.status = status

    def report_problem(self, message: str) -> None:
        """Show a problem once as a notification, and keep it in the status bar until fetches work again."""
        self.problem = message
        self.notify(message, title="Problem", severity="error", timeout=10)
        self.update_status()

    def clear_problem(self) -> None:
        """Fetches work again."""
        if self.problem is not None:
            self.problem = None
            self.update_status()

    # -- alerts ---------------------------------------------------------------------------

    def on_alert_event_arrived(self, message: AlertEventArrived) -> None:
        event = message.event
        if isinstance(event, BudgetAlert):
            # A budget crossed one of its thresholds (the cost subsystem's alert).
            self.notify(event.message, title=f"Budget #{event.budget_id} at {event.threshold}%",
                        severity="warning", timeout=10, markup=False)
            self.post_message(DataChanged("budgets"))
            return
        kind, text, rule_id = event.kind, event.message, event.rule_id
        name = event.rule_name or "alert"
        key: int | str = rule_id if rule_id is not None else name
        if kind == "firing":
            self.firing[key] = name
        elif kind in ("resolved", "cancelled"):
            self.firing.pop(key, None)
        if kind in ("firing", "resolved"):
            critical = event.severity == "critical"
            if kind == "firing":
                toast = (text or name, f"▲ Alert firing: {name}", "error" if critical else "warning", 10.0)
            else:
                toast = (text or name, f"✓ Resolved: {name}", "information", 6.0)
            self._announce_unless_silenced(rule_id, *toast)
        self.update_status()
        self.post_message(DataChanged("alerts"))

    @work(thread=True, group="announce", exit_on_error=False)
    def _announce_unless_silenced(self, rule_id: int | None, text: str, title: str, severity: SeverityLevel,
                                  timeout: float) -> None:
        """Toast an alert transition, unless its rule is silenced (it still counts in the status bar)."""
        if rule_id is not None:
            now = self.backend.clock.now()
            try:
                rules = self.backend.alerts().rules
            except Exception:  # cannot tell: better a toast too many than a missed alert
                rules = []
            rule = next((r for r in rules if r.id == rule_id), None)
            if rule is not None and rule.silenced_until is not None and rule.silenced_until > now:
                return
        self.call_from_thread(self.notify, text, title=title, severity=severity, timeout=timeout, markup=False)

    @work(thread=True, exclusive=True, group="alerts-poll", exit_on_error=False)
    def _poll_alerts(self) -> None:
        """Which alerts fire now (the notifications only tell of changes)."""
        summaries = self.backend.alert_summaries()
        self.call_from_thread(self._set_firing, {a.rule_id: a.name for a in summaries if a.state == "firing"})

    def _set_firing(self, firing: dict[int | str, str]) -> None:
        self.firing = dict(firing)
        self.update_status()

    def on_data_changed(self, message: DataChanged) -> None:
        screen = self.live_screen
        if screen is not None and message.what in screen.WATCHES:
            screen.refresh_now()

    # -- size -----------------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        self._check_size(event.size.width, event.size.height)
        self.update_status()

    def _check_size(self, width: int, height: int) -> None:
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        self._too_small = small
        if self.current_mode not in self.MODES:
            return  # still mounting: on_mount checks again once the first screen is up
        on_top = isinstance(self.screen, TooSmallScreen)
        if small and not on_top:
            self.push_screen(TooSmallScreen(MIN_SIZE))
        elif not small and on_top:
            self.pop_screen()

    # -- actions --------------------------------------------------------------------------

    def action_go(self, mode: str) -> None:
        """Show the screen named ``mode``."""
        if self._too_small or mode not in self.MODES:
            return
        if isinstance(self.screen, Screen) and self.screen.is_modal:
            self.pop_screen()
        if self.current_mode != mode:
            self.switch_mode(mode)

    def on_switch_screen(self, message: SwitchScreen) -> None:
        self.action_go(message.mode)

    def action_help(self) -> None:
        """Show every key of the current screen and the app."""
        if not isinstance(self.screen, (HelpScreen, TooSmallScreen)):
            self.push_screen(HelpScreen(self.screen))

    def action_export(self) -> None:
        """Open the export dialog for the current view."""
        from axtui.tui.screens.export import ExportScreen

        screen = self.screen
        if not isinstance(screen, DashboardScreen):
            return
        self.push_screen(ExportScreen(self.backend, screen.export_kind(), screen.export_view))

    def action_toggle_pause(self) -> None:
        """Freeze the screens, or let them move again."""
        self.paused = not self.paused

    def action_pause(self) -> None:
        """Freeze the screens (the footer then offers Resume)."""
        self.paused = True

    def action_resume(self) -> None:
        """Let the screens move again."""
        self.paused = False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # One key, two words: the footer reads Pause while live and Resume while paused.
        if action == "pause":
            return not self.paused
        if action == "resume":
            return self.paused
        return True

    async def action_quit(self) -> None:
        """Leave the dashboard; staged edits not saved are only dropped after asking."""
        from axtui.tui.screens.confirm import ConfirmScreen

        unsaved = [text for s in self.dashboards.values() if (text := s.unsaved_edits())]
        if not unsaved or isinstance(self.screen, ConfirmScreen):
            self.exit()
            return

        def answered(quit_anyway: bool | None) -> None:
            if quit_anyway:
                self.exit()

        question = "Quit and drop " + " and ".join(unsaved) + "?\n\nThey are not saved anywhere."
        self.push_screen(ConfirmScreen(question, yes="Drop and quit", no="Stay"), answered)

    def watch_paused(self, paused: bool) -> None:
        self.refresh_bindings()
        self.update_status()
        screen = self.live_screen
        if not paused and screen is not None:
            screen.refresh_now()

    def action_faster(self) -> None:
        """Refresh more often."""
        higher = [s for s in REFRESH_STEPS if s > self.refresh_hz]
        if higher:
            self.refresh_hz = higher[0]

    def action_slower(self) -> None:
        """Refresh less often."""
        lower = [s for s in REFRESH_STEPS if s < self.refresh_hz]
        if lower:
            self.refresh_hz = lower[-1]

    def watch_refresh_hz(self) -> None:
        self.update_status()
        screen = self.live_screen
        if screen is not None:
            screen.refresh_now()

    def set_theme(self, name: str) -> None:
        """Switch to the theme ``name``."""
        self.theme = name

    def _theme_changed(self, _: Any) -> None:
        # The screen on top now; the others when they are shown again (`DashboardScreen.recolour`).
        screen = self.live_screen
        if screen is not None:
            screen.recolour()

    # -- the command palette --------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        if isinstance(screen, DashboardScreen):
            yield from screen_commands(screen)
        for mode, key, title in SCREENS:
            yield SystemCommand(f"Screen: {title}", f"Go to the {title} screen (key {key})",
                                lambda m=mode: self.action_go(m))
        yield SystemCommand("Export current view…", "Write what this screen shows to a file (key x)",
                            self.action_export)
        yield SystemCommand("Resume" if self.paused else "Pause", "Freeze or unfreeze the screens (key p)",
                            self.action_toggle_pause)
        yield SystemCommand("Refresh faster", f"Now {self.refresh_hz:g} Hz (key +)", self.action_faster)
        yield SystemCommand("Refresh slower", f"Now {self.refresh_hz:g} Hz (key -)", self.action_slower)
        for name in self.theme_set.names():
            yield SystemCommand(f"Theme: {name}", f"Switch to the {name} theme",
                                lambda n=name: self.set_theme(n))
        yield SystemCommand("Help", "Every key of this screen (key ?)", self.action_help)
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command
        yield SystemCommand("Quit", "Leave the dashboard (key q)", self.action_quit)


def screen_commands(screen: DashboardScreen) -> Iterable[SystemCommand]:
    """The palette's entries for what ``screen`` can do now: each of its keys, by name."""
    from functools import partial

    from axtui.tui.screens.help import key_rows

    title = next((t for m, _, t in SCREENS if m == screen.MODE), screen.MODE)
    seen: set[str] = set()
    for b in screen.BINDINGS:
        binding = b if isinstance(b, Binding) else Binding(*b)
        action = binding.action
        if not binding.description or action in seen or action.startswith(("go(", "leave_input")):
            continue
        seen.add(action)
        name, _, _ = action.partition("(")
        if screen.check_action(name, ()) is False:
            continue
        (keys, _), = key_rows([binding])
        yield SystemCommand(f"{title}: {binding.description}", f"{_doc(screen, name)} (key {keys})",
                            partial(screen.run_action, action))


def _doc(screen: DashboardScreen, action: str) -> str:
    method = getattr(screen, f"action_{action}", None)
    doc = (method.__doc__ or "").strip().splitlines() if method is not None else []
    return doc[0].rstrip(".") if doc else action.replace("_", " ")
