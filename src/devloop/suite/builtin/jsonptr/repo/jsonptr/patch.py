from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from jsonptr.errors import PatchError, PointerError
from jsonptr.pointer import JsonPointer


def _field(op: Mapping[str, Any], name: str, index: int) -> Any:
    if name not in op:
        raise PatchError(f"missing {name!r}", index)
    return op[name]


def apply_patch(doc: Any, operations: Iterable[Mapping[str, Any]], in_place: bool = False) -> Any:
    """Apply a JSON Patch; the input is copied first unless `in_place`. All-or-nothing when copied."""
    if not in_place:
        doc = copy.deepcopy(doc)
    for index, op in enumerate(operations):
        kind = _field(op, "op", index)
        path = JsonPointer(_field(op, "path", index))
        try:
            if kind == "add":
                doc = path.add(doc, copy.deepcopy(_field(op, "value", index)))
            elif kind == "remove":
                path.remove(doc)
            elif kind == "replace":
                path.resolve(doc)
                if path.tokens:
                    path.remove(doc)
                doc = path.add(doc, copy.deepcopy(_field(op, "value", index)))
            elif kind in ("move", "copy"):
                source = JsonPointer(_field(op, "from", index))
                if kind == "move" and path.text.startswith(source.text + "/"):
                    raise PatchError("cannot move a value into itself", index)
                value = source.remove(doc) if kind == "move" else copy.deepcopy(source.resolve(doc))
                doc = path.add(doc, value)
            elif kind == "test":
                if path.resolve(doc) != _field(op, "value", index):
                    raise PatchError(f"test failed at {path.text}", index)
            else:
                raise PatchError(f"unknown op {kind!r}", index)
        except PointerError as exc:
            raise PatchError(str(exc), index) from None
    return doc
