"""The test command's files follow the official harness: every diff header of the test patch, in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.swebench import official
from devloop.swebench.directives import test_directives as directives

FIXTURE = Path(__file__).parents[1] / "fixtures" / "swebench_lite_test_headers.json"


@pytest.fixture(scope="module")
def reference():
    try:
        return official.load_test_directives()
    except official.OfficialUnavailable as exc:  # the dev extra installs it
        pytest.fail(f"the reference swebench is needed for this test: {exc}")


def test_every_lite_test_patch_gives_the_official_directives(reference) -> None:
    records = json.loads(FIXTURE.read_text())["records"]
    assert len(records) == 300
    differences = []
    for record in records:
        instance = {"repo": record["repo"], "test_patch": "\n".join(record["headers"])}
        ours, theirs = directives(instance["test_patch"], record["repo"]), reference(instance)
        if ours != theirs:
            differences.append((record["instance_id"], ours, theirs))
    assert differences == []


def test_a_new_empty_file_keeps_its_place_and_django_paths_become_modules(reference) -> None:
    patch = (
        "diff --git a/tests/app/__init__.py b/tests/app/__init__.py\nnew file mode 100644\n"
        "index 0000000..e69de29\n"
        "diff --git a/tests/app/test_x.py b/tests/app/test_x.py\n--- a/tests/app/test_x.py\n"
        "+++ b/tests/app/test_x.py\n@@ -1 +1 @@\n-a\n+b\n"
        "diff --git a/tests/data.json b/tests/data.json\n--- a/tests/data.json\n+++ b/tests/data.json\n"
        "@@ -1 +1 @@\n-1\n+2\n"
    )
    assert directives(patch) == ["tests/app/__init__.py", "tests/app/test_x.py"]
    assert directives(patch, "django/django") == ["app.__init__", "app.test_x"]
    for repo in ("", "django/django"):
        assert directives(patch, repo) == reference({"repo": repo, "test_patch": patch})
