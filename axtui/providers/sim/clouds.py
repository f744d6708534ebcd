"""The simulated fleet's cloud emulations, mounted on `ax sim serve`'s app.

Azure OpenAI under ``/azure`` (`cloud_azure`), Vertex AI under ``/vertex``
(`cloud_vertex`), the Bedrock runtime under ``/bedrock`` (`cloud_bedrock`; it
needs botocore, the ``bedrock`` extra, to check signatures, and is left out
without it).
"""

from __future__ import annotations

import importlib.util

from aiohttp import web

__all__ = ["mount_clouds"]


def mount_clouds(app: web.Application) -> None:
    """Add every cloud emulation's routes to a sim app."""
    from axtui.providers.sim.cloud_azure import mount_azure
    from axtui.providers.sim.cloud_vertex import mount_vertex

    mount_azure(app)
    mount_vertex(app)
    if importlib.util.find_spec("botocore") is not None:
        from axtui.providers.sim.cloud_bedrock import mount_bedrock

        mount_bedrock(app)
