"""Chat sessions on disk: `<store>/sessions/<id>/session.json`, rewritten after every turn, plus each
turn's run directory (trajectory.jsonl, patch.diff, result.json) beside it."""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Turn:
    turn: int
    prompt: str
    checkpoint: str  # the commit recording the tree before this turn
    exit_status: str = ""
    message: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    run_dir: str = ""


@dataclass
class ChatSession:
    id: str
    repo: str
    created: float
    turns: list[Turn] = field(default_factory=list)
    path: Path = Path()
    summary: str = ""  # /compact's summary of the first `summarised` turns, which history() then leaves out
    summarised: int = 0

    @classmethod
    def new(cls, store: Path, repo: Path) -> ChatSession:
        sid = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        s = cls(sid, str(repo.resolve()), time.time(), path=store / "sessions" / sid)
        s.path.mkdir(parents=True)
        s.save()
        return s

    @classmethod
    def load(cls, store: Path, sid: str) -> ChatSession:
        path = store / "sessions" / sid
        try:
            data: dict[str, Any] = json.loads((path / "session.json").read_text(encoding="utf-8"))
            turns = [Turn(**t) for t in data.pop("turns")]
            return cls(**data, turns=turns, path=path)
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise ValueError(f"session {sid}: cannot read {path / 'session.json'}: {e}") from None

    def save(self) -> None:
        data = asdict(self)
        data.pop("path")
        tmp = self.path / "session.json.tmp"
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path / "session.json")

    def history(self) -> str:
        """The earlier turns, as the next task's preamble: what was asked and what the agent said (the
        turns /compact summarised appear as its summary)."""
        kept = [t for t in self.turns if t.turn > self.summarised] if self.summary else self.turns
        lines = [f"Turn {t.turn}. The user asked: {t.prompt}\nYou answered: {t.message}" for t in kept]
        if self.summary:
            lines.insert(0, f"Summary of turns 1-{self.summarised}:\n{self.summary}")
        return "Earlier in this conversation:\n\n" + "\n\n".join(lines) if lines else ""


def list_sessions(store: Path) -> list[str]:
    """Session ids of this repository, oldest first (ids start with their creation time)."""
    root = store / "sessions"
    return sorted(p.name for p in root.iterdir() if (p / "session.json").is_file()) if root.is_dir() else []
