"""The per-step patch without git, on steps that only rewrote files the patch already covers.

After each patch (git's or this module's) the workspace keeps the scan taken before it, the patch's
sections, and for the files that step changed their base content, rebuilt from git's section and checked
against both blob ids on its `index` line. On the next step, when the tree's shape is unchanged and every
changed file (by its metadata, see scan.changed_files) has such a base and a section, each of their
sections is recomputed in-process (textdiff.section: only when git's answer is certain) and the others are
kept. Anything else, or a file that cannot be read without following a link, leaves the patch to git.
The files are read on the host beneath the workspace with no link followed (safefs.read_without_links).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from devloop.safefs import SafeFSError, read_without_links
from devloop.workspace.scan import ScanRecords, changed_files
from devloop.workspace.textdiff import MAX_BYTES, Base, base_of, section, split_sections

_LEARN_AT_MOST = 32  # files whose base is rebuilt after one git patch (the ones that step changed)


@dataclass
class StepPatches:
    """See the module. `made`: patches computed here (for the tests and benchmarks)."""

    root: Path
    records: ScanRecords | None = None  # the scan before the last patch
    sections: list[tuple[str, str]] | None = None  # that patch's sections (path, or "" if not plain)
    bases: dict[str, Base] = field(default_factory=dict)  # the base never changes: kept for the run
    made: int = 0

    def forget(self) -> None:
        """git is rewriting the tree: what the last scan saw is no longer known."""
        self.records = self.sections = None

    def patch(self, now: ScanRecords) -> str | None:
        """The patch for the tree `now` describes, or None when git must compute it."""
        if self.records is None or self.sections is None or now.attributes:
            return None
        changed = changed_files(self.records, now)
        if changed is None:
            return None
        where = {path: i for i, (path, _) in enumerate(self.sections) if path}
        sections = list(self.sections)
        for path in changed:
            base, i = self.bases.get(path), where.get(path)
            if base is None or i is None:
                return None
            data = self._read(path)
            text = section(path, base, data) if data is not None else None
            if text is None:
                return None
            sections[i] = (path if text else "", text)
        self.made += 1
        return "".join(text for _, text in sections)

    def learn(self, scanned: ScanRecords, patch: str) -> None:
        """Remember `patch` as the tree `scanned` (the scan taken before it was computed), and the base
        of each file that changed since the last patch, where its section shows it."""
        changed = changed_files(self.records, scanned) if self.records is not None else None
        self.records = scanned if scanned.complete and not scanned.attributes else None
        self.sections = split_sections(patch) if self.records is not None else None
        if self.sections is None:
            return
        plain = {path: text for path, text in self.sections if path and path not in self.bases}
        wanted = [p for p in (changed if changed is not None else plain) if p in plain]
        for path in wanted[:_LEARN_AT_MOST]:
            data = self._read(path)
            base = base_of(plain[path], data) if data is not None else None
            if base is not None:
                self.bases[path] = base

    def _read(self, path: str) -> bytes | None:
        try:
            return read_without_links(self.root, path, MAX_BYTES)
        except (SafeFSError, OSError):
            return None
