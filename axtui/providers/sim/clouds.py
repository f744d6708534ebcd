"""The simulated fleet's cloud emulations, mounted on `ax sim serve`'s app.

Azure OpenAI under ``/azure`` (`cloud_azure`), Vertex AI under ``/vertex``
(`cloud_vertex`).
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["mount_clouds"]


def mount_clouds(app: web.Application) -> None:
    """Add every cloud emulation's routes to a sim app."""
    from axtui.providers.sim.cloud_azure import mount_azure
    from axtui.providers.sim.cloud_vertex import mount_vertex

    mount_azure(app)
    mount_vertex(app)
