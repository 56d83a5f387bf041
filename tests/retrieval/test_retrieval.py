"""The retrieval library and `devloop search`: tokenizing, definitions, ranking, links, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from devloop.retrieval import Index, extract, read_tree, skeleton, tokenize
from devloop.retrieval.index import FORMAT

HTTP = '''"""HTTP helpers."""


def parse_http_header(line: str) -> tuple[str, str]:
    """Split one `Name: value` header line."""
    name, _, value = line.partition(":")
    return name.strip(), value.strip()


class CookieJar:
    """Cookies kept between requests."""

    @property
    def count(self) -> int:
        return 0

    def add_cookie(self, name, value):
        pass
'''
MATHS = '''def add(a, b):
    """Sum two numbers."""
    return a + b
'''


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    (root / "pkg").mkdir()
    (root / "pkg" / "http.py").write_text(HTTP)
    (root / "pkg" / "maths.py").write_text(MATHS)
    (root / "README.md").write_text("A small library.\n")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.py").write_text("def parse_http_header_secret(): pass\n")
    (root / "escape.py").symlink_to(outside / "secret.py")
    (root / "linked").symlink_to(outside)
    return root


def test_tokenizer_splits_identifiers_and_stems() -> None:
    assert set(tokenize("header parsing")) <= set(tokenize("parse_http_header"))
    assert {"http", "header", "parser"} <= set(tokenize("HTTPHeaderParser"))
    assert {"flask", "app"} <= set(tokenize("src/flask/app.py"))


def test_definitions_have_signatures_docstrings_and_lines() -> None:
    defs = extract("pkg/http.py", HTTP.encode())
    by_name = {d.name: d for d in defs}
    assert set(by_name) == {"parse_http_header", "CookieJar", "CookieJar.count", "CookieJar.add_cookie"}
    header = by_name["parse_http_header"]
    assert (header.kind, header.line) == ("function", 4)
    assert header.signature == "def parse_http_header(line: str) -> tuple[str, str]"
    assert header.doc == "Split one `Name: value` header line."
    assert by_name["CookieJar.add_cookie"].kind == "method"
    assert by_name["CookieJar.count"].line == 14  # the def line, below its decorator
    outline = skeleton(defs)
    assert "    4: def parse_http_header" in outline and "    def add_cookie(self, name, value)" in outline
    assert "return" not in outline
    assert extract("notes.md", b"def x(): pass") == []


def test_links_out_of_the_tree_are_never_read(tree: Path) -> None:
    files = read_tree(str(tree))
    assert set(files) == {"pkg/http.py", "pkg/maths.py", "README.md"}


def test_ranking_files_and_definitions(tree: Path) -> None:
    index = Index.of_directory(str(tree))
    files = index.search("header parsing", 5)
    assert files[0].path == "pkg/http.py"
    assert all("secret" not in h.path for h in files)
    defs = index.search_definitions("header parsing", 5)
    assert (defs[0].path, defs[0].name, defs[0].line) == ("pkg/http.py", "parse_http_header", 4)
    assert index.search("zebra quantum", 5) == []
    assert "def add(a, b)" in index.skeleton("pkg/maths.py")


def test_rebuild_reuses_unchanged_files(tree: Path, tmp_path: Path) -> None:
    contents = read_tree(str(tree))
    first = Index.build(contents)
    assert Index.build(dict(contents), previous=first) is first
    changed = {**contents, "pkg/maths.py": b"def multiply(a, b):\n    return a * b\n"}
    second = Index.build(changed, previous=first)
    assert second.tree != first.tree
    old = {f.path: f for f in first.files}
    new = {f.path: f for f in second.files}
    assert new["pkg/http.py"] is old["pkg/http.py"] and second.reused == 2
    assert new["pkg/maths.py"] is not old["pkg/maths.py"]
    assert second.search_definitions("multiply", 1)[0].name == "multiply"


def test_search_command(tree: Path, tmp_path: Path) -> None:
    from cli_inprocess import run_devloop

    cmd = ["search", "header parsing", "--repo", str(tree), "-k", "2"]
    # The default cache is the user cache dir: here a temporary one.
    env = {**os.environ, "COLUMNS": "200", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    proc = run_devloop([*cmd, "--json"], env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["files"][0]["path"] == "pkg/http.py"
    assert data["definitions"][0] == {
        "path": "pkg/http.py", "line": 4, "kind": "function", "name": "parse_http_header",
        "signature": "def parse_http_header(line: str) -> tuple[str, str]",
        "score": data["definitions"][0]["score"],
    }  # fmt: skip
    human = run_devloop(cmd, env=env)
    assert human.returncode == 0 and "pkg/http.py:4" in human.stdout
    bad = run_devloop([*cmd[:3], str(tree / "nope")], env=env)
    assert bad.returncode == 2 and "not a directory" in bad.stderr
    # Both runs above used the default cache: one tree indexed, kept once.
    key = Index.build(read_tree(str(tree))).tree
    assert [p.name for p in (tmp_path / "xdg" / "devloop" / "retrieval" / "trees").iterdir()] == [key]
    # An unusable cache is given up with a warning, not an error.
    (tmp_path / "file").write_text("")
    got = run_devloop([*cmd, "--json", "--cache-dir", str(tmp_path / "file")], env=env)
    assert got.returncode == 0 and json.loads(got.stdout) == data
    assert "index cache" in got.stderr and "not used" in got.stderr


def test_a_directory_index_is_cached_by_tree(tree: Path, tmp_path: Path) -> None:
    from devloop.retrieval.store import IndexCache, with_cache

    def make(cache: IndexCache | None) -> Index:
        return Index.of_directory(str(tree), cache=cache)

    first, why = with_cache(make, IndexCache(tmp_path / "c"))
    assert not first.loaded and why == ""
    again, _ = with_cache(make, IndexCache(tmp_path / "c"))
    assert again.loaded and again.tree == first.tree  # nothing parsed: the tree's key was found
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / f"blobs-{FORMAT}.sqlite").write_bytes(b"not a database" * 100)
    damaged, why = with_cache(make, IndexCache(tmp_path / "d"))
    assert damaged.tree == first.tree and "not used" in why
    with pytest.raises(OSError):  # the tree itself unreadable: an error, not a cache problem
        with_cache(
            lambda c: Index.of_directory(str(tmp_path / "missing"), cache=c), IndexCache(tmp_path / "c")
        )


def test_retrieve_puts_ranked_skeletons_in_the_first_prompt(tree: Path, tmp_path: Path) -> None:
    from devloop.config import RunSettings
    from devloop.session import render_prompts, retrieved_files
    from devloop.session_settings import ToolSettings

    tools = ToolSettings.of(RunSettings(retrieve=1))
    assert tools.retrieve == 1
    block = retrieved_files(tree, "Header parsing drops the value", tools.retrieve, tmp_path)
    assert block.splitlines()[0] == "pkg/http.py"
    assert len(list((tmp_path / "trees").iterdir())) == 1  # the index went through the cache
    assert retrieved_files(tree, "Header parsing drops the value", 1, tmp_path) == block
    assert "    4: def parse_http_header(line: str) -> tuple[str, str]" in block
    assert "maths" not in block and "return" not in block
    _, task = render_prompts(tools, "Header parsing drops the value", tree, "", block)
    assert "<relevant_files>\npkg/http.py\n" in task
    _, plain = render_prompts(tools, "Header parsing drops the value", tree, "", "")
    assert "relevant_files" not in plain
    assert retrieved_files(tree, "anything", 0, tmp_path) == ""


def test_run_with_retrieve_sends_the_ranked_skeletons_in_the_first_prompt(tmp_path: Path) -> None:
    from cli_inprocess import run_devloop

    from devloop.models.scripted_server import ScriptedServer

    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "http.py").write_text(HTTP)
    (repo / "pkg" / "maths.py").write_text(MATHS)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    finish = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "finish", "arguments": {"message": "done"}}}]}  # fmt: skip
    env = {**os.environ, "OPENAI_API_KEY": "x", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    with ScriptedServer([finish]) as server:
        proc = run_devloop(
            ["run", "--repo", repo, "--issue", "Header parsing drops the value", "--model", "openai/scripted",
             "--base-url", server.url, "--output", tmp_path / "out", "--retrieve", "1"],
            env=env,
        )  # fmt: skip
        first = json.dumps(server.requests[0]["messages"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "<relevant_files>\\npkg/http.py\\n" in first
    assert "def parse_http_header(line: str) -> tuple[str, str]" in first and "maths.py" not in first
    assert (tmp_path / "xdg" / "devloop" / "retrieval" / "trees").is_dir()  # indexed through the cache
