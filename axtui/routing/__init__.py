"""Routing: the catalog of deployments and the strategies that choose among them."""

from axtui.routing.catalog import Catalog, OrderedRouter

__all__ = ["Catalog", "OrderedRouter"]
