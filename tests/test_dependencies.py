"""Dependencies: each bounded below its next breaking release, each pinned in the lock CI installs from."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
#: Imported, but released in lockstep with (and pinned exactly by) a declared dependency.
_PINNED_BY_ANOTHER = {"pydantic_core"}
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements() -> list[Requirement]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"].values():
        reqs.extend(Requirement(r) for r in extra)
    return reqs


def _lock() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version.split(";")[0].strip())
    return pins


def test_every_dependency_has_an_upper_bound_on_its_next_breaking_release() -> None:
    pins = _lock()
    for req in _requirements():
        uppers = [Version(s.version) for s in req.specifier if s.operator == "<"]
        assert uppers, f"{req} has no upper bound; add <NEXT_MAJOR (or <0.NEXT_MINOR before 1.0)"
        upper = min(uppers)
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is not None and pinned.major == 0:  # pre-1.0: a minor release may break
            assert upper.major == 0 and len(upper.release) >= 2, f"{req}: before 1.0, bound the minor (<0.N)"
        else:
            assert upper.release[1:] in ((), (0,), (0, 0)), f"{req}: bound the major, like <{upper.major}"


def test_the_lock_pins_every_dependency_within_its_bounds() -> None:
    pins = _lock()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock; run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, outside {req.specifier}; run `make lock`"
        )


def test_every_library_ax_imports_is_a_declared_dependency() -> None:
    declared = {canonicalize_name(r.name) for r in _requirements()}
    provided = importlib.metadata.packages_distributions()
    missing = set()
    for path in (ROOT / "axtui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "axtui" or top in sys.stdlib_module_names:
                    continue
                dists = {canonicalize_name(d) for d in provided.get(top, [])}
                if dists and not dists & declared and top not in _PINNED_BY_ANOTHER:
                    missing.add(f"{top} ({', '.join(sorted(dists))}) in {path.relative_to(ROOT)}")
    assert not missing, "imported but not declared in pyproject.toml: " + "; ".join(sorted(missing))

