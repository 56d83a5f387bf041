"""`devloop complete`: fill in the middle of a file at a cursor, the building block of editor completion.

The file is split at the cursor (line N, column C, both counted from 1; without C, the end of line N):
the text before it is the prompt, the text after it the suffix, each cut at a line boundary to the last
PREFIX_CHARS / first SUFFIX_CHARS characters so the request stays small in a large file. The model's
insertion (devloop.models.fim) is returned as it came; nothing is written to the file.
"""

from __future__ import annotations

from pathlib import Path

from devloop.models.fim import fill_in_middle

PREFIX_CHARS = 20_000
SUFFIX_CHARS = 5_000


class CursorError(ValueError):
    """The file cannot be read, or the cursor is not in it; one line naming the file and the place."""


def read_source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CursorError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CursorError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise CursorError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise CursorError(f"{path}: cannot read: {e.strerror}") from None


def split_at(text: str, line: int, col: int | None = None, *, name: str = "file") -> tuple[str, str]:
    """(before the cursor, after it). Raises CursorError naming `name`:line for a cursor outside the text."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[-1].endswith(("\n", "\r")):
        lines.append("")  # the empty line after a final newline is a place for the cursor too
    if not 1 <= line <= len(lines):
        raise CursorError(f"{name}:{line}: --line must be 1-{len(lines)}")
    body = lines[line - 1].rstrip("\r\n")
    if col is None:
        col = len(body) + 1
    if not 1 <= col <= len(body) + 1:
        raise CursorError(
            f"{name}:{line}: --col must be 1-{len(body) + 1} (the line has {len(body)} characters)"
        )
    offset = sum(len(x) for x in lines[: line - 1]) + col - 1
    return text[:offset], text[offset:]


def _trim(prefix: str, suffix: str) -> tuple[str, str]:
    if len(prefix) > PREFIX_CHARS:
        cut = prefix[-PREFIX_CHARS:]
        prefix = cut[cut.find("\n") + 1 :] if "\n" in cut else cut
    if len(suffix) > SUFFIX_CHARS:
        cut = suffix[:SUFFIX_CHARS]
        suffix = cut[: cut.rfind("\n") + 1] if "\n" in cut else cut
    return prefix, suffix


def complete_at(
    path: Path,
    line: int,
    col: int | None,
    model: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    max_tokens: int = 256,
    temperature: float = 0.0,
    timeout: float = 60.0,
) -> str:
    """The insertion at `path`:`line`:`col`. Raises CursorError, ValueError (configuration) or ModelError."""
    prefix, suffix = _trim(*split_at(read_source(path), line, col, name=str(path)))
    return fill_in_middle(model, prefix, suffix, base_url=base_url, api_key_env=api_key_env,
                          max_tokens=max_tokens, temperature=temperature, timeout=timeout)  # fmt: skip
