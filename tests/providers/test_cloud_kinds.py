"""The cloud kinds are registered like the others, and `ax config init` shows each, ready to uncomment."""

from __future__ import annotations

import re

import pytest

from axtui.cli.config import EXAMPLE
from axtui.config import ProviderConfig, parse_settings
from axtui.errors import ConfigError
from axtui.providers import create_provider
from axtui.providers.azure import AzureProvider
from axtui.providers.bedrock import BedrockProvider
from axtui.providers.registry import kinds
from axtui.providers.vertex import VertexProvider


def _commented_blocks() -> dict[str, str]:
    """Each commented-out ``[[providers]]`` block of the example, uncommented, by kind."""
    blocks: dict[str, str] = {}
    for block in re.findall(r"^# \[\[providers\]\]\n(?:# .*\n)+", EXAMPLE, flags=re.MULTILINE):
        text = "\n".join(line.removeprefix("# ") for line in block.splitlines())
        kind = re.search(r'^kind = "(\w+)"', text, flags=re.MULTILINE)
        assert kind is not None
        blocks[kind.group(1)] = text
    return blocks


def test_each_cloud_kind_is_registered_and_built() -> None:
    assert {"azure", "bedrock", "vertex"} <= set(kinds())
    made = {kind: create_provider(ProviderConfig(name=kind, kind=kind, base_url="https://r.openai.azure.com",
                                                 region="us-east-1", project="p"))
            for kind in ("azure", "bedrock", "vertex")}
    assert isinstance(made["azure"], AzureProvider)
    assert isinstance(made["bedrock"], BedrockProvider)
    assert isinstance(made["vertex"], VertexProvider)


@pytest.mark.parametrize("kind", ["azure", "bedrock", "vertex"])
def test_config_init_shows_each_cloud_kind_and_uncommented_it_is_valid(kind: str) -> None:
    block = _commented_blocks()[kind]
    (provider,) = parse_settings(block, "the example").providers
    assert provider.kind == kind and provider.models
    made = create_provider(provider)
    assert made.base_url.startswith("https://")


def test_the_new_fields_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"endpoint_url .bedrock\.aws. is not an http"):
        parse_settings('[[providers]]\nname = "b"\nkind = "bedrock"\nendpoint_url = "bedrock.aws"\n', "config.toml")
    settings = parse_settings('[[providers]]\nname = "a"\nkind = "azure"\nbase_url = "https://r.openai.azure.com"\n'
                              'deployments = { "gpt-4o" = "prod-4o" }\n', "config.toml")
    assert settings.providers[0].deployments == {"gpt-4o": "prod-4o"}
