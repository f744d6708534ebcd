"""Routing's tables: failed attempts and circuit changes, and A/B feedback.

A call record names only the deployment that finally served the call;
``route_events`` keeps every attempt that failed on the way (and every
circuit that opened or closed), so ``ax route status`` in another process
can rebuild each deployment's error rate and circuit state. Rows are
written by the recorder's batch hook, in the same transaction as the calls.
``ab_feedback`` holds what users said about answers given under an A/B
test.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

__all__ = ["ABFeedback", "RouteEvent"]


class RouteEvent(SQLModel, table=True):
    """A failed attempt on a deployment, or its circuit changing state.

    ``kind`` is ``failure`` (the deployment's fault), ``rate_limited`` (an
    upstream 429; ``retry_after`` in seconds when it said) or ``circuit``
    (``detail`` is ``before->after: reason``). ``ts`` is epoch seconds when
    it happened.
    """

    __tablename__ = "route_events"
    __table_args__ = (
        Index("ix_route_events_ts", "ts"),
        Index("ix_route_events_deployment_ts", "deployment", "ts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ts: float
    deployment: str = Field(max_length=384)
    kind: str = Field(max_length=16)
    error_class: str | None = Field(default=None, max_length=64)
    http_status: int | None = None
    latency_ms: float | None = None
    retry_after: float | None = None
    detail: str | None = Field(default=None, max_length=512)


class ABFeedback(SQLModel, table=True):
    """A user's verdict on one answer given under an A/B test.

    ``score`` is 0 (bad) to 1 (good); ``variant`` is ``<test>:<variant>``
    as recorded with the call.
    """

    __tablename__ = "ab_feedback"
    __table_args__ = (
        Index("ix_ab_feedback_test_ts", "test", "ts"),
        Index("ix_ab_feedback_request_id", "request_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ts: float
    request_id: str = Field(max_length=64)
    test: str = Field(max_length=128)
    variant: str = Field(max_length=128)
    user: str = Field(max_length=256)
    score: float
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
