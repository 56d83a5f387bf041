"""Load the official harness's data and log parsers from an installed `swebench` 4.1.0, nothing else.

`import swebench` runs the package's `__init__`, which imports docker, datasets, modal and more; the
parts devloop reads (`harness.constants.python`, `harness.log_parsers.python`) need only the standard
library. So the package directories are registered as bare namespace modules, the one heavy import the
parsers name (`TestSpec`, used only in annotations) is a placeholder, the two modules are imported, and
`sys.modules` is put back as it was. Used by `generate_specs` and by the differential parser test; devloop
itself never needs swebench installed.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFERENCE_VERSION = "4.1.0"
"""The swebench release whose table and parsers devloop follows (its MAP_REPO_VERSION_TO_SPECS is gone
in 5.x)."""

OfficialParser = Callable[[str, Any], dict[str, str]]


class OfficialUnavailable(Exception):
    """swebench is not installed, or not the reference version."""


@dataclass(frozen=True)
class Official:
    """What devloop takes from the official package."""

    version: str
    specs: dict[str, dict[str, dict[str, Any]]]
    """MAP_REPO_VERSION_TO_SPECS_PY: repo -> version -> spec."""
    parsers: dict[str, OfficialParser]
    """MAP_REPO_TO_PARSER_PY: repo -> parser function (called as parser(log, test_spec))."""
    parser_functions: dict[str, OfficialParser]
    """Every `parse_log_<name>` defined in the Python log-parser module, by <name>."""
    requirements_paths: dict[str, list[str]]
    environment_yml_paths: dict[str, list[str]]
    install_commands: dict[str, str]
    """MAP_REPO_TO_INSTALL_PY (repo-wide commands run before pre_install)."""
    replace_requirements: list[tuple[str, str | None]]
    """REPLACE_REQ_PACKAGES: (yanked package, replacement or None) applied to requirements files."""
    non_test_exts: list[str]
    """NON_TEST_EXTS: endings of test-patch files left out of the test command."""


def _package_dir() -> Path:
    try:
        found = importlib.metadata.version("swebench")
    except importlib.metadata.PackageNotFoundError:
        raise OfficialUnavailable(
            f"swebench is not installed (pip install --no-deps swebench=={REFERENCE_VERSION})"
        ) from None
    if found != REFERENCE_VERSION:
        raise OfficialUnavailable(f"swebench {found} is installed; devloop follows {REFERENCE_VERSION}")
    spec = importlib.util.find_spec("swebench")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise OfficialUnavailable("swebench is installed but its package directory was not found")
    return Path(next(iter(spec.submodule_search_locations)))


def _literal_assignment(source: Path, name: str) -> Any:
    """The literal value assigned to `name` at the top level of `source` (read, never executed: the
    module imports requests and datasets)."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise OfficialUnavailable(f"{name} is not assigned in {source}")


def _import_light(*modules: str) -> list[types.ModuleType]:
    """Import `modules` of the installed swebench with its package `__init__`s bypassed (see the module
    docstring), then put `sys.modules` back as it was."""
    root = _package_dir()
    saved = {k: v for k, v in sys.modules.items() if k == "swebench" or k.startswith("swebench.")}
    for name in saved:
        del sys.modules[name]
    try:
        for name, sub in (
            ("swebench", ""),
            ("swebench.harness", "harness"),
            ("swebench.harness.log_parsers", "harness/log_parsers"),
            ("swebench.harness.test_spec", "harness/test_spec"),
        ):
            package = types.ModuleType(name)
            package.__path__ = [str(root / sub)]
            sys.modules[name] = package
        # grading.py reads the repo -> parser map from the log_parsers package, which it is not asked for here.
        sys.modules["swebench.harness.log_parsers"].MAP_REPO_TO_PARSER = {}  # type: ignore[attr-defined]
        placeholder = types.ModuleType("swebench.harness.test_spec.test_spec")
        placeholder.TestSpec = object  # type: ignore[attr-defined]
        sys.modules[placeholder.__name__] = placeholder
        return [importlib.import_module(name) for name in modules]
    finally:
        for name in [k for k in sys.modules if k == "swebench" or k.startswith("swebench.")]:
            del sys.modules[name]
        sys.modules.update(saved)


def load_grading() -> types.ModuleType:
    """The official `swebench.harness.grading` module (4.x rules). Raises OfficialUnavailable."""
    return _import_light("swebench.harness.grading")[0]


def load() -> Official:
    """Import the official table and Python log parsers. Raises OfficialUnavailable."""
    root = _package_dir()
    constants, parsers = _import_light(
        "swebench.harness.constants.python", "swebench.harness.log_parsers.python"
    )
    functions = {
        name.removeprefix("parse_log_"): fn
        for name, fn in vars(parsers).items()
        if name.startswith("parse_log_") and callable(fn) and fn.__name__ == name
    }
    replacements = _literal_assignment(root / "harness" / "test_spec" / "python.py", "REPLACE_REQ_PACKAGES")
    return Official(
        version=REFERENCE_VERSION,
        specs=constants.MAP_REPO_VERSION_TO_SPECS_PY,
        parsers=parsers.MAP_REPO_TO_PARSER_PY,
        parser_functions=functions,
        requirements_paths=constants.MAP_REPO_TO_REQS_PATHS,
        environment_yml_paths=constants.MAP_REPO_TO_ENV_YML_PATHS,
        install_commands=constants.MAP_REPO_TO_INSTALL_PY,
        replace_requirements=[(a, b) for a, b in replacements],
        non_test_exts=list(
            _literal_assignment(root / "harness" / "constants" / "__init__.py", "NON_TEST_EXTS")
        ),
    )


def load_test_directives() -> Callable[[dict[str, Any]], list[str]]:
    """The official `get_test_directives(instance)`, compiled alone from its module's source (the module
    imports requests and datasets) with the `re` and NON_TEST_EXTS it uses. Raises OfficialUnavailable."""
    root = _package_dir()
    source = root / "harness" / "test_spec" / "python.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    found: list[ast.stmt] = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_test_directives"
    ]
    if not found:
        raise OfficialUnavailable(f"get_test_directives is not defined in {source}")
    namespace: dict[str, Any] = {
        "re": re,
        "NON_TEST_EXTS": _literal_assignment(root / "harness" / "constants" / "__init__.py", "NON_TEST_EXTS"),
        "SWEbenchInstance": dict,
    }
    exec(compile(ast.Module(body=found, type_ignores=[]), str(source), "exec"), namespace)  # noqa: S102
    function: Callable[[dict[str, Any]], list[str]] = namespace["get_test_directives"]
    return function


def parser_name(official: Official, fn: OfficialParser) -> str:
    """The canonical name of an official parser function (aliases such as parse_log_flask resolve to
    the function they alias, e.g. "pytest")."""
    for name, candidate in official.parser_functions.items():
        if candidate is fn:
            return name
    raise OfficialUnavailable(f"parser {getattr(fn, '__name__', fn)!r} is not a parse_log_* function")
