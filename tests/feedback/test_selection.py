"""Related-test selection: by module name, by (transitive) imports, by what the agent ran or wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.feedback import selection
from devloop.types import ToolCall


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def patch_of(*paths: str) -> str:
    return "".join(f"diff --git a/{p} b/{p}\n--- a/{p}\n+++ b/{p}\n@@ -1 +1 @@\n-x\n+y\n" for p in paths)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(
        tmp_path,
        {
            "src/shop/__init__.py": "",
            "src/shop/cart.py": "from .prices import total\n",
            "src/shop/prices.py": "import math\n",
            "src/shop/users.py": "",
            "src/shop/tax.py": "",
            "tests/test_cart.py": "from shop.cart import Cart\n",
            "tests/test_prices_extra.py": "from shop import (\n    prices,\n    users,\n)\n",
            "tests/test_users.py": "import shop.users as u\n",
            "tests/test_tax.py": "def test_x():\n    pass\n",  # imports nothing: found by its name only
            "tests/test_unrelated.py": "import os\n",
            "tests/sub/conftest.py": "",
            "tests/sub/test_deep.py": "",
        },
    )
    return tmp_path


def select(project: Path, *changed: str) -> list[str] | None:
    return selection.TestSelector(project).select(patch_of(*changed))


def test_changed_module_selects_importers_transitively_and_by_name(project: Path) -> None:
    chosen = select(project, "src/shop/prices.py")
    # prices <- cart <- test_cart (transitive); test_prices_extra imports it by `from shop import prices`
    assert chosen == ["tests/test_cart.py", "tests/test_prices_extra.py"]


def test_name_match_without_imports(project: Path) -> None:
    assert select(project, "src/shop/tax.py") == ["tests/test_tax.py"]


def test_unrelated_tests_are_not_selected(project: Path) -> None:
    chosen = select(project, "src/shop/users.py")
    assert chosen == ["tests/test_prices_extra.py", "tests/test_users.py"]
    assert "tests/test_unrelated.py" not in chosen


def test_conftest_selects_the_tests_below_it(project: Path) -> None:
    assert select(project, "tests/sub/conftest.py") == ["tests/sub/test_deep.py"]


def test_tests_the_agent_wrote_or_ran_are_included(project: Path) -> None:
    sel = selection.TestSelector(project)
    sel.note_calls(
        [
            ToolCall(
                "execute_bash",
                {"command": f"cd {project} && python -m pytest -q -k fast tests/test_unrelated.py::test_one"},
            )
        ]
    )
    write(project, {"tests/test_new.py": "def test_new():\n    pass\n"})
    chosen = sel.select(patch_of("tests/test_new.py", "README.md"))
    assert chosen == ["tests/test_unrelated.py::test_one", "tests/test_new.py"]


def test_deleted_module_selects_its_importers(project: Path) -> None:
    (project / "src/shop/users.py").unlink()
    assert "tests/test_users.py" in (select(project, "src/shop/users.py") or [])


def test_scope_all_and_command_hooks_run_everything(project: Path) -> None:
    assert selection.TestSelector(project, scope="all").select(patch_of("src/shop/tax.py")) is None
    assert selection.TestSelector(project, kind="command").select(patch_of("src/shop/tax.py")) is None


def test_non_python_change_selects_nothing(project: Path) -> None:
    assert select(project, "README.md") == []


@pytest.mark.parametrize(
    "command, expected",
    [
        ("pytest tests/test_cart.py", ["tests/test_cart.py"]),
        (
            "python3 -m pytest -x --tb short tests/test_cart.py::test_a[1-2]",
            ["tests/test_cart.py::test_a[1-2]"],
        ),
        ("python -m unittest tests.test_users.UsersTest.test_name", ["tests/test_users.py"]),
        ("python tests/test_tax.py", ["tests/test_tax.py"]),
        ("ls && pytest -k 'a or b' missing_file.py", []),
        ("echo pytest", []),
        ("pytest 'unbalanced", []),
    ],
)
def test_tests_in_command(project: Path, command: str, expected: list[str]) -> None:
    assert selection.tests_in_command(command, project) == expected


def test_module_names_follow_packages(project: Path) -> None:
    assert selection.module_name(project, "src/shop/cart.py") == "shop.cart"
    assert selection.module_name(project, "src/shop/__init__.py") == "shop"
    assert selection.module_name(project, "tests/test_cart.py") == "test_cart"


def test_import_scan_is_cached_until_the_file_changes(project: Path) -> None:
    index = selection.ImportIndex(project)
    index.graph()
    scan = index._cache["tests/test_cart.py"]
    index.graph()
    assert index._cache["tests/test_cart.py"] is scan
    write(project, {"tests/test_cart.py": "from shop.cart import Cart\nimport shop.tax\n"})
    _, edges = index.graph()
    assert edges["tests/test_cart.py"] == {"src/shop/cart.py", "src/shop/__init__.py", "src/shop/tax.py"}


def test_files_changed_earlier_in_the_run_stay_selected_after_a_revert(project: Path) -> None:
    sel = selection.TestSelector(project)
    assert sel.select(patch_of("src/shop/tax.py")) == ["tests/test_tax.py"]
    assert sel.select("") == ["tests/test_tax.py"]  # the edit was undone: its tests say whether that helped
