"""The gateway server: OpenAI- and Anthropic-compatible routes, the metrics and admin API.

`create_app` builds the ASGI app; `axtui.server.run.serve` runs it under
uvicorn (``ax serve``).
"""

from axtui.server.app import AxServer, create_app

__all__ = ["AxServer", "create_app"]
