"""The price sheet: what each model costs, and what it can do.

Three layers, later ones winning for the same name:

1. the sheet shipped with ax (``prices.json`` beside this module, with its
   sources and the date they were read);
2. prices the user imported (``ax cost prices import``), kept in
   ``prices.json`` in the data dir;
3. ``[prices]`` overrides in the config, keyed by deployment id
   (``"local/llama3.1:8b"``) or model name (``"gpt-4o"``).

`PriceSheet.lookup` finds the price of a deployment: an override for its id,
then one for its model, then the sheet by id, upstream model name, base
model (what an opaque upstream id serves) and logical model name (snapshot
suffixes such as ``-2024-08-06`` are tried without the date too, and a
Bedrock ARN as the model id it names). `PriceSheet` is also the engine's
`PriceBook`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from axtui import locations
from axtui.bedrock_ids import arn_resource, named_model
from axtui.config import PriceOverride
from axtui.cost.calculator import cost_nanos
from axtui.errors import ConfigError
from axtui.types import Deployment, Usage

__all__ = [
    "SHIPPED_PATH",
    "ModelPrice",
    "PriceSheet",
    "Rates",
    "SheetInfo",
    "Tier",
    "price_from_json",
    "price_to_json",
    "read_price_file",
    "user_prices_path",
    "write_price_file",
]

#: The sheet shipped with ax.
SHIPPED_PATH = Path(__file__).with_name("prices.json")
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
#: Most distinct (deployment, token counts) costs a sheet remembers before starting afresh.
_COST_MEMO = 8192


@dataclass(frozen=True, slots=True)
class Rates:
    """Dollars per million tokens of each kind.

    A cache price left unset bills those tokens at ``input`` (a 1-hour
    write falls back to the 5-minute one first); ``reasoning`` unset bills
    thinking tokens at ``output``.
    """

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Tier:
    """Rates for every token of a call whose prompt exceeds ``above_tokens``."""

    above_tokens: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """The price and abilities of one model.

    ``origin`` says where the price came from: ``shipped``, ``imported`` or
    ``config``. ``batch_discount`` is the fraction the provider's batch API
    takes off (0.5 = half price). Capability fields are None when unknown.
    """

    model: str
    provider: str
    rates: Rates
    tiers: tuple[Tier, ...] = ()
    batch_discount: Decimal = Decimal(0)
    kind: str = "chat"
    context_window: int | None = None
    max_output: int | None = None
    tools: bool | None = None
    vision: bool | None = None
    json_mode: bool | None = None
    streaming: bool | None = None
    aliases: tuple[str, ...] = ()
    note: str = ""
    origin: str = "shipped"

    @property
    def is_free(self) -> bool:
        """Whether every token of every kind costs nothing."""
        r = self.rates
        prices = [r.input, r.output, r.cached_input, r.cache_write, r.cache_write_1h, r.reasoning]
        return all(not p for p in prices) and all(not t.rates.input and not t.rates.output for t in self.tiers)

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates that apply to a call with this many prompt tokens.

        Long-context tiers bill the whole call. A tier that leaves a cache
        price unset scales the base cache price by the tier's input ratio,
        which is how every provider derives them.
        """
        chosen: Tier | None = None
        for tier in self.tiers:
            if prompt_tokens > tier.above_tokens and (chosen is None or tier.above_tokens > chosen.above_tokens):
                chosen = tier
        if chosen is None:
            return self.rates
        base, t = self.rates, chosen.rates
        ratio = t.input / base.input if base.input else Decimal(1)

        def scaled(own: Decimal | None, fallback: Decimal | None) -> Decimal | None:
            if own is not None:
                return own
            return None if fallback is None else fallback * ratio

        return Rates(
            input=t.input,
            output=t.output,
            cached_input=scaled(t.cached_input, base.cached_input),
            cache_write=scaled(t.cache_write, base.cache_write),
            cache_write_1h=scaled(t.cache_write_1h, base.cache_write_1h),
            reasoning=t.reasoning if t.reasoning is not None else base.reasoning,
        )


@dataclass(frozen=True, slots=True)
class SheetInfo:
    """Where a price file's figures come from."""

    retrieved: str = ""
    source: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)


# -- JSON ------------------------------------------------------------------------------------


def _dec(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what} must be a number of dollars per million tokens, not {value!r}")
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{what} must be a number of dollars per million tokens, not {value!r}") from None
    if not out.is_finite() or out < 0:
        raise ValueError(f"{what} must be zero or more, not {value!r}")
    return out


def _opt_dec(data: Mapping[str, Any], key: str, what: str) -> Decimal | None:
    return None if data.get(key) is None else _dec(data[key], f"{what} {key}")


def _opt_int(data: Mapping[str, Any], key: str, what: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} {key} must be a whole number of tokens, not {value!r}")
    return value


def _opt_bool(data: Mapping[str, Any], key: str, what: str) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{what} {key} must be true or false, not {value!r}")


def _rates(data: Mapping[str, Any], what: str) -> Rates:
    return Rates(
        input=_dec(data.get("input"), f"{what} input"),
        output=_dec(data.get("output", 0), f"{what} output"),
        cached_input=_opt_dec(data, "cached_input", what),
        cache_write=_opt_dec(data, "cache_write", what),
        cache_write_1h=_opt_dec(data, "cache_write_1h", what),
        reasoning=_opt_dec(data, "reasoning", what),
    )


def price_from_json(data: Mapping[str, Any], origin: str = "shipped") -> ModelPrice:
    """A `ModelPrice` from one entry of a price file.

    Raises:
        ValueError: a field is missing or wrong; the message names it.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"a price entry must be an object, not {type(data).__name__}")
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ValueError("a price entry needs a non-empty 'model' name")
    what = repr(model)
    tiers = []
    for raw in data.get("tiers") or ():
        above = _opt_int(raw, "above_tokens", f"{what} tier")
        if above is None:
            raise ValueError(f"{what}: every tier needs above_tokens")
        tiers.append(Tier(above, _rates(raw, f"{what} tier above {above}")))
    discount = _dec(data.get("batch_discount", 0), f"{what} batch_discount")
    if discount >= 1:
        raise ValueError(f"{what}: batch_discount is a fraction below 1 (0.5 = half price), not {discount}")
    aliases = data.get("aliases") or ()
    if not isinstance(aliases, list | tuple) or not all(isinstance(a, str) for a in aliases):
        raise ValueError(f"{what}: aliases must be a list of names")
    return ModelPrice(
        model=model,
        provider=str(data.get("provider") or ""),
        rates=_rates(data, what),
        tiers=tuple(sorted(tiers, key=lambda t: t.above_tokens)),
        batch_discount=discount,
        kind=str(data.get("kind") or "chat"),
        context_window=_opt_int(data, "context_window", what),
        max_output=_opt_int(data, "max_output", what),
        tools=_opt_bool(data, "tools", what),
        vision=_opt_bool(data, "vision", what),
        json_mode=_opt_bool(data, "json", what),
        streaming=_opt_bool(data, "streaming", what),
        aliases=tuple(aliases),
        note=str(data.get("note") or ""),
        origin=origin,
    )


def _rates_json(r: Rates) -> dict[str, str]:
    out = {"input": str(r.input), "output": str(r.output)}
    for key in ("cached_input", "cache_write", "cache_write_1h", "reasoning"):
        value = getattr(r, key)
        if value is not None:
            out[key] = str(value)
    return out


def price_to_json(p: ModelPrice) -> dict[str, Any]:
    """One price as a price-file entry (exact decimal strings)."""
    out: dict[str, Any] = {"model": p.model, "provider": p.provider, "kind": p.kind, **_rates_json(p.rates)}
    if p.tiers:
        out["tiers"] = [{"above_tokens": t.above_tokens, **_rates_json(t.rates)} for t in p.tiers]
    if p.batch_discount:
        out["batch_discount"] = str(p.batch_discount)
    for key, attr in (("context_window", "context_window"), ("max_output", "max_output"), ("tools", "tools"),
                      ("vision", "vision"), ("json", "json_mode"), ("streaming", "streaming")):
        value = getattr(p, attr)
        if value is not None:
            out[key] = value
    if p.aliases:
        out["aliases"] = list(p.aliases)
    if p.note:
        out["note"] = p.note
    return out


def read_price_file(path: Path, origin: str) -> tuple[SheetInfo, list[ModelPrice]]:
    """Read a price file in ax's format.

    Raises:
        ConfigError: the file is unreadable or malformed; the message names
            the file, the entry and the fix.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return SheetInfo(), []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable price file ({exc}); delete it or import the prices again "
                          "with `ax cost prices import FILE`") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ConfigError(f"{path}: a price file is an object with a 'models' list; delete it or import again")
    prices = []
    for i, entry in enumerate(data["models"]):
        try:
            prices.append(price_from_json(entry, origin))
        except ValueError as exc:
            raise ConfigError(f"{path}: entry {i + 1}: {exc}; fix or delete that entry") from None
    raw = data.get("sources")
    sources = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    return SheetInfo(str(data.get("retrieved", "")), str(data.get("source", "")), sources), prices


def write_price_file(path: Path, prices: Iterable[ModelPrice], *, source: str, retrieved: str) -> None:
    """Write prices in ax's format, atomically (a new file readable by its owner only, as every file ax makes)."""
    doc = {
        "schema": 1,
        "currency": "USD",
        "unit": "dollars per million tokens",
        "retrieved": retrieved,
        "source": source,
        "models": [price_to_json(p) for p in sorted(prices, key=lambda p: p.model)],
    }
    with locations.replace_private(path) as out:
        out.write(json.dumps(doc, indent=1) + "\n")


def user_prices_path() -> Path:
    """Where imported prices are kept (the data dir's ``prices.json``)."""
    return locations.data_dir() / "prices.json"


# -- the sheet -------------------------------------------------------------------------------


class PriceSheet:
    """Prices by model name, with config overrides; the engine's `PriceBook`.

    Args:
        prices: sheet entries, later ones replacing earlier ones of the same name.
        overrides: ``[prices]`` from the config, by deployment id or model name.
        info: where the shipped figures come from.
    """

    def __init__(
        self,
        prices: Iterable[ModelPrice],
        overrides: Mapping[str, PriceOverride] | None = None,
        info: SheetInfo | None = None,
    ) -> None:
        self.info = info or SheetInfo()
        self._by_name: dict[str, ModelPrice] = {}
        self._aliases: dict[str, str] = {}
        for p in prices:
            self._by_name[p.model] = p
            for alias in p.aliases:
                self._aliases[alias] = p.model
        self.overrides: dict[str, PriceOverride] = dict(overrides or {})
        self._memo: dict[tuple[str, str, str, str], ModelPrice | None] = {}
        # Costs already worked out, by deployment and token counts: the gateway prices an
        # estimate and a cost on every call, and itemising in Decimal is ~30 us each, while
        # real traffic repeats the same few (deployment, tokens) shapes. The sheet never
        # changes after it is built, so an entry never goes stale; the dict is bounded.
        self._costs: dict[tuple[Any, ...], int | None] = {}

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, PriceOverride] | None = None,
        *,
        user_file: Path | None = None,
        include_user: bool = True,
    ) -> PriceSheet:
        """The shipped sheet, then imported prices, then ``overrides``.

        Raises:
            ConfigError: a price file is malformed.
        """
        info, shipped = read_price_file(SHIPPED_PATH, "shipped")
        imported: list[ModelPrice] = []
        if include_user:
            _, imported = read_price_file(user_file or user_prices_path(), "imported")
        return cls([*shipped, *imported], overrides, info)

    # -- lookups ------------------------------------------------------------------------

    def get(self, name: str) -> ModelPrice | None:
        """The sheet's entry for a model name or alias (overrides not applied)."""
        hit = self._by_name.get(name)
        if hit is None and name in self._aliases:
            hit = self._by_name.get(self._aliases[name])
        if hit is None and arn_resource(name) is not None:
            named = named_model(name)
            return self.get(named) if named else None
        if hit is None:
            bare = name.removeprefix("models/")
            dated = _SNAPSHOT.sub("", bare)
            if bare != name or dated != bare:
                return self.get(dated) if dated != name else None
        return hit

    def lookup(self, deployment: Deployment) -> ModelPrice | None:
        """The price of a deployment; None when nothing prices it."""
        key = (deployment.provider, deployment.upstream_model, deployment.base_model, deployment.model)
        try:
            return self._memo[key]
        except KeyError:
            pass
        names = (deployment.upstream_model, deployment.base_model, deployment.model)
        found = self._find(deployment.id, tuple(n for n in names if n), deployment.provider)
        self._memo[key] = found
        return found

    def price_for(self, name: str) -> ModelPrice | None:
        """The price of a model or deployment id typed by a person (``gpt-4o``, ``local/llama3.1:8b``)."""
        provider = name.split("/", 1)[0] if "/" in name else ""
        names = [name]
        if "/" in name:
            names.append(name.split("/", 1)[1])
        return self._find(name, tuple(names), provider)

    def _find(self, dep_id: str, models: tuple[str, ...], provider: str) -> ModelPrice | None:
        base: ModelPrice | None = None
        for name in (dep_id, *models):
            base = self.get(name)
            if base is not None:
                break
        for key in (dep_id, *models):
            override = self.overrides.get(key)
            if override is not None:
                return _apply_override(key, override, base, provider)
        return base

    def entries(self) -> list[ModelPrice]:
        """Every priced name: the sheet's entries with overrides applied, plus override-only names."""
        out: dict[str, ModelPrice] = dict(self._by_name)
        for key, override in self.overrides.items():
            own = self.get(key)
            base = own or (self.get(key.split("/", 1)[1]) if "/" in key else None)
            # "provider/model" keys that are not themselves model names are deployment overrides.
            provider = key.split("/", 1)[0] if own is None and "/" in key else (base.provider if base else "")
            out[key] = _apply_override(key, override, base, provider)
        return sorted(out.values(), key=lambda p: (p.provider, p.model))

    # -- PriceBook ----------------------------------------------------------------------

    def cost(self, deployment: Deployment, usage: Usage) -> int | None:
        """What a call with ``usage`` cost, in nano-dollars; None when the price is unknown."""
        key = (deployment.provider, deployment.upstream_model, deployment.base_model, deployment.model,
               usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens,
               usage.output_tokens, usage.reasoning_tokens)
        try:
            return self._costs[key]
        except KeyError:
            pass
        price = self.lookup(deployment)
        nanos = None if price is None else cost_nanos(price, usage)
        if len(self._costs) >= _COST_MEMO:
            self._costs.clear()
        self._costs[key] = nanos
        return nanos

    def estimate(self, deployment: Deployment, input_tokens: int, output_tokens: int) -> int | None:
        """What a call of about this size will cost (no cache discount); None when unknown."""
        return self.cost(deployment, Usage(input_tokens=max(0, input_tokens), output_tokens=max(0, output_tokens)))


def _apply_override(key: str, override: PriceOverride, base: ModelPrice | None, provider: str) -> ModelPrice:
    rates = Rates(
        input=override.input,
        output=override.output,
        cached_input=override.cached_input,
        cache_write=override.cache_write,
        cache_write_1h=override.cache_write_1h,
        reasoning=override.reasoning,
    )
    if base is None:
        return ModelPrice(model=key, provider=provider, rates=rates, origin="config")
    # The override replaces every price (tiers and batch discount included);
    # what the model can do still comes from the sheet.
    return replace(base, model=key, provider=provider or base.provider, rates=rates, tiers=(), batch_discount=Decimal(0),
                   aliases=(), origin="config", note=f"config override of {base.model}")
