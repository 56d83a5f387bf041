"""Where a run's directory goes when --output is not given: never inside the repository being worked on.

`./runs/<kind>-<time>` when the current directory is outside --repo; otherwise (the README's own
`devloop run --repo .`) `<user data dir>/devloop/runs/<kind>-<time>` (platformdirs; ~/.local/share on
Linux), so that trajectories and patches never land in the user's tree, where a later run's workspace
would copy them.
"""

from __future__ import annotations

import time
from pathlib import Path


def runs_root(repo: Path | None) -> Path:
    """`./runs`, or the user data dir's `runs` when the current directory lies inside `repo`."""
    here = Path.cwd().resolve()
    if repo is not None:
        top = repo.resolve()
        if here == top or top in here.parents:
            import platformdirs

            return Path(platformdirs.user_data_dir("devloop")) / "runs"
    return Path("runs")


def default_output(kind: str, repo: Path | None = None) -> Path:
    """A fresh run directory `<root>/<kind>-<time>` (a `-2`, `-3`... suffix when that one is taken)."""
    root = runs_root(repo)
    stem = f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = root / stem, 1
    while path.exists():
        n += 1
        path = root / f"{stem}-{n}"
    return path
