"""``ax call``: one prompt through the whole pipeline, from the shell."""

from __future__ import annotations

import sys
from typing import Any

import click

from axtui.cli._common import EXIT_REFUSED, FiniteFloat, dump_json, exit_code_for, handle_errors, run_async
from axtui.errors import AxError, InvalidRequest


def record_summary(rec: Any) -> dict[str, Any]:
    """The fields of a call record people look at, money as exact decimals."""
    from axtui.money import usd_text

    return {
        "request_id": rec.request_id,
        "user": rec.user,
        "requested_model": rec.requested_model,
        "provider": rec.provider,
        "model": rec.model,
        "status": rec.status,
        "error": rec.error_message,
        "cache": rec.cache,
        "similarity": rec.similarity,
        "input_tokens": rec.input_tokens,
        "cached_input_tokens": rec.cached_input_tokens,
        "output_tokens": rec.output_tokens,
        "usage_estimated": rec.usage_estimated,
        "cost_usd": None if rec.cost_nanos is None else usd_text(rec.cost_nanos),
        "latency_ms": round(rec.latency_ms, 2),
        "ttft_ms": None if rec.ttft_ms is None else round(rec.ttft_ms, 2),
        "attempts": rec.attempts,
        "route": rec.route,
    }


@click.command()
@click.argument("prompt")
@click.option("--model", "-m", default=None, help="Model or alias (default: `fast` when served, else the first model).")
@click.option("--user", "-u", default="cli", show_default=True, help="Whom the call is for (limits, budgets, cache scope).")
@click.option("--system", "-s", default=None, help="A system prompt.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Most output tokens.")
@click.option("--temperature", type=FiniteFloat(0, 2), default=None, help="Sampling temperature.")
@click.option("--stream", is_flag=True, help="Print the answer as it arrives.")
@click.option("--no-cache", is_flag=True, help="Do not answer from the cache (the answer is still stored).")
@click.option("--wait", type=FiniteFloat(0, 86_400), default=0.0, help="Wait up to this many seconds for a rate limit.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: the answer and the call record.")
@handle_errors
def call(**options: Any) -> None:
    """Send PROMPT through ax and print the answer.

    Exit codes: 0 served, 1 upstream failure, 2 usage or config error,
    3 refused by a rate limit or budget (the message says how long to wait).

    \b
    Examples:
      ax call "Explain WAL mode in one line"
      ax call "Hi" --model smart --user alice --stream
      ax call "Hi" --json | jq .record.cost_usd
    """
    if not options["prompt"].strip():
        raise InvalidRequest("the prompt is empty; pass the text to send, e.g. ax call \"hello\"")
    if not options["user"].strip():
        raise InvalidRequest("--user is empty; name whom the call is for (its limits, budgets and cache scope "
                             "apply), e.g. --user alice", param="user")
    if options["model"] is not None and not options["model"].strip():
        raise InvalidRequest("--model is empty; name a model or alias (`ax route status` lists the deployments), "
                             "or leave --model out for the default", param="model")
    run_async(_call(**options))


async def _call(
    *,
    prompt: str,
    model: str | None,
    user: str,
    system: str | None,
    max_tokens: int | None,
    temperature: float | None,
    stream: bool,
    no_cache: bool,
    wait: float,
    as_json: bool,
) -> None:
    from axtui.engine import CallOptions, Gateway
    from axtui.governance.teams import team_of
    from axtui.ports import CacheDirective
    from axtui.types import Caller, ChatRequest

    gateway = await Gateway.open(announce_demo=True)
    try:
        names = gateway.models()
        chosen = model or ("fast" if "fast" in names else (names[0] if names else "fast"))
        messages: list[dict[str, str]] = []
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": prompt})
        request = ChatRequest.model_validate(
            {"model": chosen, "messages": messages, "max_tokens": max_tokens, "temperature": temperature, "stream": stream}
        )
        options = CallOptions(cache=CacheDirective(read=not no_cache), max_wait_s=wait)
        # As a key of the user's would: its team's budget and limits hold for this call too.
        caller = Caller(user=user, team=team_of(gateway.store, user) if gateway.store is not None else None)
        try:
            if stream and not as_json:
                s = gateway.stream(request, caller, options)
                async for chunk in s:
                    if chunk.delta:
                        sys.stdout.write(chunk.delta)
                        sys.stdout.flush()
                sys.stdout.write("\n")
                return
            if stream:
                s = gateway.stream(request, caller, options)
                answer, record = (await s.collect()).content, s.record
            else:
                result = await gateway.call(request, caller, options)
                answer, record = result.response.content, result.record
        except AxError as exc:
            if as_json:
                await gateway.aclose()
                dump_json({"answer": None, "error": {"type": exc.kind, "message": exc.message,
                                                     "retry_after": getattr(exc, "retry_after", None)},
                           "record": record_summary(exc.record) if exc.record is not None else None})
                raise SystemExit(exit_code_for(exc)) from None
            raise
        if as_json:
            await gateway.aclose()
            dump_json({"answer": answer, "record": record_summary(record)})
        else:
            click.echo(answer)
    finally:
        await gateway.aclose()


__all__ = ["EXIT_REFUSED", "call", "record_summary"]
