"""OpenAI's Responses API, as the simulated OpenAI endpoint serves it natively on ``/v1/responses``.

The body is read into a `ChatRequest` for the simulation (``input``
messages, ``function_call`` and ``function_call_output`` items;
``instructions``; function tools and ``tool_choice``;
``max_output_tokens``; ``reasoning.effort``; ``text.format``); the whole body rides along
(`ChatRequest.native`), and the answer echoes its settings as OpenAI's
does, hosted tool declarations and ``truncation`` included. Hosted tools
are accepted and never run. ``previous_response_id`` is refused: this
server keeps nothing (ax sends the whole conversation, ``store: false``).

The answer is a ``response`` object: a ``reasoning`` item when the model
reasoned, a ``message`` or ``function_call`` items, and the usage with
``input_tokens_details.cached_tokens`` and
``output_tokens_details.reasoning_tokens``. A stream is the documented
event sequence, every event with its ``sequence_number``, ending with
``response.completed`` (``response.incomplete`` when cut at
``max_output_tokens``); there is no ``[DONE]``.
"""

from __future__ import annotations

from typing import Any

from axtui.providers.openai_responses import responses_usage_body
from axtui.providers.sim.simulate import ChatPlan
from axtui.providers.sim.wire import ChatCall, bad_request, chat_request, sse
from axtui.providers.sim.wire_openai import OpenAIWire
from axtui.types import NativeRequest, Usage

__all__ = ["ResponsesWire"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return ""


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": str(body["instructions"])})
    given = body.get("input")
    if isinstance(given, str):
        return [*messages, {"role": "user", "content": given}]
    if not isinstance(given, list) or not given:
        raise bad_request("'input' must be a non-empty string or list of items")
    for item in given:
        if not isinstance(item, dict):
            raise bad_request("each item of 'input' must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role") if item.get("role") in ("user", "assistant", "system", "developer") else "user"
            messages.append({"role": role, "content": _text(item.get("content"))})
        elif kind == "function_call":
            call = {"id": str(item.get("call_id") or ""), "type": "function",
                    "function": {"name": str(item.get("name") or ""), "arguments": str(item.get("arguments") or "")}}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": str(item.get("call_id") or ""),
                             "content": _text(item.get("output"))})
    # Items of hosted tools (web search calls…) are accepted and read as nothing.
    return messages or [{"role": "user", "content": ""}]


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice if choice in ("auto", "none", "required") else None



class ResponsesWire(OpenAIWire):
    """``POST /v1/responses`` (errors, embeddings and models as OpenAI's)."""

    name = "openai-responses"

    def parse_chat(self, body: Any, path_model: str | None, *, stream: bool | None) -> ChatCall:
        """A Responses body as a `ChatCall`; the body itself is kept on the request."""
        if not isinstance(body, dict) or not body.get("model"):
            raise bad_request("the body must be a JSON object with 'model' and 'input'")
        if body.get("previous_response_id"):
            raise bad_request(f"Previous response with id {body['previous_response_id']!r} not found.", status=404)
        model = path_model or str(body["model"])  # Azure: the deployment's model
        data: dict[str, Any] = {"model": model, "messages": _messages(body),
                                "stream": bool(body.get("stream"))}
        tools = [{"type": "function", "function": {"name": t["name"], "parameters": t.get("parameters") or {}}}
                 for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"
                 and t.get("name")]
        if tools:
            data["tools"] = tools
            if _tool_choice(body.get("tool_choice")) is not None:
                data["tool_choice"] = _tool_choice(body.get("tool_choice"))
        for name, key in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"), ("top_p", "top_p"),
                          ("parallel_tool_calls", "parallel_tool_calls")):
            if body.get(name) is not None:
                data[key] = body[name]
        effort = (body.get("reasoning") or {}).get("effort")
        if effort:
            data["reasoning_effort"] = effort
        fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            data["response_format"] = {"type": "json_schema", "json_schema": {
                "name": str(fmt.get("name") or "response"), "schema": fmt.get("schema") or {}}}
        elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
            data["response_format"] = {"type": "json_object"}
        request = chat_request(data).with_native(NativeRequest(api="responses", body=body))
        return ChatCall(request=request, model=model, stream=bool(body.get("stream")))

    # -- the response object -------------------------------------------------------------------

    @staticmethod
    def _body(call: ChatCall) -> dict[str, Any]:
        native = call.request.native
        assert native is not None
        return native.body

    def _response(self, plan: ChatPlan, call: ChatCall, created: int, status: str,
                  output: list[dict[str, Any]], usage: Usage | None) -> dict[str, Any]:
        body = self._body(call)
        cut = plan.finish_reason == "length"
        return {
            "id": f"resp_{plan.response_id}", "object": "response", "created_at": created, "status": status,
            "error": None, "incomplete_details": {"reason": "max_output_tokens"} if cut and usage else None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": call.model, "output": output, "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None, "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"), "usage": responses_usage_body(usage) if usage else None,
            "user": body.get("user"), "metadata": body.get("metadata") or {},
        }

    def _reasoning(self, plan: ChatPlan, call: ChatCall) -> list[dict[str, Any]]:
        """The reasoning item, when the model reasoned: its summary only when the request asked for one."""
        if not plan.usage.reasoning_tokens:
            return []
        asked = (self._body(call).get("reasoning") or {}).get("summary")
        summary = [{"type": "summary_text", "text": plan.thinking}] if asked and plan.thinking else []
        return [{"type": "reasoning", "id": f"rs_{plan.response_id}", "summary": summary}]

    @staticmethod
    def _message(plan: ChatPlan, status: str = "completed") -> dict[str, Any]:
        content = [{"type": "output_text", "text": plan.text, "annotations": [], "logprobs": []}]
        return {"type": "message", "id": f"msg_{plan.response_id}", "status": status, "role": "assistant",
                "content": content if status == "completed" else []}

    @staticmethod
    def _calls(plan: ChatPlan, status: str = "completed") -> list[dict[str, Any]]:
        return [{"type": "function_call", "id": f"fc_{plan.response_id}_{i}", "call_id": c.id, "name": c.name,
                 "arguments": c.arguments if status == "completed" else "", "status": status}
                for i, c in enumerate(plan.tool_calls)]

    def _output(self, plan: ChatPlan, call: ChatCall) -> list[dict[str, Any]]:
        return [*self._reasoning(plan, call), *(self._calls(plan) if plan.tool_calls else [self._message(plan)])]

    def chat_body(self, plan: ChatPlan, call: ChatCall, created: int) -> Any:
        """The ``response`` object."""
        status = "incomplete" if plan.finish_reason == "length" else "completed"
        return self._response(plan, call, created, status, self._output(plan, call), plan.usage)

    # -- the stream ----------------------------------------------------------------------------

    def _event(self, call: ChatCall, kind: str, data: dict[str, Any]) -> bytes:
        sequence = call.scratch.get("sequence", 0)
        call.scratch["sequence"] = sequence + 1
        return sse({"type": kind, **data, "sequence_number": sequence}, event=kind)

    def stream_open(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """``response.created``, ``response.in_progress``, and the reasoning item if the model reasoned (its
        summary, when asked for, as one part: added, its text in one delta, done)."""
        opening = self._response(plan, call, created, "in_progress", [], None)
        events = [self._event(call, "response.created", {"response": opening}),
                  self._event(call, "response.in_progress", {"response": opening})]
        for item in self._reasoning(plan, call):
            at = {"item_id": item["id"], "output_index": 0}
            events.append(self._event(call, "response.output_item.added", {
                "output_index": 0, "item": {**item, "summary": []}}))
            for n, part in enumerate(item["summary"]):
                here = {**at, "summary_index": n}
                events += [
                    self._event(call, "response.reasoning_summary_part.added",
                                {**here, "part": {"type": "summary_text", "text": ""}}),
                    self._event(call, "response.reasoning_summary_text.delta", {**here, "delta": part["text"]}),
                    self._event(call, "response.reasoning_summary_text.done", {**here, "text": part["text"]}),
                    self._event(call, "response.reasoning_summary_part.done", {**here, "part": part}),
                ]
            events.append(self._event(call, "response.output_item.done", {"output_index": 0, "item": item}))
        return events

    def _index(self, plan: ChatPlan, call: ChatCall) -> int:
        return len(self._reasoning(plan, call))

    def stream_piece(self, plan: ChatPlan, call: ChatCall, piece: str, *, first: bool, last: bool,
                     created: int) -> bytes:
        """One ``response.output_text.delta`` (the first opens the message item and its part)."""
        at = {"item_id": f"msg_{plan.response_id}", "output_index": self._index(plan, call)}
        out = b""
        if first:
            out += self._event(call, "response.output_item.added", {"output_index": at["output_index"],
                                                                   "item": self._message(plan, "in_progress")})
            out += self._event(call, "response.content_part.added", {
                **at, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})
        return out + self._event(call, "response.output_text.delta",
                                 {**at, "content_index": 0, "delta": piece, "logprobs": []})

    def stream_tools(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """Each call: its item added, its arguments in fragments, done."""
        events = []
        start = self._index(plan, call)
        pending, whole = self._calls(plan, "in_progress"), self._calls(plan)
        for i, (item, done, pieces) in enumerate(zip(pending, whole, plan.fragments, strict=True)):
            at = {"item_id": item["id"], "output_index": start + i}
            events.append(self._event(call, "response.output_item.added", {"output_index": start + i, "item": item}))
            for piece in pieces:
                events.append(self._event(call, "response.function_call_arguments.delta", {**at, "delta": piece}))
            events.append(self._event(call, "response.function_call_arguments.done",
                                      {**at, "name": done["name"], "arguments": done["arguments"]}))
            events.append(self._event(call, "response.output_item.done", {"output_index": start + i, "item": done}))
        return events

    def stream_close(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """The message's closing events (when it had text), then ``response.completed`` with the usage."""
        events = []
        if not plan.tool_calls:
            message = self._message(plan)
            at = {"item_id": message["id"], "output_index": self._index(plan, call)}
            if not plan.chunks:
                events.append(self._event(call, "response.output_item.added", {
                    "output_index": at["output_index"], "item": self._message(plan, "in_progress")}))
                events.append(self._event(call, "response.content_part.added", {
                    **at, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}))
            part = message["content"][0]
            events.append(self._event(call, "response.output_text.done",
                                      {**at, "content_index": 0, "text": plan.text, "logprobs": []}))
            events.append(self._event(call, "response.content_part.done", {**at, "content_index": 0, "part": part}))
            events.append(self._event(call, "response.output_item.done", {"output_index": at["output_index"],
                                                                         "item": message}))
        body = self.chat_body(plan, call, created)
        kind = "response.incomplete" if body["status"] == "incomplete" else "response.completed"
        events.append(self._event(call, kind, {"response": body}))
        return events

    def stream_garbage(self, plan: ChatPlan) -> bytes:
        """An event whose data is not valid JSON (the ``malformed`` fault)."""
        return b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "delta": "\n\n'
