"""Policy per model, alias or pattern, and the caller's directive."""

from __future__ import annotations

import pytest

from axtui.cache.policy import PolicyBook, directive_for
from axtui.config import CacheConfig, parse_settings
from axtui.errors import ConfigError, InvalidRequest
from axtui.ports import CacheDirective

from .helpers import request


def book(**config: object) -> PolicyBook:
    return PolicyBook(CacheConfig.model_validate(config))


def test_the_default_policy() -> None:
    p = book().for_model("gpt-4o")
    assert (p.enabled, p.ttl_s, p.scope, p.semantic, p.threshold, p.max_temperature) == (
        True, 3600, "user", True, 0.9, None
    )
    assert p.source == "[cache]"


def test_an_exact_name_beats_patterns_and_the_most_specific_pattern_wins() -> None:
    b = book(
        ttl_s=100,
        models={
            "*": {"ttl_s": 1},
            "gpt-4o*": {"ttl_s": 2, "scope": "global"},
            "gpt-4o-mini": {"threshold": 0.95},
        },
    )
    mini = b.for_model("gpt-4o-mini")
    assert (mini.ttl_s, mini.threshold, mini.scope) == (100, 0.95, "user")  # unset fields inherit [cache]
    assert b.for_model("gpt-4o").ttl_s == 2
    assert b.for_model("gpt-4o").scope == "global"
    assert b.for_model("claude").ttl_s == 1


def test_a_model_rule_can_switch_the_cache_on_or_off() -> None:
    b = book(enabled=False, models={"smart": {"enabled": True}})
    assert b.for_model("smart").enabled
    assert not b.for_model("fast").enabled
    assert not book(models={"fast": {"enabled": False}}).for_model("fast").enabled


def test_the_temperature_ceiling() -> None:
    p = book(max_temperature=0.5).for_model("m")
    plain = CacheDirective()
    assert p.reads(request(temperature=0.5), plain)
    assert not p.reads(request(temperature=0.7), plain)
    assert not p.writes(request(temperature=0.7), plain)
    assert p.reads(request(), plain)  # unset: the provider's default, treated as 0


def test_directives() -> None:
    p = book(ttl_s=50).for_model("m")
    r = request()
    assert not p.reads(r, CacheDirective.parse("no-cache")) and p.writes(r, CacheDirective.parse("no-cache"))
    assert not p.reads(r, CacheDirective.parse("no-store")) and not p.writes(r, CacheDirective.parse("no-store"))
    assert p.ttl_for(CacheDirective.parse("ttl=10")) == 10
    assert p.ttl_for(CacheDirective()) == 50
    # A caller may shorten the operator's TTL, never lengthen it (in a global scope it would pin an answer).
    assert p.ttl_for(CacheDirective.parse("ttl=99999999999")) == 50
    assert book(ttl_s=0).for_model("m").ttl_for(CacheDirective.parse("ttl=7")) == 7
    zero = CacheDirective.parse("ttl=0")
    assert not p.reads(r, zero) and not p.writes(r, zero)


def test_directive_from_header_or_metadata() -> None:
    assert directive_for("no-cache").read is False
    assert directive_for(None, {"ax_cache": "no-store"}).write is False
    assert directive_for("ttl=5", {"ax_cache": "no-store"}).write is True  # the header wins
    assert directive_for(None, {"other": 1}) == CacheDirective()
    with pytest.raises(InvalidRequest, match="no-cache, no-store or ttl=SECONDS"):
        directive_for("sometimes")
    with pytest.raises(InvalidRequest, match="must be a string"):
        directive_for(None, {"ax_cache": 5})


def test_a_provider_embedder_needs_a_model() -> None:
    with pytest.raises(ConfigError, match="embedder_model"):
        parse_settings('[cache]\nembedder = "provider"\n')
    settings = parse_settings('[cache]\nembedder = "provider"\nembedder_model = "text-embedding-3-small"\n')
    assert settings.cache.embedder_model == "text-embedding-3-small"


BEHIND = {"simoai/gpt-4o": ["gpt-4o"], "simoai/gpt-4o-mini": ["gpt-4o-mini"], "smart": ["gpt-4o", "claude"],
          "twins": ["gpt-4o", "gpt-4o-2"]}


def behind_book(**config: object) -> PolicyBook:
    return PolicyBook(CacheConfig.model_validate(config), lambda name: BEHIND.get(name, []))


def test_naming_a_deployment_never_escapes_its_models_policy() -> None:
    b = behind_book(scope="global", models={"gpt-4o": {"scope": "user"}, "gpt-4o-mini": {"enabled": False}})
    assert b.for_model("simoai/gpt-4o").scope == "user"
    assert not b.for_model("simoai/gpt-4o-mini").enabled
    assert "gpt-4o" in b.for_model("simoai/gpt-4o").source
    # Its own entry still decides.
    own = behind_book(models={"gpt-4o": {"scope": "user"}, "simoai/gpt-4o": {"scope": "global"}})
    assert own.for_model("simoai/gpt-4o").scope == "global"


def test_an_alias_takes_the_strictest_of_its_models() -> None:
    b = behind_book(ttl_s=600, models={"gpt-4o": {"ttl_s": 60, "threshold": 0.95}, "claude": {"semantic": False},
                                       "gpt-4o-2": {"ttl_s": 0, "max_temperature": 0.3}})
    smart = b.for_model("smart")
    assert (smart.enabled, smart.ttl_s, smart.semantic, smart.threshold) == (True, 60, False, 0.95)
    twins = b.for_model("twins")
    assert (twins.ttl_s, twins.max_temperature, twins.semantic) == (60, 0.3, True)  # 0 (until evicted) is longest


def test_an_alias_over_models_cached_in_different_scopes_is_not_cached() -> None:
    b = behind_book(models={"gpt-4o": {"scope": "global"}})
    smart = b.for_model("smart")
    assert not smart.enabled
    assert "different scopes" in smart.source and "[cache.models.'smart']" in smart.source
    assert behind_book(models={"gpt-4o": {"scope": "global"}, "smart": {"scope": "user"}}).for_model("smart").enabled
