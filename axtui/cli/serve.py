"""``ax serve``: the OpenAI-compatible gateway server."""

from __future__ import annotations

from typing import Any

import click

from axtui.cli._common import check_bind, err_console, handle_errors, run_async


def _loopback(host: str) -> bool:
    from axtui.server.guard import is_loopback

    return is_loopback(host)


@click.command()
@click.option("--host", default=None, help="Interface to listen on.  [default: server.host, 127.0.0.1]")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="TCP port.  [default: server.port, 8787]")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes; they share limits, budgets, cache and records through the store.  [default: 1]")
@click.option("--no-auth", is_flag=True, help="Serve WITHOUT gateway keys: anyone who can reach the port may call "
              "(and spend). For local development only; refused on a non-loopback address unless "
              "--allow-no-auth-remote is given too.")
@click.option("--allow-no-auth-remote", is_flag=True,
              help="Let --no-auth serve on a non-loopback address: ANYONE on the network may call and spend.")
@handle_errors
def serve(host: str | None, port: int | None, workers: int | None, no_auth: bool, allow_no_auth_remote: bool) -> None:
    """Run the OpenAI-compatible gateway (plus Anthropic's /v1/messages and the metrics API).

    Point an application at it by changing only its base URL and key:

    \b
      ax keys create --user alice            # prints the key once
      ax serve                               # http://127.0.0.1:8787
      OpenAI(base_url="http://127.0.0.1:8787/v1", api_key="axk_...")

    Writes under /api need the admin key (16 characters or more): set
    AX_ADMIN_KEY (or the variable named by server.admin_key_env) in the
    server's environment. Stop with Ctrl-C: calls in flight finish and every
    record is written.
    """
    from axtui.cli._setup import check_providers
    from axtui.config import load_settings
    from axtui.server.auth import check_admin_key

    settings = load_settings()
    host = host or settings.server.host
    port = port or settings.server.port
    workers = workers or settings.server.workers
    if no_auth and not _loopback(host) and not allow_no_auth_remote:
        raise click.UsageError(
            f"--no-auth on {host} would let anyone who can reach it call and spend without a key. "
            "Serve on 127.0.0.1, use gateway keys (ax keys create), or add --allow-no-auth-remote "
            "if that is really what you want."
        )
    check_admin_key(settings.server.admin_key_env)
    check_bind(host, port)
    warnings = check_providers(settings)
    _preflight(settings)
    for warning in warnings:
        err_console.print(f"warning: {warning}", markup=False, soft_wrap=True)
    if no_auth:
        reach = "anyone on this host" if _loopback(host) else f"ANYONE WHO CAN REACH {host}:{port}"
        err_console.print(
            f"[bold white on red] WARNING [/] [bold red]--no-auth: no gateway key is checked. {reach} can call "
            f"this gateway, spend on your provider accounts, and change budgets and limits through /api.[/]",
            markup=True, soft_wrap=True,
        )
    elif not _loopback(host):
        err_console.print(f"[yellow]listening on {host}: callers need a gateway key (ax keys create).[/]",
                          markup=True)
    if not no_auth:
        _hint_keys()
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    err_console.print(f"ax gateway on {base}  (OpenAI base_url {base}/v1, docs {base}/docs, "
                      f"{workers} worker{'s' if workers > 1 else ''})", markup=False)
    from axtui.server.run import serve as run_server

    run_server(settings, host=host, port=port, workers=workers, no_auth=no_auth)


def _preflight(settings: Any) -> None:
    """Build the gateway once and close it, so a broken config or store is one clear message here.

    Inside the server the same failure would surface as the web server's
    startup traceback (and, with several workers, as a parent that exits 0).
    """
    from axtui.engine.compose import build_gateway

    async def build_and_close() -> None:
        gateway = await build_gateway(settings)
        await gateway.aclose()

    run_async(build_and_close())


def _hint_keys() -> None:
    from axtui.server.keys import list_keys
    from axtui.store import Store

    store = Store.open()
    try:
        if not list_keys(store, include_revoked=False):
            err_console.print("no gateway keys yet: make one with `ax keys create --user NAME` "
                              "(or serve with --no-auth for local development)", markup=False)
    finally:
        store.close()
