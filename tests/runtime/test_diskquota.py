"""The disk quota's walk (du-like, never following a link) and when it walks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from devloop.runtime import diskquota
from devloop.runtime.diskquota import DiskQuota, measure
from devloop.runtime.limits import GIB, MIB, Limits, parse_limit


def _allocate(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        os.posix_fallocate(fh.fileno(), 0, size)


def test_measure_counts_blocks_once_and_never_follows_links(tmp_path: Path) -> None:
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    (tree / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    _allocate(tree / "a" / "b" / "big.bin", 3 * MIB)
    _allocate(tree / "small.bin", 1 * MIB)
    os.link(tree / "small.bin", tree / "a" / "hardlink.bin")  # one inode, counted once
    _allocate(outside / "host.bin", 8 * MIB)
    (tree / "link-to-file").symlink_to(outside / "host.bin")
    (tree / "link-to-dir").symlink_to(outside)
    usage = measure([tree, tree / "a"])  # a tree inside another is walked once
    assert 4 * MIB <= usage.bytes < 4 * MIB + 64 * 1024  # the files, plus directory blocks and the links
    assert usage.largest[0] == (3 * MIB, f"{tree}/a/b/big.bin")
    assert all("host.bin" not in path for _, path in usage.largest)
    assert usage.unmeasured is None and usage.seconds > 0
    assert measure([tmp_path / "missing"]).bytes == 0


def test_a_tree_too_deep_to_walk_counts_the_filesystems_growth(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(diskquota, "MAX_DEPTH", 3)
    quota = DiskQuota(2 * MIB, [tmp_path])
    quota.begin_command()
    deep = tmp_path / "d1" / "d2" / "d3" / "d4"  # made by the run, to hide from the walk
    deep.mkdir(parents=True)
    _allocate(deep / "hidden.bin", 64 * MIB)
    assert "nested over 3 deep" in (measure([tmp_path]).unmeasured or "")
    reason = quota.check(final=True)
    assert reason is not None and "could not be measured, so the disk's growth was counted" in reason
    # The filesystem's growth is shared with whatever else runs (parallel tests free files too), so the
    # 64 MiB show as at least half of it; the walk alone would count none of the hidden file.
    assert quota.used >= 32 * MIB


def test_what_could_not_be_read_from_the_start_is_not_held_against_the_run(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(diskquota, "MAX_DEPTH", 3)
    deep = tmp_path / "d1" / "d2" / "d3" / "d4"
    deep.mkdir(parents=True)  # in the repository before the run
    quota = DiskQuota(4 * MIB, [tmp_path])
    quota.begin_command()
    _allocate(deep / "build.bin", 8 * MIB)  # the filesystem grows, the walk cannot see it
    walks = quota.walks
    quota.tick_s = quota.last.seconds = 0.0  # walk now
    assert quota.check(final=True) is None and quota.used < MIB
    assert quota.walks == walks + 1


def test_growth_over_the_limit_is_reported_and_stops_only_a_growing_command(tmp_path: Path) -> None:
    _allocate(tmp_path / "repo.bin", 16 * MIB)  # there before the run: not held against it
    quota = DiskQuota(4 * MIB, [tmp_path])
    quota.begin_command()
    assert quota.check() is None and quota.used < MIB
    _allocate(tmp_path / "new.bin", 6 * MIB)
    reason = quota.check(final=True)
    assert reason is not None
    assert reason.startswith("the files this run can write grew by 6 MiB, over its disk limit of 4 MiB")
    assert f"{tmp_path}/repo.bin 16 MiB" in reason  # the largest files, whoever made them
    quota.begin_command()  # while over: a command that does not write is not stopped...
    assert quota.check() is None
    _allocate(tmp_path / "more.bin", 2 * MIB)  # ...one that writes more is, at the next walk it allows
    time.sleep(quota.last.seconds / diskquota.TRIGGERED_BUDGET)
    assert quota.check() is not None
    (tmp_path / "new.bin").unlink()
    (tmp_path / "more.bin").unlink()
    assert quota.check(final=True) is None
    assert quota.peak >= 8 * MIB


def test_a_rebaseline_counts_growth_from_what_the_host_added_before_any_command(tmp_path: Path) -> None:
    # Grading starts the sandbox around an empty tree and extracts the task's files meanwhile: they are
    # the task's, not the run's growth. What commands write after still counts.
    quota = DiskQuota(4 * MIB, [tmp_path])
    _allocate(tmp_path / "tree.bin", 16 * MIB)
    quota.rebaseline()
    quota.begin_command()
    assert quota.check(final=True) is None and quota.used < MIB and quota.peak < MIB
    _allocate(tmp_path / "new.bin", 6 * MIB)
    reason = quota.check(final=True)
    assert reason is not None and reason.startswith("the files this run can write grew by 6 MiB")


def test_a_slow_walk_is_not_repeated_until_the_disk_grows_enough(tmp_path: Path) -> None:
    quota = DiskQuota(512 * MIB, [tmp_path])
    quota.begin_command()
    quota.last.seconds = 1.0  # as if the tree took a second to walk: routine walks every 20 s
    walks = quota.walks
    assert quota.check() is None and quota.check(final=True) is None
    assert quota.walks == walks
    _allocate(tmp_path / "burst.bin", 600 * MIB)  # the filesystem grew by more than the room left
    assert quota.check(final=True) is not None
    assert quota.walks == walks + 1


def test_limits_cap_files_and_tmpfs_by_the_disk_limit() -> None:
    limits = Limits(disk_bytes=20 * MIB)
    assert limits.file_bytes == 20 * MIB and limits.tmpfs_bytes == 20 * MIB
    assert "ulimit -SH -f 20480" in limits.ulimit_commands()
    default = Limits()
    assert default.disk_bytes == 10 * GIB and default.file_bytes == GIB and default.tmpfs_bytes == 4 * GIB
    unlimited = Limits(disk_bytes=None, memory_bytes=None)
    assert unlimited.tmpfs_bytes is None and unlimited.file_bytes == GIB
    assert "disk 20 MiB" in limits.describe()
    with pytest.raises(ValueError, match="disk_bytes"):
        Limits(disk_bytes=0)


def test_parse_limit() -> None:
    assert (
        parse_limit("10G") == 10 * GIB and parse_limit("none") is None and parse_limit(" Unlimited ") is None
    )
    with pytest.raises(ValueError, match=r"not a positive size or none: 'lots'"):
        parse_limit("lots")
