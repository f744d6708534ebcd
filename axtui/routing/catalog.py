"""The catalog: which deployments serve which logical model, and aliases.

A logical model (``gpt-4o-mini``) may be served by several deployments
(``openai/gpt-4o-mini``, ``azure/gpt-4o-mini``); an alias (``fast``) names
several logical models. `Catalog.resolve` turns either into deployments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from axtui.errors import InvalidRequest, UnknownModel
from axtui.ports import Attempt, RoutePlan
from axtui.types import Caller, ChatRequest, Deployment

__all__ = ["Catalog", "OrderedRouter"]


class Catalog:
    """Deployments by logical model, plus aliases over logical models."""

    def __init__(
        self,
        deployments: Iterable[Deployment],
        aliases: Mapping[str, Sequence[str]] | None = None,
        embedding: Iterable[Deployment] = (),
    ) -> None:
        self.deployments: list[Deployment] = []
        self._by_model: dict[str, list[Deployment]] = {}
        self._by_id: dict[str, Deployment] = {}
        for d in deployments:
            if d.id in self._by_id:
                continue
            self.deployments.append(d)
            self._by_id[d.id] = d
            self._by_model.setdefault(d.model, []).append(d)
        self.aliases: dict[str, list[str]] = {k: list(v) for k, v in (aliases or {}).items()}
        #: Embedding models' deployments, kept apart so chat routing never picks one.
        self._embedding: dict[str, list[Deployment]] = {}
        for d in embedding:
            self._embedding.setdefault(d.model, []).append(d)

    def models(self) -> list[str]:
        """Logical model names served, without aliases."""
        return sorted(self._by_model)

    def names(self) -> list[str]:
        """Every name a caller may ask for: models (chat and embedding) and aliases."""
        return sorted(set(self._by_model) | set(self.aliases) | set(self._embedding))

    def models_behind(self, name: str) -> list[str]:
        """The models an alias or a ``provider/model`` deployment stands for; none for any other name."""
        if name in self._by_model:
            return []
        if name in self.aliases:
            return list(self.aliases[name])
        dep = self._by_id.get(name)
        return [dep.model] if dep is not None else []

    def resolve_embedding(self, name: str) -> list[Deployment]:
        """Deployments of an embedding model; any deployment of ``name`` when none is marked as one.

        Raises:
            UnknownModel: nothing serves ``name``.
        """
        if name in self._embedding:
            return list(self._embedding[name])
        return self.resolve(name)

    def get(self, deployment_id: str) -> Deployment | None:
        """A deployment by ``provider/upstream_model``."""
        return self._by_id.get(deployment_id)

    def resolve(self, name: str) -> list[Deployment]:
        """Deployments for a model, alias or deployment id, in configured order.

        Raises:
            UnknownModel: nothing serves ``name``; the error lists what does.
            InvalidRequest: ``name`` is an embedding model (a 400 that says to use ``/v1/embeddings``).
        """
        if name in self._by_model:
            return list(self._by_model[name])
        if name in self.aliases:
            out: list[Deployment] = []
            for model in self.aliases[name]:
                out.extend(self._by_model.get(model, ()))
            if out:
                return out
        dep = self._by_id.get(name)
        if dep is not None:
            return [dep]
        if name in self._embedding:
            chat = ", ".join(sorted(set(self._by_model) | set(self.aliases))) or "(none)"
            raise InvalidRequest(
                f"model {name!r} is an embedding model: it makes embeddings, not chat answers; call POST "
                f"/v1/embeddings with it, or ask a chat model (chat models served here: {chat})", param="model")
        error = UnknownModel(name, self.names())
        if name in self.aliases:
            # The name is served in form only: say which of its models are missing.
            listed = ", ".join(self.aliases[name]) or "no models"
            error.message = (
                f"alias {name!r} lists {listed}, and nothing here serves any of them; fix routing.aliases in the "
                f"config file (models served here: {', '.join(self.models()) or '(none)'})"
            )
            error.args = (error.message,)
        raise error


class OrderedRouter:
    """The simplest router: the catalog's deployments in order."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def plan(self, request: ChatRequest, caller: Caller, *, strategy: str | None = None) -> RoutePlan:
        return RoutePlan(self.catalog.resolve(request.model), strategy="ordered")

    def begin(self, deployment: Deployment) -> None:
        return None

    def observe(self, attempt: Attempt) -> None:
        return None
