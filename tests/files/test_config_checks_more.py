"""Config that parses but could never serve is refused at load, naming the file, line, key and fix.

Each of these used to pass `ax config show` and `ax serve`, then fail every
call (a 500 with a traceback) or misbehave silently: a base_url no client
can call, a header that would split a request, two model names for one
deployment, an infinite weight, an unclosed glob in a cache policy.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from yarl import URL

from axtui import locations
from axtui.cli import main
from axtui.config import DeploymentConfig, ProviderConfig, Settings, parse_settings
from axtui.engine.compose import build_catalog
from axtui.errors import ConfigError


def refused(text: str) -> str:
    """The message of the ConfigError ``text`` raises, checked to name the file."""
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, "ax.toml")
    message = str(caught.value)
    assert "ax.toml, line " in message, message
    return message


def provider(**settings: str) -> str:
    lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
    return f'[[providers]]\nname = "p"\nkind = "openai"\nmodels = ["m"]\n{lines}'


# -- base_url and endpoint_url ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:notaport/v1", "has the port 'notaport', which is not a number from 1 to 65535"),
        ("http://127.0.0.1:99999/v1", "has the port '99999', which is not a number from 1 to 65535"),
        ("http://127.0.0.1:0/v1", "has the port '0'"),
        ("http://[::1/v1", "opens the [ of an IPv6 address and never closes it"),
        ("http://exa mple.com/v1", "has the host 'exa mple.com', and no host name holds ' '"),
        ("http://[zz]:80/v1", "has [zz] where an IPv6 address goes"),
        ("http://[::1]x/v1", "has 'x' after its IPv6 address"),
        ("http://::1/v1", "IPv6 address outside brackets"),
        ("http://:8080/v1", "names no host"),
        ("http://exa\\tmple.com/v1", "holds the control character '\\t'"),
        ("http://host/v1\\n", "holds the control character '\\n'"),
        ("ftp://host/v1", "is not an http:// or https:// URL"),
    ],
)
def test_a_base_url_no_client_can_call_is_refused(url: str, why: str) -> None:
    message = refused(provider(base_url=f'"{url}"'))
    assert "ax.toml, line 5: providers.0.base_url: base_url " in message
    assert why in message
    assert "https://api.openai.com/v1" in message and "http://[::1]:8080/v1" in message  # what a valid one looks like


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "https://api.openai.com/v1/",
        "HTTPS://API.OPENAI.COM/v1",
        "http://127.0.0.1:11434/v1",
        "http://localhost",
        "http://host:1",
        "http://host:65535/v1",
        "http://host:/v1",
        "http://[::1]/v1",
        "http://[::1]:8080/v1",
        "http://[fe80::1%25eth0]:8080/v1",
        "http://[::ffff:10.0.0.1]:9/v1",
        "http://my_host.internal:8000/openai/v1",
        "http://bücher.example/v1",
        "http://user:pw@proxy.example.com/v1",
        "https://my-resource.openai.azure.com",
        "http://host/v1?api-version=1",
    ],
)
def test_every_url_that_works_is_still_accepted(url: str) -> None:
    assert parse_settings(provider(base_url=f'"{url}"')).providers[0].base_url == url
    assert ProviderConfig(name="b", kind="bedrock", endpoint_url=url).endpoint_url == url
    URL(url + "/chat/completions")  # and the network path (aiohttp's yarl) reads it


def test_endpoint_url_is_checked_the_same_way() -> None:
    message = refused('[[providers]]\nname = "b"\nkind = "bedrock"\nendpoint_url = "https://x.amazonaws.com:99999"\n')
    assert "line 4: providers.0.endpoint_url: endpoint_url " in message
    assert "has the port '99999'" in message and "leave it out for the region's own endpoint" in message


def test_a_password_in_a_refused_url_is_not_printed_back() -> None:
    message = refused(provider(base_url='"http://alice:hunter2@exa mple.com/v1"'))
    assert "hunter2" not in message and "alice" not in message
    assert "'http://***@exa mple.com/v1'" in message


# -- headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "key", "why"),
    [
        ('{"X-Test" = "a\\nb"}', "providers.0.headers.X-Test",
         "the value of header 'X-Test' holds the control character '\\n'"),
        ('{"X-Test" = "a\\r"}', "providers.0.headers.X-Test", "control character '\\r'"),
        ('{"X-Test" = "a\\u0000b"}', "providers.0.headers.X-Test", "control character '\\x00'"),
        ('{"X Test" = "ab"}', "providers.0.headers.X Test", "'X Test' is not a header name"),
        ('{"X-Test:" = "ab"}', "providers.0.headers.X-Test:", "'X-Test:' is not a header name"),
        ('{"" = "ab"}', "providers.0.headers.", "'' is not a header name"),
    ],
)
def test_a_header_that_would_split_the_request_is_refused(headers: str, key: str, why: str) -> None:
    message = refused(provider(headers=headers))
    assert f"line 5: {key}: " in message and why in message


def test_a_header_value_is_never_printed_back_and_a_subtable_points_at_its_own_line() -> None:
    text = ('[[providers]]\nname = "p"\nmodels = ["m"]\n\n[providers.headers]\nX-Ok = "fine"\n'
            'Authorization = "Bearer sk-SECRET\\n"\n')
    message = refused(text)
    assert "line 7: providers.0.headers.Authorization: the value of header 'Authorization'" in message
    assert "sk-SECRET" not in message


def test_ordinary_headers_are_still_accepted() -> None:
    headers = '{"HTTP-Referer" = "https://example.com", "X-Title" = "café app", "X-Tabbed" = "a\\tb", "x_y.z~" = ""}'
    got = parse_settings(provider(headers=headers)).providers[0].headers
    assert got == {"HTTP-Referer": "https://example.com", "X-Title": "café app", "X-Tabbed": "a\tb", "x_y.z~": ""}


# -- one model name per deployment --------------------------------------------------------------

TWO_NAMES = """\
[[providers]]
name = "p"
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"

[[deployments]]
model = "fast"
provider = "p"
upstream_model = "good"

[[deployments]]
model = "cheap"
provider = "p"
upstream_model = "good"
"""


def test_two_model_names_for_one_provider_and_upstream_model_are_refused_naming_both() -> None:
    message = refused(TWO_NAMES)
    assert "ax.toml, line 11: deployments.1: [[deployments]] number 2 serves model 'cheap'" in message
    assert "which [[deployments]] number 1 already serves as model 'fast'" in message
    assert "a deployment is identified by provider/upstream_model ('p/good')" in message
    assert '[routing.aliases] cheap = ["fast"]' in message


def test_the_suggested_alias_serves_both_names() -> None:
    fixed = TWO_NAMES[: TWO_NAMES.rindex("[[deployments]]")] + '[routing.aliases]\ncheap = ["fast"]\n'
    catalog = build_catalog(parse_settings(fixed))
    assert [d.id for d in catalog.resolve("cheap")] == [d.id for d in catalog.resolve("fast")] == ["p/good"]


def test_a_providers_models_list_and_a_deployment_of_another_name_are_refused() -> None:
    text = ('[[providers]]\nname = "p"\nmodels = ["good"]\n\n'
            '[[deployments]]\nmodel = "fast"\nprovider = "p"\nupstream_model = "good"\n')
    message = refused(text)
    assert "line 5: deployments.0: [[deployments]] number 1 serves model 'fast'" in message
    assert "which the models list of provider 'p' already serves as model 'good'" in message
    assert '[routing.aliases] fast = ["good"]' in message


def test_the_fix_offered_when_the_name_has_other_deployments_is_not_an_alias() -> None:
    text = ('[[providers]]\nname = "p"\nmodels = ["good"]\n[[providers]]\nname = "q"\nmodels = ["fast"]\n'
            '[[deployments]]\nmodel = "fast"\nprovider = "p"\nupstream_model = "good"\n')
    message = refused(text)
    assert "'fast' keeps its other deployments" in message and "routing.aliases" not in message


def test_entries_that_refine_a_deployment_are_still_accepted() -> None:
    text = ('[[providers]]\nname = "p"\nmodels = ["good"]\n[[providers]]\nname = "q"\n'
            '[[deployments]]\nmodel = "good"\nprovider = "p"\nweight = 2\n'
            '[[deployments]]\nmodel = "good"\nprovider = "q"\n'
            '[[deployments]]\nmodel = "fast"\nprovider = "q"\nupstream_model = "quick"\n'
            '[[deployments]]\nmodel = "fast"\nprovider = "p"\nupstream_model = "better"\n')
    catalog = build_catalog(parse_settings(text))
    assert [(d.id, d.weight) for d in catalog.resolve("good")] == [("p/good", 2.0), ("q/good", 1.0)]
    assert [d.id for d in catalog.resolve("fast")] == ["q/quick", "p/better"]


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match="identified by provider/upstream_model"):
        Settings(providers=[ProviderConfig(name="p")], deployments=[
            DeploymentConfig(model="fast", provider="p", upstream_model="good"),
            DeploymentConfig(model="cheap", provider="p", upstream_model="good"),
        ])


# -- weights ------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", ["inf", "+inf", "-inf", "nan"])
def test_a_weight_that_is_not_finite_is_refused(weight: str) -> None:
    message = refused(f'[[deployments]]\nmodel = "m"\nprovider = "p"\nweight = {weight}\n')
    assert "line 4: deployments.0.weight: weight " in message
    assert "give a finite number, 0 or more" in message


def test_weights_within_the_bounds_are_accepted_and_below_them_refused() -> None:
    for weight in ("0", "0.5", "3", "1e6"):
        parsed = parse_settings(f'[[deployments]]\nmodel = "m"\nprovider = "p"\nweight = {weight}\n')
        assert parsed.deployments[0].weight == float(weight)
    assert "greater than or equal to 0" in refused('[[deployments]]\nmodel = "m"\nprovider = "p"\nweight = -1\n')
    for value in (math.inf, math.nan, "inf"):
        with pytest.raises(ValueError, match="finite"):
            DeploymentConfig.model_validate({"model": "m", "provider": "p", "weight": value})


# -- globs: one check for routing and the cache -------------------------------------------------


@pytest.mark.parametrize("pattern", ["gpt[", "gpt-[45", "[a]b[", "gpt[]", "gpt[!]"])
def test_an_unclosed_glob_is_refused_in_the_cache_as_in_routing(pattern: str) -> None:
    cache = refused(f'[cache]\nttl_s = 60\n\n[cache.models."{pattern}"]\nttl_s = 5\n')
    rule = refused(f'[[routing.rules]]\nname = "r"\nmodel = "{pattern}"\nstrategy = "cost"\n')
    ab = refused(f'[[routing.ab_tests]]\nname = "t"\nmodel = "{pattern}"\nvariants = [{{ name = "a", model = "x", '
                 'percent = 50 }, { name = "b", model = "y", percent = 50 }]\n')
    same = (f"the glob {pattern!r} opens a [ set that never closes; close it (eu-[abc]*) or, to match a literal "
            "bracket, write [[]")
    assert f"ax.toml, line 4: cache.models.{pattern}: {same}" in cache
    assert f"ax.toml, line 3: routing.rules.0.model: rule 'r', field model: {same}" in rule
    assert f"ax.toml, line 3: routing.ab_tests.0.model: A/B test 't', field model: {same}" in ab


def test_an_inline_cache_policy_points_at_its_line() -> None:
    message = refused('[cache]\nttl_s = 60\nmodels = { "gpt[" = { ttl_s = 5 } }\n')
    assert "ax.toml, line 3: cache.models.gpt[: the glob 'gpt['" in message


@pytest.mark.parametrize("pattern", ["*", "gpt-4o*", "gpt-[45]*", "[[]literal", "[]]x", "[!]]x", "a[!b]c", "?ob"])
def test_closed_globs_are_accepted_everywhere(pattern: str) -> None:
    settings = parse_settings(f'[cache.models."{pattern}"]\nttl_s = 5\n\n[[routing.rules]]\nname = "r"\n'
                              f'model = "{pattern}"\nstrategy = "cost"\n')
    assert pattern in settings.cache.models and settings.routing.rules[0].model == pattern


# -- at the command line ------------------------------------------------------------------------


def test_ax_config_show_refuses_such_a_file_with_one_clear_message() -> None:
    locations.config_path().write_text(TWO_NAMES, encoding="utf-8")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    assert "line 11: deployments.1:" in result.stderr and "provider/upstream_model" in result.stderr


# -- no setting is infinite ---------------------------------------------------------------------


def test_a_timeout_of_inf_is_refused_naming_its_line() -> None:
    message = refused(provider(timeout_s="inf"))
    assert "line 5: providers.0.timeout_s: Input should be a finite number" in message


def _float_settings(model: type, seen: set[type]) -> list[tuple[type, str, Callable[[float], object]]]:
    """Every setting of ``model`` and the sections under it that holds a float: (section, field, wrap).

    ``wrap`` puts a float where the field holds it (a dict's value, a list's item).
    """
    from pydantic import BaseModel

    if model in seen:
        return []
    seen.add(model)
    found: list[tuple[type, str, Callable[[float], object]]] = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        kinds: list[tuple[object, Callable[[float], object]]] = [(field.annotation, lambda v: v)]
        while kinds:
            kind, wrap = kinds.pop()
            origin, args = typing.get_origin(kind), typing.get_args(kind)
            if origin is dict:
                kinds.append((args[1], lambda v, w=wrap: w({"k": v})))  # type: ignore[misc]
            elif origin is list:
                kinds.append((args[0], lambda v, w=wrap: w([v])))  # type: ignore[misc]
            elif args:
                kinds.extend((arg, wrap) for arg in args)
            elif kind is float:
                found.append((model, name, wrap))
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                found.extend(_float_settings(kind, seen))
    return found


def test_no_float_setting_anywhere_accepts_inf_or_nan() -> None:
    fields = _float_settings(Settings, set())
    assert len(fields) > 20  # the walk reached the sections
    for section, name, wrap in fields:
        for value in (math.inf, -math.inf, math.nan):
            with pytest.raises(ValueError, match="finite"):
                section.__pydantic_validator__.validate_assignment(section.model_construct(), name, wrap(value))
