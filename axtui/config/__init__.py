"""Settings: one TOML file, validated by pydantic, written back keeping the user's text.

`load_settings` reads the file (``AX_CONFIG`` or the config dir's
``config.toml``); a missing file means the defaults, which serve the
built-in demo fleet. A broken file raises `ConfigError` naming the file,
line, key and the fix. `save_settings` writes the settings back (the
dashboard and the API edit routing this way, the CLI budgets and limits)
atomically: a new file is written with tomli-w, readable by its owner
only; an existing one is edited with tomlkit, touching only the settings
that changed, so its comments, order and file mode stay as they were.

Each subsystem owns one section class here; the sections only hold plain
data and validation, never behaviour.
"""

from __future__ import annotations

from axtui.config._file import load_settings, parse_settings, save_settings, where_in_file, write_config_text
from axtui.config._providers import DeploymentConfig, PriceOverride, ProviderConfig
from axtui.config._routing import ROUTING_STRATEGIES, ABTestConfig, ABVariant, RoutingConfig, RoutingRule
from axtui.config._sections import (
    AlertsConfig,
    BudgetsConfig,
    CacheConfig,
    CachePolicy,
    MetricsConfig,
    RateLimitConfig,
    RecorderConfig,
    ServerConfig,
    TelemetryConfig,
    UIConfig,
    WebhooksConfig,
)
from axtui.config._settings import Settings

__all__ = [
    "ROUTING_STRATEGIES",
    "ABTestConfig",
    "ABVariant",
    "AlertsConfig",
    "BudgetsConfig",
    "CacheConfig",
    "CachePolicy",
    "DeploymentConfig",
    "MetricsConfig",
    "PriceOverride",
    "ProviderConfig",
    "RateLimitConfig",
    "RecorderConfig",
    "RoutingConfig",
    "RoutingRule",
    "ServerConfig",
    "Settings",
    "TelemetryConfig",
    "UIConfig",
    "WebhooksConfig",
    "load_settings",
    "parse_settings",
    "save_settings",
    "where_in_file",
    "write_config_text",
]

