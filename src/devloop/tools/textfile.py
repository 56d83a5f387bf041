"""Byte-faithful reading and writing of text files for the editor.

A file is decoded to a `str` in a way that encodes back to exactly the same bytes: UTF-8 (a BOM is
remembered and put back), or Latin-1 for files that are not valid UTF-8 but still look like text.
Line endings are never normalised: the text keeps its `\\r\\n`, and the editor translates the model's
`\\n` to the file's convention instead (see `to_newline`).
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass

from devloop.safefs import EscapeError, SafeFSError, SafeRoot

UTF8_BOM = b"\xef\xbb\xbf"
# Files above this size are refused: the editor holds them in memory several times over, and a model
# has no business pasting fragments of a multi-megabyte file through tool calls.
MAX_FILE_BYTES = 8 * 1024 * 1024
# C0 control bytes that do not occur in text (tab, LF, VT, FF, CR and ESC do).
_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1B}
_BARE_LF = re.compile(r"(?<!\r)\n")


class EditorError(Exception):
    """A problem with the request or the file, reported to the model as an error observation."""


@dataclass
class TextFile:
    """A decoded text file. `encode(text)` produces the bytes to write back with the same encoding."""

    text: str
    encoding: str  # "utf-8" or "latin-1"
    bom: bool = False
    raw: bytes = b""  # the bytes as read, for undo

    def encode(self, text: str, shown_path: str) -> bytes:
        try:
            data = text.encode(self.encoding)
        except UnicodeEncodeError as exc:
            bad = text[exc.start : exc.end]
            raise EditorError(
                f"Cannot write {shown_path}: the file is {self.encoding}-encoded and the new text contains "
                f"{bad!r}, which {self.encoding} cannot represent. No change was made."
            ) from None
        return UTF8_BOM + data if self.bom else data

    @property
    def newline(self) -> str:
        """The file's dominant line ending: `\\r\\n` when most lines end that way, else `\\n`."""
        crlf = self.text.count("\r\n")
        return "\r\n" if crlf and crlf * 2 >= self.text.count("\n") else "\n"

    @property
    def encoding_note(self) -> str:
        """A short remark for the model when the file is not plain UTF-8, else ''."""
        if self.encoding != "utf-8":
            return f" [encoding: {self.encoding}]"
        return " [encoding: UTF-8 with BOM]" if self.bom else ""


def looks_binary(data: bytes) -> bool:
    """True for data that is not text: any NUL byte, or more than 5% other control bytes."""
    if b"\x00" in data:
        return True
    sample = data[:65536]
    if not sample:
        return False
    controls = sum(1 for b in sample if b in _CONTROL)
    return controls * 20 > len(sample)


def decode(data: bytes, shown_path: str) -> TextFile:
    """Decode file bytes; raise EditorError for binary data."""
    if looks_binary(data):
        raise EditorError(
            f"{shown_path} is a binary file (it contains NUL or control bytes); the editor only handles "
            "text. Inspect it with execute_bash (e.g. `file`, `xxd | head`) instead."
        )
    bom = data.startswith(UTF8_BOM)
    body = data[len(UTF8_BOM) :] if bom else data
    try:
        return TextFile(body.decode("utf-8"), "utf-8", bom, data)
    except UnicodeDecodeError:
        pass
    if bom:
        raise EditorError(f"{shown_path} starts with a UTF-8 byte-order mark but is not valid UTF-8.")
    # Latin-1 maps every byte to one code point and back, so any byte string round-trips exactly.
    return TextFile(body.decode("latin-1"), "latin-1", False, data)


def read_text(fs: SafeRoot, rel: str, shown_path: str) -> TextFile:
    """Read and decode the regular file `rel` beneath the workspace root `fs`. An escape from the root
    propagates as EscapeError; every other problem is an EditorError."""
    try:
        data = fs.read_bytes(rel, max_bytes=MAX_FILE_BYTES, shown=shown_path)
    except EscapeError:
        raise
    except SafeFSError as exc:
        if exc.errno == errno.EFBIG:
            size = f"{exc.size:,} bytes" if exc.size is not None else f"over {MAX_FILE_BYTES:,} bytes"
            raise EditorError(
                f"{shown_path} is too large for the editor ({size}; the limit is "
                f"{MAX_FILE_BYTES:,}). Use execute_bash (grep -n, sed -n 'A,Bp') to work with it."
            ) from None
        raise EditorError(f"Cannot read {shown_path}: {exc.strerror}.") from None
    return decode(data, shown_path)


def write_bytes(fs: SafeRoot, rel: str, data: bytes, shown_path: str, *, exclusive: bool = False) -> None:
    """Write in place beneath `fs` (keeps the file's mode and owner); a file with other hard links is
    replaced rather than written through, so the edit never reaches a file outside the workspace.
    `exclusive`: the file must not exist yet. EscapeError propagates; other problems are EditorErrors."""
    try:
        fs.write_bytes(rel, data, exclusive=exclusive, mode=0o666, shown=shown_path)
    except EscapeError:
        raise
    except SafeFSError as exc:
        raise EditorError(f"Cannot write {shown_path}: {exc.strerror}.") from None


def to_newline(text: str, newline: str) -> str:
    """`text` with every bare `\\n` written as `newline` (existing `\\r\\n` are left alone)."""
    if newline == "\n":
        return text
    return _BARE_LF.sub(newline, text)


def split_lines(text: str) -> list[str]:
    """The file's lines without their terminators (`\\r` of CRLF removed); a final newline ends the
    last line rather than starting an empty one. Only `\\n` separates lines, never other Unicode breaks."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
