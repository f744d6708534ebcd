"""The simulated fleet answering as the AWS Bedrock runtime, under ``/bedrock``.

| route | what |
| ----- | ---- |
| ``POST /bedrock/model/{modelId}/converse`` | Converse |
| ``POST /bedrock/model/{modelId}/converse-stream`` | ConverseStream, framed as an AWS event stream |

Every request must be SigV4-signed (service ``bedrock``, any region) with
the test credentials `SIM_ACCESS_KEY_ID` / `SIM_SECRET_ACCESS_KEY`: the
server re-signs the request with botocore from the signed headers and the
body and compares signatures; a missing, foreign or wrong signature is
AWS's 403. A model id is served by the simulated model it names once its
inference-profile prefix (``us.``…), vendor (``anthropic.``) and version
(``-20251001-v1:0``) are dropped: ``us.anthropic.claude-haiku-4-5-20251001-v1:0``
is ``claude-haiku-4-5``. A foundation-model or inference-profile ARN is
served by the model its resource id names; an application inference
profile's ARN (any region and account) by the model `SIM_APPLICATION_PROFILES`
gives its id, as the profiles of a real account serve the model they were
made from.

Faults (``X-Sim-Fault``): the fleet's, plus ``403`` (``AccessDeniedException``)
and ``throttling`` (``ThrottlingException``: a 429 before a plain answer,
an exception frame mid-way through a stream). Errors carry their name in
``x-amzn-ErrorType`` and ``{"message"}``; 429s carry ``Retry-After``.
"""

from __future__ import annotations

import binascii
import hmac
import itertools
import json
import math
import re
import struct
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from axtui.bedrock_ids import APPLICATION_PROFILE, arn_resource, named_model
from axtui.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    ProviderTimeout,
)
from axtui.providers._converse import converse_usage_body
from axtui.providers.sim.server import FAULT_HEADER, _body, _chat, _fault, _wait, server_state
from axtui.providers.sim.simulate import ChatPlan, EmbedPlan, thinking_signature
from axtui.providers.sim.spec import ProviderProfile
from axtui.providers.sim.wire import ChatCall, EmbedCall, Wire, bad_request, chat_request, overflow_of, status_of

__all__ = ["SIM_ACCESS_KEY_ID", "SIM_APPLICATION_PROFILES", "SIM_SECRET_ACCESS_KEY", "BedrockWire", "event_frame",
           "mount_bedrock", "served_model"]

#: The access key id the simulated Bedrock accepts.
SIM_ACCESS_KEY_ID = "AKIAAXSIMULATED00001"
#: Its secret: the signature of every request is checked against it.
SIM_SECRET_ACCESS_KEY = "ax-sim-bedrock-secret-access-key"
#: The simulated account's application inference profiles: profile id -> the model id it was made from.
SIM_APPLICATION_PROFILES = {
    "axsimhaiku45": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "axsimsonnet45": "anthropic.claude-sonnet-4-5-20250929-v1:0",
}
#: How far a request's X-Amz-Date may be from the server's clock (AWS allows 5 minutes).
_SKEW_S = 300

_PROFILE_PREFIX = re.compile(r"^(?:us|eu|apac|jp|au|ca|global|us-gov)\.")
_VERSION_SUFFIX = re.compile(r"(?:-\d{8})?(?:-v\d+(?::\d+)?)?$")
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                   r"SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})")
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "content_filtered"}


def served_model(model_id: str, names: list[str]) -> str | None:
    """The simulated model a Bedrock model id, inference profile or ARN names, if any."""
    if model_id in names:
        return model_id
    resource = arn_resource(model_id)
    if resource is not None and resource[0] == APPLICATION_PROFILE:
        made_from = SIM_APPLICATION_PROFILES.get(resource[1])
        return None if made_from is None else served_model(made_from, names)
    named = named_model(model_id)
    if named is None:
        return None
    bare = _PROFILE_PREFIX.sub("", named)
    bare = bare.split(".", 1)[1] if "." in bare else bare
    bare = _VERSION_SUFFIX.sub("", bare)
    return bare if bare in names else None


# --- AWS event-stream framing --------------------------------------------------------------


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # Type 7 is a string: a 2-byte length, then UTF-8.
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def event_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (lengths and their CRC32), headers, payload, CRC32 of it all."""
    head = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    message = prelude + head + payload
    return message + struct.pack("!I", binascii.crc32(message))


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return event_frame({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                       json.dumps(data, separators=(",", ":")).encode())


def _exception(kind: str, message: str) -> bytes:
    # Inside a stream the exception's name starts lower-case (throttlingException).
    name = kind[:1].lower() + kind[1:]
    return event_frame({":exception-type": name, ":content-type": "application/json", ":message-type": "exception"},
                       json.dumps({"message": message}).encode())


# --- the wire format ---------------------------------------------------------------------------


def _error_type(exc: ProviderError, status: int) -> str:
    if isinstance(exc, ProviderRateLimited):
        return "ThrottlingException"
    if isinstance(exc, ProviderAuthError):
        return "AccessDeniedException" if status == 403 else "UnrecognizedClientException"
    if isinstance(exc, ProviderBadRequest):
        return "ResourceNotFoundException" if status == 404 else "ValidationException"
    if isinstance(exc, ProviderTimeout):
        return "ModelTimeoutException"
    if isinstance(exc, ProviderServerError) and status == 503:
        return "ServiceUnavailableException"
    return "InternalServerException"


def _message(m: dict[str, Any]) -> list[dict[str, Any]]:
    """ax's (OpenAI-shaped) messages for one Converse message."""
    role = m.get("role")
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for block in m.get("content") or []:
        if not isinstance(block, dict):
            raise bad_request("ValidationException: each content block must be an object")
        if "text" in block:
            parts.append({"type": "text", "text": str(block["text"])})
        elif "image" in block:
            image = block["image"] or {}
            data = ((image.get("source") or {}).get("bytes")) or ""
            parts.append({"type": "image_url", "image_url": {"url": f"data:image/{image.get('format')};base64,{data}"}})
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append({"id": use["toolUseId"], "type": "function",
                          "function": {"name": use["name"], "arguments": json.dumps(use.get("input") or {})}})
        elif "reasoningContent" in block:
            text = (block["reasoningContent"] or {}).get("reasoningText")
            if isinstance(text, dict) and text.get("signature") != thinking_signature(str(text.get("text", ""))):
                raise bad_request("ValidationException: The model returned the following errors: Invalid "
                                  "`signature` in `thinking` block")
        elif "toolResult" in block:
            result = block["toolResult"]
            text = "".join(str(c.get("text", "")) if "text" in c else json.dumps(c.get("json"))
                           for c in result.get("content") or [])
            results.append({"role": "tool", "tool_call_id": result["toolUseId"], "content": text})
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": parts or ""}
        if calls:
            out["tool_calls"] = calls
        return [out]
    return [*results, *([{"role": "user", "content": parts}] if parts else [])]


def _response_format(config: Any) -> dict[str, Any] | None:
    """Structured outputs' ``outputConfig.textFormat`` as a chat ``response_format`` (None: free text)."""
    if config is None or (isinstance(config, dict) and "textFormat" not in config):
        return None
    fmt = config.get("textFormat") if isinstance(config, dict) else None
    definition = ((fmt or {}).get("structure") or {}).get("jsonSchema") if isinstance(fmt, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(definition, dict):
        raise bad_request('ValidationException: outputConfig.textFormat must be {"type": "json_schema", '
                          '"structure": {"jsonSchema": {"schema": "..."}}}')
    try:
        schema = json.loads(definition["schema"])
    except (KeyError, TypeError, ValueError):
        raise bad_request("ValidationException: outputConfig.textFormat.structure.jsonSchema.schema must be a "
                          "JSON schema as a string") from None
    return {"type": "json_schema", "json_schema": {"name": definition.get("name") or "output", "schema": schema}}


def _check_thinking(messages: list[Any], thinking: dict[str, Any], inference: dict[str, Any]) -> None:
    """Refuse what Claude on Bedrock refuses beside thinking: a small budget or maxTokens, a lost thinking block."""
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        raise bad_request("ValidationException: thinking.budget_tokens: Input should be greater than or equal to 1024")
    if not isinstance(inference.get("maxTokens"), int) or inference["maxTokens"] <= budget:
        raise bad_request("ValidationException: `max_tokens` must be greater than `thinking.budget_tokens`")
    last = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "assistant"), None)
    blocks = (last or {}).get("content") or []
    if any(isinstance(b, dict) and "toolUse" in b for b in blocks) and not (
            isinstance(blocks[0], dict) and "reasoningContent" in blocks[0]):
        raise bad_request("ValidationException: Expected `thinking` or `redacted_thinking`, but found `text` or "
                          "`tool_use`. When `thinking` is enabled, a final `assistant` message must start with a "
                          "thinking block.")


def _shows_thinking(plan: ChatPlan, call: ChatCall) -> bool:
    return bool(plan.thinking) and isinstance(call.request.passthrough().get("thinking"), dict)


class BedrockWire(Wire):
    """Bedrock's Converse API."""

    name = "bedrock"

    def parse_chat(self, body: Any, path_model: str | None, *, stream: bool | None) -> ChatCall:
        """A Converse body as a `ChatCall`; the model comes from the URL."""
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            raise bad_request("ValidationException: messages: a non-empty list is required")
        roles = [m.get("role") if isinstance(m, dict) else None for m in body["messages"]]
        if roles[0] != "user" or any(a == b for a, b in itertools.pairwise(roles)) or not set(
                roles) <= {"user", "assistant"}:
            raise bad_request("ValidationException: A conversation must start with a user message and alternate "
                              "between user and assistant roles.")
        messages: list[dict[str, Any]] = []
        system = "\n".join(str(b.get("text", "")) for b in body.get("system") or [] if isinstance(b, dict))
        if system:
            messages.append({"role": "system", "content": system})
        try:
            for m in body["messages"]:
                messages.extend(_message(m))
        except (KeyError, TypeError, AttributeError) as exc:
            raise bad_request(f"ValidationException: malformed content block ({exc})") from None
        data: dict[str, Any] = {"model": path_model or "", "messages": messages}
        inference = body.get("inferenceConfig") or {}
        thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            _check_thinking(body["messages"], thinking, inference)
            data["thinking"] = thinking
        for src, dst in (("maxTokens", "max_tokens"), ("temperature", "temperature"), ("topP", "top_p"),
                         ("stopSequences", "stop")):
            if src in inference:
                data[dst] = inference[src]
        tools = body.get("toolConfig") or {}
        if tools.get("tools"):
            data["tools"] = [{"type": "function", "function": {
                "name": t["toolSpec"]["name"], "description": t["toolSpec"].get("description", ""),
                "parameters": (t["toolSpec"].get("inputSchema") or {}).get("json") or {}}}
                for t in tools["tools"] if "toolSpec" in t]
            choice = tools.get("toolChoice") or {}
            if "any" in choice:
                data["tool_choice"] = "required"
            elif "tool" in choice:
                data["tool_choice"] = {"type": "function", "function": {"name": choice["tool"]["name"]}}
        fmt = _response_format(body.get("outputConfig"))
        if fmt is not None:
            data["response_format"] = fmt
        return ChatCall(request=chat_request(data), model=path_model or "", stream=bool(stream))

    def _content(self, plan: ChatPlan, call: ChatCall) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        if _shows_thinking(plan, call):
            content.append({"reasoningContent": {"reasoningText": {
                "text": plan.thinking, "signature": thinking_signature(plan.thinking)}}})
        content += [{"text": plan.text}] if plan.text else []
        content += [{"toolUse": {"toolUseId": c.id.replace("call_", "tooluse_", 1), "name": c.name,
                                 "input": json.loads(c.arguments)}} for c in plan.tool_calls]
        return content

    def chat_body(self, plan: ChatPlan, call: ChatCall, created: int) -> Any:
        """A Converse answer: the message, stopReason, usage, metrics."""
        return {"output": {"message": {"role": "assistant", "content": self._content(plan, call)}},
                "stopReason": _STOP.get(plan.finish_reason, "end_turn"),
                "usage": converse_usage_body(plan.usage),
                "metrics": {"latencyMs": int(plan.total_s * 1000)}}

    def stream_open(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """``messageStart``, then the thinking block (text, signature, stop) when thinking is shown."""
        events = [_event("messageStart", {"role": "assistant"})]
        if _shows_thinking(plan, call):
            events += [
                _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {
                    "text": plan.thinking}}}),
                _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {
                    "signature": thinking_signature(plan.thinking)}}}),
                _event("contentBlockStop", {"contentBlockIndex": 0}),
            ]
        return events

    def stream_piece(self, plan: ChatPlan, call: ChatCall, piece: str, *, first: bool, last: bool,
                     created: int) -> bytes:
        """A ``contentBlockDelta`` with one piece of text; the last piece closes the block."""
        index = 1 if _shows_thinking(plan, call) else 0
        frame = _event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}})
        return frame + (_event("contentBlockStop", {"contentBlockIndex": index}) if last else b"")

    def stream_tools(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """Each call as its own block: start (id and name), input fragments, stop."""
        events = []
        offset = (1 if plan.chunks else 0) + (1 if _shows_thinking(plan, call) else 0)
        for i, (c, pieces) in enumerate(zip(plan.tool_calls, plan.fragments, strict=True)):
            index = i + offset
            events.append(_event("contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": {
                "toolUseId": c.id.replace("call_", "tooluse_", 1), "name": c.name}}}))
            events += [_event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": p}}})
                       for p in pieces]
            events.append(_event("contentBlockStop", {"contentBlockIndex": index}))
        return events

    def stream_close(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """``messageStop`` with the stop reason, then ``metadata`` with usage and metrics."""
        return [_event("messageStop", {"stopReason": _STOP.get(plan.finish_reason, "end_turn")}),
                _event("metadata", {"usage": converse_usage_body(plan.usage),
                                    "metrics": {"latencyMs": int(plan.total_s * 1000)}})]

    def stream_garbage(self, plan: ChatPlan) -> bytes:
        """A frame whose checksum is wrong."""
        frame = bytearray(_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}}))
        frame[-1] ^= 0xFF
        return bytes(frame)

    def parse_embed(self, body: Any, path_model: str | None, *, batch: bool) -> EmbedCall:
        """Converse has no embeddings."""
        raise bad_request("ValidationException: Converse has no embeddings", status=400)

    def embed_body(self, plan: EmbedPlan, call: EmbedCall, *, batch: bool) -> Any:
        """Converse has no embeddings."""
        raise bad_request("ValidationException: Converse has no embeddings", status=400)

    def models_body(self, providers: list[ProviderProfile]) -> Any:
        """The runtime endpoint lists no models."""
        return {"modelSummaries": []}

    def error_body(self, exc: ProviderError, status: int) -> Any:
        """``{"message"}`` (the name goes in ``x-amzn-ErrorType``, added by the handler from ``__type``)."""
        overflow = overflow_of(exc)
        message = exc.message
        if overflow is not None:
            message = (f"Input is too long for requested model. {overflow.prompt_tokens + overflow.output_tokens} "
                       f"tokens > {overflow.context_window}.")
        elif isinstance(exc, ProviderRateLimited):
            message = "Too many requests, please wait before trying again."
        return {"message": message, "__type": _error_type(exc, status)}

    def error_status(self, exc: ProviderError) -> int:
        """AWS's statuses: a refused identity is 403, an unknown model 400 or 404."""
        status = status_of(exc)
        return 403 if status == 401 else status


_WIRE = BedrockWire()


def _aws_error(status: int, kind: str, message: str, retry_after: float | None = None) -> web.Response:
    headers = {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    if retry_after:
        headers["Retry-After"] = str(math.ceil(retry_after))
    return web.json_response({"message": message}, status=status, headers=headers)


def _signature_problem(request: web.Request, body: bytes, now: float) -> web.Response | None:
    """AWS's 403 when the request is not signed by the test credentials, else None."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    auth = request.headers.get("Authorization", "")
    if not auth:
        return _aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    found = _AUTH.fullmatch(auth.strip())
    if found is None:
        return _aws_error(403, "IncompleteSignatureException", "Authorization header requires 'Credential', "
                          "'Signature' and 'SignedHeaders' parameters.")
    key, day, region, service, signed, signature = found.groups()
    if key != SIM_ACCESS_KEY_ID:
        return _aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    if service != "bedrock":
        return _aws_error(403, "InvalidSignatureException", f"Credential should be scoped to correct service: "
                          f"'bedrock'. (it is scoped to '{service}')")
    stamp = request.headers.get("X-Amz-Date", "")
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return _aws_error(403, "IncompleteSignatureException", "X-Amz-Date is missing or malformed.")
    if abs(when - now) > _SKEW_S or not stamp.startswith(day):
        return _aws_error(403, "InvalidSignatureException", "Signature expired: the request's date is too far from "
                          "the server's time.")
    names = signed.split(";")
    headers = {name: request.headers.get(name, "") for name in names}
    resigned = botocore.awsrequest.AWSRequest(method=request.method, url=f"{request.scheme}://{request.host}"
                                              f"{request.raw_path}", data=body, headers=headers)
    resigned.context["timestamp"] = stamp
    token = request.headers.get("X-Amz-Security-Token") if "x-amz-security-token" in names else None
    signer = botocore.auth.SigV4Auth(
        botocore.credentials.Credentials(SIM_ACCESS_KEY_ID, SIM_SECRET_ACCESS_KEY, token), "bedrock", region)
    canonical = signer.canonical_request(resigned)
    expected = signer.signature(signer.string_to_sign(resigned, canonical), resigned)
    if not hmac.compare_digest(expected, signature):
        return _aws_error(403, "InvalidSignatureException", "The request signature we calculated does not match the "
                          "signature you provided. Check your AWS Secret Access Key and signing method.")
    return None


async def _converse(request: web.Request, stream: bool) -> web.StreamResponse:
    sim = server_state(request.app)
    body = await request.read()
    refused = _signature_problem(request, body, sim.clock.now())
    if refused is not None:
        return refused
    forced = request.headers.get(FAULT_HEADER, "").strip().lower()
    if forced == "403":
        return _aws_error(403, "AccessDeniedException", "You don't have access to the model with the specified "
                          "model ID.")
    model = served_model(request.match_info["model"], sim.profile.model_names)
    if model is None:
        return _aws_error(400, "ValidationException", "The provided model identifier is invalid.")
    if forced == "throttling" and not stream:
        return _aws_error(429, "ThrottlingException", "Too many requests, please wait before trying again.",
                          retry_after=1)
    if stream:
        return await _converse_stream(request, model, throttle=forced == "throttling")
    response = await _chat(request, _WIRE, model, stream=False)
    return _named(response)


def _named(response: web.StreamResponse) -> web.StreamResponse:
    """Move an error body's ``__type`` into the ``x-amzn-ErrorType`` header, as Bedrock sends it."""
    if response.status >= 400 and isinstance(response, web.Response) and response.body is not None:
        try:
            data = json.loads(bytes(response.body))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return response
        if isinstance(data, dict) and "__type" in data:
            kind = data.pop("__type")
            response.body = json.dumps(data).encode()
            response.headers["x-amzn-ErrorType"] = f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    return response


async def _converse_stream(request: web.Request, model: str, *, throttle: bool) -> web.StreamResponse:
    """ConverseStream: the plan played as event-stream frames (a throttled one ends in an exception frame)."""
    sim = server_state(request.app)
    try:
        fault = None if throttle else _fault(request)
        call = _WIRE.parse_chat(await _body(request), model, stream=True)
        provider = sim.provider(request, call.model)
        key = f"{provider.name}/{call.model}"
        index = sim.served.get(key, 0)
        plan = sim.simulator.plan_chat(provider, call.request, model=call.model, index=index, stream=True,
                                       fault=fault)
        sim.served[key] = index + 1
    except ProviderError as exc:
        return _named(_error_response(exc))
    error = plan.error(stream=True)
    if error is not None and plan.outcome not in ("malformed", "cut"):
        await _wait(sim, plan.ttft_s * (0.1 if plan.outcome in ("rate_limited", "auth") else 1.0))
        return _named(_error_response(error))
    response = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream",
                                           "x-amzn-RequestId": plan.response_id})
    await response.prepare(request)
    for frame in _WIRE.stream_open(plan, call, 0):
        await response.write(frame)
    if plan.outcome == "malformed":
        await _wait(sim, plan.ttft_s)
        await response.write(_WIRE.stream_garbage(plan))
        await response.write_eof()
        return response
    stop_at = plan.cut_at if plan.outcome == "cut" or throttle else len(plan.chunks)
    last = len(plan.chunks) - 1
    for i, (piece, delay) in enumerate(zip(plan.chunks[:stop_at], plan.delays, strict=False)):
        await _wait(sim, delay)
        await response.write(_WIRE.stream_piece(plan, call, piece, first=i == 0, last=i == last, created=0))
    if throttle:
        await response.write(_exception("ThrottlingException", "Too many requests, please wait before trying again."))
    elif plan.outcome != "cut":
        for frame in [*_WIRE.stream_tools(plan, call, 0), *_WIRE.stream_close(plan, call, 0)]:
            await response.write(frame)
    await response.write_eof()
    return response


def _error_response(exc: ProviderError) -> web.Response:
    status = _WIRE.error_status(exc)
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if status == 429 and retry_after:
        headers["Retry-After"] = str(math.ceil(retry_after))
    return web.json_response(_WIRE.error_body(exc, status), status=status, headers=headers)


async def converse(request: web.Request) -> web.StreamResponse:
    """``POST /bedrock/model/{modelId}/converse``."""
    return await _converse(request, stream=False)


async def converse_stream(request: web.Request) -> web.StreamResponse:
    """``POST /bedrock/model/{modelId}/converse-stream``."""
    return await _converse(request, stream=True)


def mount_bedrock(app: web.Application) -> None:
    """Add the Bedrock runtime routes to a sim app."""
    app.router.add_post("/bedrock/model/{model}/converse", converse)
    app.router.add_post("/bedrock/model/{model}/converse-stream", converse_stream)
