"""The call log: one row per call, failed ones too.

The ``calls`` table is built from `axtui.types.CallRecord`: one column per
field, with the field's type (``X | None`` is a nullable column), so a
field added to the record is a column of the table (and the schema test
asks for its migration) rather than a value the recorder silently leaves
out. What the record cannot say about storage (the longest a string may
be, money as 64-bit integers, long texts) is `_STORAGE` below, checked
against the record's fields when this module loads.

Subsystems keep their own tables in sibling modules named ``tables_*.py``
(the store imports every one of them, so the metadata is complete), each
with its own Alembic branch in ``migrations/versions``.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, fields
from typing import Any, Literal

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from axtui.types import CallRecord

__all__ = ["CALL_COLUMNS", "Call"]

_TEXT = "text"
_BIGINT = "bigint"
#: Storage of each string field (its longest length, or long text) and of money (64-bit).
_STORAGE: dict[str, int | str] = {
    "request_id": 64, "user": 256, "key": 64, "tags": 1024, "endpoint": 16, "requested_model": 256,
    "provider": 128, "model": 256, "deployment": 384, "status": 16, "error_class": 64, "error_message": _TEXT,
    "cost_nanos": _BIGINT, "saved_nanos": _BIGINT, "cache": 16, "route": 64, "rule": 128, "variant": 128,
    "region": 64, "prompt_hash": 64, "prompt": _TEXT, "team": 64,
}  # fmt: skip

_unknown = set(_STORAGE) - {f.name for f in fields(CallRecord)}
if _unknown:  # pragma: no cover - a typo here must not ship
    raise TypeError(f"_STORAGE names fields CallRecord does not have: {sorted(_unknown)}")

#: Every column of ``calls`` but ``id``, in `CallRecord` order: the fields the recorder writes.
CALL_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CallRecord))


def _column(name: str, hint: Any, default: Any) -> tuple[Any, Any]:
    """The annotation and `Field` of one ``calls`` column for a record field."""
    nullable = False
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        nullable = type(None) in args
        rest = [a for a in args if a is not type(None)]
        hint = rest[0]
    if typing.get_origin(hint) is Literal or typing.get_origin(hint) is tuple:
        hint = str  # statuses are strings; tags are stored comma-joined
    storage = _STORAGE.get(name)
    annotation = hint | None if nullable else hint
    default = None if default is MISSING and nullable else default
    kwargs: dict[str, Any] = {} if default is MISSING else {"default": default}
    if storage == _TEXT:
        return annotation, Field(**kwargs, sa_column=Column(Text, nullable=nullable))
    if storage == _BIGINT:
        return annotation, Field(**kwargs, sa_column=Column(BigInteger, nullable=nullable))
    if isinstance(storage, int):
        kwargs["max_length"] = storage
    elif hint is str:  # pragma: no cover - caught by the schema test too
        raise TypeError(f"CallRecord.{name} is a string: give it a length or text storage in _STORAGE")
    return annotation, Field(**kwargs)


def _build() -> type[SQLModel]:
    hints = typing.get_type_hints(CallRecord)
    annotations: dict[str, Any] = {"id": int | None}
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": "Call",
        "__doc__": (
            "One recorded call (`axtui.types.CallRecord` as a row).\n\n"
            "``ts`` is epoch seconds (UTC) when the call started. Money is integer\n"
            "nano-dollars; ``cost_nanos`` is NULL when the price is unknown, which is\n"
            "not the same as free. ``tags`` is comma-separated."
        ),
        "__tablename__": "calls",
        "__table_args__": (
            Index("ix_calls_ts", "ts"),
            Index("ix_calls_user_ts", "user", "ts"),
            Index("ix_calls_provider_ts", "provider", "ts"),
            Index("ix_calls_model_ts", "model", "ts"),
        ),
        "id": Field(default=None, primary_key=True),
    }
    for f in fields(CallRecord):
        default = f.default if f.default is not MISSING else MISSING
        if f.name == "tags":
            default = ""
        annotations[f.name], namespace[f.name] = _column(f.name, hints[f.name], default)
    namespace["__annotations__"] = annotations
    return types.new_class("Call", (SQLModel,), {"table": True}, lambda ns: ns.update(namespace))


Call = _build()
