"""Webhooks as an attacker who may add an alert rule would use them: internal addresses, redirects, rebinding, leaks."""

from __future__ import annotations

import logging
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from axtui.clock import FakeClock
from axtui.config import BudgetsConfig
from axtui.cost.alerts import AlertNotifier, BudgetAlert, alert_events
from axtui.cost.budgets import Scope, set_budget
from axtui.cost.enforcement import BudgetBook
from axtui.errors import InvalidRequest
from axtui.metrics.alerts.storage import add_rule
from axtui.store import Store
from axtui.types import Caller, Deployment
from axtui.webhooks import AddressPolicy, WebhookSender, _describe, webhook_host
from tests.webhooks.receiver import receiver

ANYWHERE = AddressPolicy(allow_loopback=True, allow_private=True)
TOKEN = "tok_9f8e7d6c5b4a39281706"


class FakeDNS(AbstractResolver):
    """Answers each name from a script: a list of answers, one per lookup (the last repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.lookups.append(host)
        script = self.answers[host]
        ips = script.pop(0) if len(script) > 1 else script[0]
        return [{"hostname": host, "host": ip, "port": port, "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                 "proto": 0, "flags": 0} for ip in ips]  # fmt: skip

    async def close(self) -> None:
        pass


def sender(policy: AddressPolicy | None = None, dns: AbstractResolver | None = None, attempts: int = 1) -> WebhookSender:
    return WebhookSender(attempts=attempts, timeout_s=5, clock=FakeClock(), policy=policy, resolver=dns)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fe80::1]/x",
        "http://[::ffff:169.254.169.254]/x",  # the metadata address written as IPv6
        "http://[64:ff9b::a9fe:a9fe]/x",  # ... and through NAT64
        "http://100.100.100.200/latest/meta-data",  # Alibaba's metadata service
        "http://[fd00:ec2::254]/x",  # AWS's, over IPv6
        "http://0.0.0.0:8787/api/keys",
    ],
)
async def test_link_local_and_metadata_addresses_are_refused_even_when_everything_else_is_allowed(url: str) -> None:
    s = sender(ANYWHERE)
    result = await s.deliver(url, {"a": 1})
    await s.aclose()
    assert not result.ok and result.attempts == 0
    assert "refused" in (result.error or "")


async def test_a_name_that_resolves_to_the_metadata_service_is_refused() -> None:
    dns = FakeDNS({"metadata.attacker.example": [["203.0.113.9", "169.254.169.254"]]})
    s = sender(ANYWHERE, dns)
    result = await s.deliver("http://metadata.attacker.example/latest", {})
    await s.aclose()
    assert not result.ok and "169.254.169.254" in (result.error or "") and "link-local" in (result.error or "")
    assert result.attempts == 1  # refused, not retried


async def test_loopback_is_refused_unless_the_operator_allows_it() -> None:
    async with receiver() as hook:
        s = sender()
        refused = await s.deliver(f"{hook.base}/hook", {"n": 1})
        await s.aclose()
        assert not refused.ok and "loopback" in (refused.error or "") and hook.hits == []
        s = sender(AddressPolicy(allow_loopback=True))
        ok = await s.deliver(f"{hook.base}/hook", {"n": 2})
        await s.aclose()
    assert ok.ok and [b for _, b in hook.hits] == [b'{"n":2}']


async def test_the_check_is_on_the_resolved_address_and_the_connection_goes_to_it() -> None:
    async with receiver() as hook:
        port = hook.base.rsplit(":", 1)[1]
        # A public-looking name that points at this machine.
        dns = FakeDNS({"hooks.attacker.example": [["127.0.0.1"]]})
        s = sender(AddressPolicy(allow_private=True), dns)  # private allowed, loopback not
        refused = await s.deliver(f"http://hooks.attacker.example:{port}/x", {})
        await s.aclose()
        assert not refused.ok and "loopback" in (refused.error or "") and hook.hits == []
        # Rebinding: the first answer is allowed, every later one is the metadata address. The
        # connection must go to the address that was checked, so it reaches the receiver.
        dns = FakeDNS({"rebind.attacker.example": [["127.0.0.1"], ["169.254.169.254"]]})
        s = sender(AddressPolicy(allow_loopback=True), dns)
        ok = await s.deliver(f"http://rebind.attacker.example:{port}/x", {"k": 1})
        await s.aclose()
    assert ok.ok and len(hook.hits) == 1
    assert dns.lookups == ["rebind.attacker.example"]  # looked up once: checked and connected together


async def test_redirects_are_not_followed() -> None:
    async with receiver(replies=[307, 307, 307], location="/api/keys") as hook:
        s = sender(AddressPolicy(allow_loopback=True), attempts=3)
        result = await s.deliver(f"{hook.base}/hook", {"x": 1})
        await s.aclose()
    assert not result.ok and result.status == 307 and "redirect" in (result.error or "")
    assert [path for path, _ in hook.hits] == ["/hook"]  # one POST, never re-sent to the Location


async def test_the_reply_body_is_never_stored_only_the_status() -> None:
    async with receiver(replies=[400], reply_body="internal admin page: root password hunter2") as hook:
        s = sender(AddressPolicy(allow_loopback=True))
        result = await s.deliver(f"{hook.base}/hook", {})
        await s.aclose()
    assert result.status == 400 and result.error == "HTTP 400 from 127.0.0.1:" + hook.base.rsplit(":", 1)[1]
    assert "hunter2" not in repr(result)


async def test_budget_alerts_go_through_the_same_guarded_sender() -> None:
    store = Store.open()
    clock = FakeClock()
    notifier = AlertNotifier(store, clock=clock, attempts=3)  # default policy: public addresses only
    set_budget(store, Scope("global"), "month", 1_000_000_000, now=clock.now())
    url = f"http://169.254.169.254/hook?token={TOKEN}"
    book = BudgetBook(store, BudgetsConfig(webhook=url), clock=clock, notifier=notifier)
    dep = Deployment("p", "m", "m")
    await book.settle(await book.reserve(Caller(user="alice"), dep, 1_000_000_000), 1_000_000_000)
    await book.aclose()
    events = alert_events(store)
    assert events and {e.delivery for e in events} == {"failed"}
    store.close()


async def test_webhook_urls_never_reach_logs_or_stored_errors(caplog: pytest.LogCaptureFixture) -> None:
    store = Store.open()
    clock = FakeClock()
    async with receiver(replies=[500] * 10) as hook:
        url = f"{hook.base}/hooks/{TOKEN}?sig={TOKEN}"
        notifier = AlertNotifier(store, clock=clock, attempts=2, policy=AddressPolicy(allow_loopback=True))
        alert = BudgetAlert(1, 1, "global", "month", 0, 50, 5, 10, 0.0, "budget #1 reached 50%")
        with caplog.at_level(logging.DEBUG):
            assert not await notifier.deliver(alert, url)
        async with receiver() as gone:
            closed = f"{gone.base}/hooks/{TOKEN}"
        with caplog.at_level(logging.DEBUG):
            assert not await notifier.deliver(alert, closed)
    assert TOKEN not in caplog.text
    assert "127.0.0.1" in caplog.text  # the host is named, so the operator knows which webhook
    store.close()


def test_error_texts_lose_the_url_path_and_query() -> None:
    url = f"https://hooks.example.com/services/{TOKEN}?k={TOKEN}"
    text = _describe(TimeoutError(f"Connection timeout to host {url}"), url)
    assert TOKEN not in text and "hooks.example.com" in text
    assert webhook_host(url) == "hooks.example.com"


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://[fe80::1%25eth0]/x",
                                 "http://100.100.100.200/", "ftp://hooks.example.com/x", "http://:80/x"])  # fmt: skip
def test_a_rule_cannot_be_given_a_webhook_that_can_never_be_delivered(url: str) -> None:
    store = Store.open()
    with pytest.raises(InvalidRequest) as err:
        add_rule(store, "errors > 0", now=0.0, webhook=url)
    assert err.value.param == "webhook"
    store.close()


def test_loopback_and_private_webhooks_are_kept_for_the_operator_to_allow() -> None:
    store = Store.open()
    for n, url in enumerate(("http://127.0.0.1:9/x", "http://10.0.0.7/hook", "https://hooks.example.com/ax")):
        assert add_rule(store, f"errors > {n}", now=0.0, webhook=url).webhook == url
    store.close()
