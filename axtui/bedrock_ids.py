"""What a Bedrock model identifier names: the model whose prices and features apply to a call through it.

A deployment's upstream model on Bedrock is one of the ``modelId`` forms
the runtime takes (botocore's service models of ``bedrock-runtime`` and
``bedrock``):

| form | example | the model it names |
| ---- | ------- | ------------------ |
| a model id | ``anthropic.claude-sonnet-4-20250514-v1:0`` | itself |
| a system inference profile | ``us.anthropic.claude-sonnet-4-20250514-v1:0`` | itself |
| a foundation-model ARN | ``arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-…`` | its resource id |
| a system inference-profile ARN | ``arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-…`` | its resource id |
| an application inference-profile ARN | ``arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123xyz`` | none |
| provisioned throughput, custom and imported models, prompt routers | ``…:provisioned-model/abc123def456`` | none |

An ARN is ``arn:PARTITION:bedrock:REGION:ACCOUNT:TYPE/ID`` (the partition
``aws``, ``aws-us-gov``, ``aws-cn``…; a foundation model's account is
empty). An application inference profile's id is opaque, so the operator
names the model it serves: the deployment's ``base_model``.

Pure and importable from anywhere: the config, the price sheet, the
adapter and the simulated Bedrock all read ids through it.
"""

from __future__ import annotations

import re

__all__ = ["APPLICATION_PROFILE", "arn_resource", "is_model_id", "model_behind", "named_model"]

#: The resource type of an application inference profile's ARN.
APPLICATION_PROFILE = "application-inference-profile"

# Resource types whose id is the model id (or system inference profile id) itself.
_NAMING = frozenset({"foundation-model", "inference-profile"})
_ARN = re.compile(r"arn:aws(?:-[a-z-]+)?:bedrock:[a-z0-9-]*:(?:[0-9]{12})?:([a-z-]+)/(.+)")
# VENDOR.MODEL, optionally behind a profile's geography (us.) and followed by a version (-v1:0).
_MODEL_ID = re.compile(r"(?:[a-z-]+\.)?[a-z0-9-]+\.[a-z0-9-]+(?:[.:][a-z0-9-]+)*")


def arn_resource(model: str) -> tuple[str, str] | None:
    """``(resource type, resource id)`` of a Bedrock ARN; None when ``model`` is not one."""
    found = _ARN.fullmatch(model)
    return None if found is None else (found.group(1), found.group(2))


def named_model(model: str) -> str | None:
    """The model id (or system inference profile id) ``model`` names.

    A model or profile id names itself, a foundation-model or system
    inference-profile ARN the id after its type; any other Bedrock ARN
    (an application inference profile, provisioned throughput…) names no
    model: None.
    """
    resource = arn_resource(model)
    if resource is None:
        return model
    kind, ident = resource
    return ident if kind in _NAMING else None


def is_model_id(model: str) -> bool:
    """Whether ``model`` is shaped like a Bedrock model or system inference profile id (``anthropic.claude-…``)."""
    return _MODEL_ID.fullmatch(model) is not None


def model_behind(upstream: str, base_model: str = "") -> str:
    """The model id whose prices and features apply to calls to ``upstream``.

    Args:
        upstream: the deployment's upstream model: an id, an inference profile or an ARN.
        base_model: the model the operator says ``upstream`` serves (needed where it names none), as an id
            or an ARN that names one.

    Returns:
        The model ``base_model`` names when set, else the one ``upstream`` names, else ``upstream`` itself.
    """
    return (named_model(base_model) if base_model else None) or named_model(upstream) or upstream
