"""The engine: the call pipeline and its composition from settings."""

from axtui.engine.gateway import CallOptions, CallResult, CallStream, Gateway

__all__ = ["CallOptions", "CallResult", "CallStream", "Gateway"]
