"""Webhook delivery for alert rules: ax's one webhook sender (`axtui.webhooks`).

Budget alerts use the same sender, so both kinds of alert share one HTTP
client, one retry rule and one address policy.
"""

from __future__ import annotations

from axtui.webhooks import AddressPolicy, Delivery, WebhookSender

__all__ = ["AddressPolicy", "Delivery", "WebhookSender"]
