"""The dashboard, ``ax monitor realtime``: a Textual app over a data backend.

Importing this package imports Textual; headless commands never do.
"""

from __future__ import annotations

__all__ = ["run_dashboard"]

from axtui.tui.run import run_dashboard
