"""Stored Responses API answers: what ``previous_response_id`` continues and ``GET /v1/responses/{id}`` returns.

A response is kept when the request left ``store`` true (OpenAI's default)
and belongs to the user of the key that made it: only that user reads,
continues or deletes it. ``body`` is the ``response`` object as it was
answered; ``conversation`` the messages a later turn continues from (the
history, this input and this output, without instructions); ``input_items``
what ``GET /v1/responses/{id}/input_items`` lists, ids included, fixed when
the response is stored so that no later deletion changes them (null on rows
stored before it was kept: they are read from the chain). All three are JSON.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

__all__ = ["StoredResponse"]


class StoredResponse(SQLModel, table=True):
    """One stored response (``created`` in epoch seconds)."""

    __tablename__ = "responses"
    __table_args__ = (Index("ix_responses_user_created", "user", "created"),)

    id: str = Field(primary_key=True, max_length=64)
    user: str = Field(max_length=256)
    key: str | None = Field(default=None, max_length=32)
    model: str = Field(max_length=256)
    created: float
    previous_id: str | None = Field(default=None, max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))
    conversation: str = Field(sa_column=Column(Text, nullable=False))
    input_items: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
