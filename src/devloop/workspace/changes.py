"""What a workspace's tree is now, as cheaply as it can be told: the stat scan (scan.py), spared by the
tree's inotify watch (watch.py) when nothing changed and narrowed to the directories it names when only
files did. The workspace compares the answer with the scan its last git run saw, to reuse that run's
patch or tree."""

from __future__ import annotations

from pathlib import Path

from devloop.workspace.scan import SCAN_LIMIT, TOO_MANY, ScanRecords, rescan, scan_shape
from devloop.workspace.watch import TreeWatch

# How many times SCAN_LIMIT's entries a tree under an inotify watch may hold and still be scanned.
WATCHED_SCAN_FACTOR = 8
# How many more steps with a whole scan than without such a tree may have before it is left to git.
BIG_TREE_PATIENCE = 4

Held = tuple[bytes, bytes | None, ScanRecords]


class TreeScans:
    """The scans of one tree: the last one taken under its watch, and whether the tree is left to git."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.watch_changes = True  # trust the watch over a scan (off: the benchmarks' side without it)
        self.watch = TreeWatch.open()  # None: not Linux, or refused (the instance limit)
        self.held: Held | None = None  # the last scan taken under the watch, while the watch vouches for it
        self.large = False  # past the scan limit: no scan, git every time
        # For a tree past SCAN_LIMIT scanned under the watch: its steps that took no whole scan (none, or
        # a rescan of some directories) less those that did; None while the tree is under the limit.
        self.big_balance: int | None = None

    def now(
        self, records: ScanRecords | None = None, *, fresh: bool = False
    ) -> tuple[bytes | None, bytes | None]:
        """The tree's scan and shape (see scan_shape), each None when unknown; `records` filled as the scan
        goes. Under the watch the last scan stands for this one while nothing it covers changed since,
        and when only some directories' entries changed only those are listed again (scan.rescan);
        unless `fresh`, which always takes a whole scan."""
        if self.large:
            return None, None
        watch = self.live_watch()
        if not fresh and self.held is not None and watch is not None:
            told = self._told(watch, self.held)
            if told is not None:
                scan, shape, seen = told
                if records is not None:
                    records.__dict__.update(vars(seen))
                if self.big_balance is not None:
                    self.big_balance += 1
                self.held = (scan, shape, seen) if scan is not None and watch.covered else None
                return scan, shape
        self.held = None
        if watch is not None:
            watch.begin()
            records = records if records is not None else ScanRecords()
        # Past SCAN_LIMIT a scan costs more than the git run it spares; under a watch, most steps take
        # neither, so a larger tree is still scanned (as long as the watch covers it).
        limit = SCAN_LIMIT if watch is None else SCAN_LIMIT * WATCHED_SCAN_FACTOR  # a test lowers SCAN_LIMIT
        scan, shape = scan_shape(self.root, limit=limit, records=records, watch=watch)
        if scan != TOO_MANY and watch is not None and records is not None and _entries(records) > SCAN_LIMIT:
            self.big_balance = (self.big_balance or 0) - 1
            # Not covered by the watch, or more whole scans than steps without one: the scan no longer
            # pays for itself, and the tree is left to git as it would be without a watch.
            if not watch.covered or self.big_balance < -BIG_TREE_PATIENCE:
                scan = TOO_MANY
        if scan == TOO_MANY:  # trees seldom shrink: from now on git alone, with its untracked cache
            self.large = True
            return None, None
        if watch is not None and watch.covered and scan is not None and records is not None:
            self.held = (scan, shape, records)
        return scan, shape

    def unchanged_since(self, scan: bytes | None) -> bool:
        """Whether the watch says the tree is still as `scan` found it (no scan taken to tell)."""
        watch = self.live_watch()
        return (
            scan is not None
            and self.held is not None
            and self.held[0] == scan
            and watch is not None
            and watch.quiet()
        )

    def live_watch(self) -> TreeWatch | None:
        watch = self.watch if self.watch_changes else None
        return watch if watch is not None and not watch.closed else None

    def close(self) -> None:
        """Close the watch (its file descriptor); every later answer takes a scan."""
        if self.watch is not None:
            self.watch.close()

    def _told(self, watch: TreeWatch, held: Held) -> tuple[bytes | None, bytes | None, ScanRecords] | None:
        """The scan as the watch lets it be told from the last one, `held`: that one when nothing changed,
        else a rescan of the directories whose entries changed; None when only a whole scan can tell."""
        changes = watch.changed()
        if changes is None:
            return None
        if not changes:
            return held
        seen = ScanRecords()
        answer = rescan(
            self.root, held[2], changes, seen, limit=SCAN_LIMIT * WATCHED_SCAN_FACTOR, watch=watch
        )
        if answer is None:
            return None
        watch.settled(changes)
        return answer[0], answer[1], seen


def _entries(records: ScanRecords) -> int:
    return sum(len(listed[0]) for listed in records.dirs.values())
