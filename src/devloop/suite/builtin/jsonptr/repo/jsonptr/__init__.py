"""JSON Pointer and JSON Patch."""

from jsonptr.errors import PatchError, PointerError
from jsonptr.patch import apply_patch
from jsonptr.pointer import JsonPointer, escape, unescape

__all__ = ["JsonPointer", "PatchError", "PointerError", "apply_patch", "escape", "unescape"]
