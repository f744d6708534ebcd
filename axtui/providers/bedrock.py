"""AWS Bedrock: every model family through the Converse and ConverseStream APIs.

``POST {endpoint}/model/{modelId}/converse`` (and ``/converse-stream``),
where the endpoint is ``https://bedrock-runtime.{region}.amazonaws.com``
unless ``endpoint_url`` replaces it, and ``modelId`` is a Bedrock model id
(``anthropic.claude-3-5-sonnet-20240620-v1:0``), an inference profile
(``us.anthropic.…``) or an ARN. The body is `axtui.providers._converse`'s,
shaped for the model the id names (`axtui.bedrock_ids.model_behind`): a
foundation-model or inference-profile ARN names it in its resource id, an
application inference profile through the deployment's ``base_model``.

Requests are signed with Signature Version 4 by botocore (the optional
``bedrock`` extra), with credentials from botocore's default chain: the
environment (``AWS_ACCESS_KEY_ID``…), a profile (``AWS_PROFILE``), SSO,
or the role of the machine. ``region`` comes from the config, else
``AWS_REGION``/``AWS_DEFAULT_REGION`` or the profile. Streams arrive in AWS's
binary event-stream framing, decoded with botocore's ``EventStreamBuffer``.

Errors: Bedrock names its error in the ``x-amzn-ErrorType`` header (and
``__type``) with ``{"message"}``; ``ThrottlingException`` is a 429 (rate
limited), ``AccessDeniedException`` and bad credentials a 403,
``ValidationException`` a 400 (context too long when it says so),
``ModelTimeoutException`` a timeout and ``ServiceUnavailableException`` a
503. Inside a stream they arrive as exception frames. Structured output is
served by some models only: another's refusal of ``outputConfig`` moves
the call on to the next deployment, and says to mark the deployment
``json_mode = false`` so JSON requests skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from axtui.bedrock_ids import model_behind
from axtui.clock import Clock
from axtui.config import ProviderConfig
from axtui.errors import (
    ConfigError,
    ContextTooLong,
    MalformedResponse,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    ProviderTimeout,
)
from axtui.providers._cloud import import_extra
from axtui.providers._converse import FINISH, converse_body, converse_usage, thinking_block, tool_call
from axtui.providers._exchange import TransportFailure
from axtui.providers._http import HTTPProvider, _dumps
from axtui.providers._wire import UnsupportedParameter, excerpt, parse_retry_after, redact, strict_json
from axtui.tracecontext import outbound_headers
from axtui.types import ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse

if TYPE_CHECKING:
    import httpx

__all__ = ["SERVICE", "BedrockProvider", "bedrock_error"]

#: The SigV4 service name of the Bedrock runtime.
SERVICE = "bedrock"

#: Words of Bedrock's refusal of a structured output by a model that has none.
_STRUCTURED = re.compile(r"outputconfig|textformat|structured output|json ?schema|json mode", re.IGNORECASE)

# Exception name -> (error class, status it stands for when the answer has none).
_EXCEPTIONS: dict[str, tuple[type[ProviderError], int]] = {
    "ThrottlingException": (ProviderRateLimited, 429),
    "ServiceQuotaExceededException": (ProviderRateLimited, 429),
    "ModelNotReadyException": (ProviderRateLimited, 429),
    "AccessDeniedException": (ProviderAuthError, 403),
    "UnrecognizedClientException": (ProviderAuthError, 403),
    "InvalidSignatureException": (ProviderAuthError, 403),
    "ExpiredTokenException": (ProviderAuthError, 403),
    "IncompleteSignatureException": (ProviderAuthError, 403),
    "MissingAuthenticationTokenException": (ProviderAuthError, 403),
    "ValidationException": (ProviderBadRequest, 400),
    "ResourceNotFoundException": (ProviderBadRequest, 404),
    "ModelTimeoutException": (ProviderTimeout, 408),
    "ModelErrorException": (ProviderServerError, 424),
    "ModelStreamErrorException": (ProviderServerError, 424),
    "InternalServerException": (ProviderServerError, 500),
    "ServiceUnavailableException": (ProviderServerError, 503),
}
_TOO_LONG = ("too long", "too many input tokens", "input length", "context window", "maximum context")


def _exception_name(value: str) -> str:
    # "ThrottlingException:http://internal.amazon.com/coral/…" or "com.amazon…#ThrottlingException".
    name = value.split(":", 1)[0].rsplit("#", 1)[-1].strip()
    return name[:1].upper() + name[1:]


def bedrock_error(provider: str, status: int, error_type: str, message: str, *,
                  retry_after: float | None = None, in_stream: bool = False) -> ProviderError:
    """The `ProviderError` a Bedrock error (an answer or an exception frame) stands for.

    Args:
        provider: the provider's configured name.
        status: the HTTP status (0 inside a stream: the exception's own is used).
        error_type: the exception's name (``ThrottlingException``…).
        message: Bedrock's message.
        retry_after: seconds from a ``Retry-After`` header, if any.
        in_stream: the error arrived as an exception frame inside a stream.
    """
    name = _exception_name(error_type)
    cls, usual = _EXCEPTIONS.get(name, (ProviderServerError if status >= 500 else ProviderBadRequest, 500))
    status = status or usual
    if status == 429 and cls is not ProviderRateLimited:
        cls = ProviderRateLimited
    where = "sent an error in the stream" if in_stream else f"answered HTTP {status}"
    detail = redact(message) or "(no error message)"
    head = f"provider {provider!r} {where} {name or 'error'}: {detail}"
    if cls is ProviderRateLimited:
        wait = f"retry after {retry_after:g}s" if retry_after is not None else (
            "slow down and retry with backoff, or ask AWS to raise this model's quota")
        return ProviderRateLimited(f"{head}; {wait}", provider=provider, http_status=429, retry_after=retry_after)
    if cls is ProviderAuthError:
        return ProviderAuthError(
            f"{head}; check the AWS credentials ax finds (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or "
            "the machine's role), that they allow bedrock:InvokeModel on this model, and that the model is "
            "enabled in this region", provider=provider, http_status=status)
    if cls is ProviderBadRequest and any(s in message.lower() for s in _TOO_LONG):
        return ContextTooLong(f"{head}; shorten the conversation or route to a model with a larger context window",
                              provider=provider, http_status=status)
    advice = {ProviderTimeout: "the model took too long; try again",
              ProviderServerError: "Bedrock failed; try again later or another deployment",
              ProviderBadRequest: "the request is not valid for this model on Bedrock"}[cls]
    return cls(f"{head}; {advice}", provider=provider, http_status=status)


class BedrockProvider(HTTPProvider):
    """Bedrock's Converse API in one AWS region, requests signed with SigV4."""

    kind: ClassVar[str] = "bedrock"
    default_key_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str] = ""
    stream_end_marker: ClassVar[str] = "its end (a metadata event after messageStop)"

    def __init__(
        self,
        config: ProviderConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(config, transport=transport, clock=clock)
        self._botocore: Any = None
        self._credentials: Any = None
        self._region = config.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
        self._finding = asyncio.Lock()

    @property
    def region(self) -> str:
        """The AWS region signed for (and in the default endpoint's name)."""
        if not self._region:
            raise ConfigError(
                f"provider {self.name!r} (bedrock) has no AWS region: set region = \"us-east-1\" (or the region "
                "the models are enabled in) in its config, or AWS_REGION"
            )
        return self._region

    @property
    def base_url(self) -> str:
        """``endpoint_url``, else ``https://bedrock-runtime.{region}.amazonaws.com``."""
        if self.config.endpoint_url:
            return self.config.endpoint_url.rstrip("/")
        return f"https://bedrock-runtime.{self.region}.amazonaws.com"

    @property
    def auth_headers_sent(self) -> bool:
        """Requests are signed, not keyed: there is no key variable to name."""
        return False

    def _load_botocore(self) -> Any:
        if self._botocore is None:
            import_extra("botocore", extra="bedrock", provider=self.name, purpose="signing requests to AWS")
            import botocore.auth
            import botocore.awsrequest
            import botocore.eventstream
            import botocore.session

            self._botocore = botocore
        return self._botocore

    def _resolve_credentials(self) -> Any:
        botocore = self._load_botocore()
        session = botocore.session.Session()
        if not self._region:
            self._region = session.get_config_variable("region") or ""
        credentials = session.get_credentials()
        if credentials is None:
            raise ProviderAuthError(
                f"provider {self.name!r} found no AWS credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE, or run ax where an IAM role is attached",
                provider=self.name,
            )
        return credentials

    async def _frozen_credentials(self) -> Any:
        """Credentials for one signature: found once in a thread, refreshed in a thread when they expire."""
        if self._credentials is None:
            async with self._finding:
                if self._credentials is None:
                    self._credentials = await asyncio.to_thread(self._resolve_credentials)
        credentials = self._credentials
        refresh_needed = getattr(credentials, "refresh_needed", None)
        if callable(refresh_needed) and refresh_needed():
            return await asyncio.to_thread(credentials.get_frozen_credentials)
        return credentials.get_frozen_credentials()

    def _signed_url(self, path: str) -> str:
        # Sign exactly the URL the exchange will send: each client normalises a path its own way.
        if self._transport is not None:
            import httpx

            return str(httpx.URL(self.base_url + path))
        from yarl import URL

        return str(URL(self.base_url + path))

    async def _signed_headers(self, path: str, body: bytes) -> dict[str, str]:
        botocore = self._load_botocore()
        credentials = await self._frozen_credentials()
        request = botocore.awsrequest.AWSRequest(method="POST", url=self._signed_url(path), data=body,
                                                 headers={"Content-Type": "application/json"})
        botocore.auth.SigV4Auth(credentials, SERVICE, self.region).add_auth(request)
        headers = {k: v for k, v in request.headers.items()}
        return {**headers, **(outbound_headers() or {})}

    def _model_path(self, model: str, operation: str) -> str:
        # ":" stays as it is (both clients keep it); "/" of an ARN is escaped.
        return f"/model/{quote(model, safe=':')}/{operation}"

    def _answer_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        data = data if isinstance(data, dict) else {}
        error_type = str(headers.get("x-amzn-ErrorType") or data.get("__type") or "")
        message = str(data.get("message") or data.get("Message") or excerpt(body, limit=300))
        return bedrock_error(self.name, status, error_type, message,
                             retry_after=parse_retry_after(headers, self.clock.now()))

    def _refused(self, payload: Mapping[str, Any], error: ProviderError) -> ProviderError:
        """``error``, or, when it refuses the structured output a model lacks, a refusal that moves the call on."""
        if "outputConfig" in payload and type(error) is ProviderBadRequest and _STRUCTURED.search(str(error)):
            return UnsupportedParameter(
                f"{error}. This model has no structured output on Bedrock: set json_mode = false on its deployment "
                f"so requests with a response_format go to another", param="response_format", provider=self.name)
        return error

    async def _converse(self, model: str, payload: dict[str, Any]) -> dict[str, Any]:
        path = self._model_path(model, "converse")
        body = _dumps(payload)
        headers = await self._signed_headers(path, body)
        try:
            reply = await self.exchange.request("POST", path, body=body, params=None, headers=headers)
        except TransportFailure as failure:
            raise self._transport_error(failure) from failure
        if not 200 <= reply.status < 300:
            raise self._refused(payload, self._answer_error(reply.status, reply.headers, reply.body))
        return self._json(reply.body, reply.status)

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        """One complete answer from ``POST /model/{modelId}/converse``."""
        body = converse_body(request, self.name, model_behind(deployment.upstream_model, deployment.base_model))
        data = await self._converse(deployment.upstream_model, body)
        try:
            blocks = data["output"]["message"]["content"]
            text = "".join(str(b["text"]) for b in blocks if "text" in b)
            calls = [tool_call(b["toolUse"]) for b in blocks if "toolUse" in b]
            thinking = [t for b in blocks if "reasoningContent" in b
                        and (t := thinking_block(b["reasoningContent"])) is not None]
            usage = converse_usage(data.get("usage") or {})
        except (KeyError, TypeError, AttributeError) as exc:
            raise self._malformed("a Converse answer", exc) from None
        stop = str(data.get("stopReason") or "end_turn")
        return ChatResponse(
            content=text,
            model=deployment.upstream_model,
            usage=usage,
            finish_reason=FINISH.get(stop, "stop"),
            tool_calls=calls or None,
            id=f"bedrock-{uuid.uuid4().hex[:24]}",
            provider=self.name,
            reasoning="".join(str(t.get("thinking", "")) for t in thinking),
            thinking_blocks=thinking or None,
        )

    @contextlib.asynccontextmanager
    async def _open_events(self, model: str, payload: dict[str, Any]) -> AsyncIterator[AsyncIterator[Any]]:
        """A ConverseStream call whose decoded event-stream messages are yielded; the response always closes."""
        path = self._model_path(model, "converse-stream")
        body = _dumps(payload)
        headers = await self._signed_headers(path, body)
        try:
            reply = await self.exchange.open_stream(path, body=body, params=None, headers=headers)
        except TransportFailure as failure:
            raise self._transport_error(failure) from failure
        try:
            if not 200 <= reply.status < 300:
                try:
                    error_body = await reply.read()
                except TransportFailure as failure:
                    raise self._transport_error(failure) from failure
                raise self._refused(payload, self._answer_error(reply.status, reply.headers, error_body))
            async with contextlib.aclosing(self._messages(reply.chunks())) as messages:
                yield messages
        finally:
            await reply.aclose()

    async def _messages(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[Any, None]:
        botocore = self._load_botocore()
        buffer = botocore.eventstream.EventStreamBuffer()
        try:
            async for chunk in chunks:
                buffer.add_data(chunk)
                try:
                    for message in buffer:
                        yield message
                except botocore.eventstream.ParserError as exc:
                    raise MalformedResponse(
                        f"provider {self.name!r} sent an event-stream frame ax cannot read ({exc})",
                        provider=self.name) from None
        except TransportFailure as failure:
            raise self._transport_error(failure, streaming=True) from failure

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:
        """The answer as chunks from ``POST /model/{modelId}/converse-stream``.

        Text deltas; each tool call as OpenAI streams it (id and name, then
        argument fragments); a chunk with the finish reason; one with the
        usage from the closing ``metadata`` event.

        Raises:
            StreamInterrupted: the stream ended before its ``metadata`` event.
        """
        model = deployment.upstream_model
        ident = f"bedrock-{uuid.uuid4().hex[:24]}"
        calls: dict[int, int] = {}  # content block index -> tool call index
        finish: str | None = None
        body = converse_body(request, self.name, model_behind(model, deployment.base_model))
        async with self._open_events(model, body) as messages:
            async for message in messages:
                headers = message.headers
                try:
                    data = strict_json(message.payload or b"{}")
                except ValueError:
                    raise self._malformed(f"a stream event that is not JSON ({excerpt(message.payload)!r})") from None
                if headers.get(":message-type") == "exception":
                    raise bedrock_error(self.name, 0, str(headers.get(":exception-type", "")),
                                        str(data.get("message") or data.get("Message") or ""), in_stream=True)
                if headers.get(":message-type") == "error":
                    raise bedrock_error(self.name, 0, str(headers.get(":error-code", "")),
                                        str(headers.get(":error-message", "")), in_stream=True)
                event = headers.get(":event-type")
                try:
                    if event == "contentBlockStart" and "toolUse" in (data.get("start") or {}):
                        start = data["start"]["toolUse"]
                        index = calls[int(data.get("contentBlockIndex", 0))] = len(calls)
                        yield Chunk(tool_calls=[{"index": index, "id": str(start.get("toolUseId", "")),
                                                 "type": "function", "function": {
                                                     "name": str(start.get("name", "")), "arguments": ""}}],
                                    model=model, id=ident)
                    elif event == "contentBlockDelta":
                        delta = data.get("delta") or {}
                        if delta.get("text"):
                            yield Chunk(delta=str(delta["text"]), model=model, id=ident)
                        elif "toolUse" in delta:
                            index = calls.get(int(data.get("contentBlockIndex", 0)), 0)
                            yield Chunk(tool_calls=[{"index": index, "function": {
                                "arguments": str(delta["toolUse"].get("input", ""))}}], model=model, id=ident)
                        elif "reasoningContent" in delta:
                            thought = delta["reasoningContent"]
                            if thought.get("text"):
                                yield Chunk(reasoning=str(thought["text"]), model=model, id=ident)
                            if thought.get("signature"):
                                yield Chunk(reasoning_signature=str(thought["signature"]), model=model, id=ident)
                            if thought.get("redactedContent") is not None:
                                yield Chunk(reasoning_redacted=str(thought["redactedContent"]), model=model,
                                            id=ident)
                    elif event == "messageStop":
                        finish = FINISH.get(str(data.get("stopReason") or "end_turn"), "stop")
                        yield Chunk(finish_reason=finish, model=model, id=ident)
                    elif event == "metadata":
                        yield Chunk(usage=converse_usage(data.get("usage") or {}), model=model, id=ident)
                        return
                except (KeyError, TypeError, AttributeError, ValueError) as exc:
                    raise self._malformed("a stream event", exc) from None
            raise self._interrupted()

    async def embed(self, inputs: list[str], model: str, *, dimensions: int | None = None) -> EmbeddingResponse:
        """Not offered: Converse has no embeddings (Titan and Cohere embed through InvokeModel)."""
        raise ProviderBadRequest(
            f"provider {self.name!r} (bedrock) serves chat through Converse, which has no embeddings; route "
            "embeddings to another provider",
            provider=self.name,
            http_status=400,
        )

    async def list_models(self) -> list[str]:
        """The configured models (the runtime endpoint lists none)."""
        return list(self.config.models)
