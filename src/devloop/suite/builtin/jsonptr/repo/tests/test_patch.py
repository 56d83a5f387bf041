import pytest

from jsonptr import PatchError, apply_patch


def test_rfc_example_sequence():
    doc = {"foo": ["bar", "baz"], "qux": {"baz": 1}}
    out = apply_patch(doc, [
        {"op": "add", "path": "/foo/1", "value": "qux"},
        {"op": "remove", "path": "/qux/baz"},
        {"op": "replace", "path": "/foo/0", "value": "BAR"},
        {"op": "copy", "from": "/foo/0", "path": "/copied"},
        {"op": "move", "from": "/foo/2", "path": "/qux/moved"},
        {"op": "test", "path": "/copied", "value": "BAR"},
    ])
    assert out == {"foo": ["BAR", "qux"], "qux": {"moved": "baz"}, "copied": "BAR"}
    assert doc == {"foo": ["bar", "baz"], "qux": {"baz": 1}}


def test_replace_root():
    assert apply_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]


def test_failed_test_reports_index():
    with pytest.raises(PatchError, match="operation 1: test failed"):
        apply_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1}, {"op": "test", "path": "/a", "value": 2}])


def test_move_into_itself():
    with pytest.raises(PatchError, match="into itself"):
        apply_patch({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}])


def test_missing_fields_and_unknown_op():
    with pytest.raises(PatchError, match="missing 'value'"):
        apply_patch({}, [{"op": "add", "path": "/a"}])
    with pytest.raises(PatchError, match="unknown op"):
        apply_patch({}, [{"op": "frobnicate", "path": "/a"}])
