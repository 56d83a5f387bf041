"""Hygiene: deduplication, decontamination against an evaluation set, the train/valid split, and the
secret scrubber every written string passes through.

Decontamination drops an attempt whose task is one of the evaluation set's: the same instance id, the
same repository and issue number (from `issue_numbers` / `issue_number` / `issue_url` fields or GitHub
issue links in the problem statement), the same problem statement once whitespace is collapsed and case
folded, or a near-duplicate one: MinHash signatures (datasketch) of word 5-gram shingles whose estimated
Jaccard similarity reaches NEAR_DUPLICATE, found through an LSH index.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NEAR_DUPLICATE = 0.8
NUM_PERM = 128
SHINGLE = 5


def normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _shingles(text: str) -> set[bytes]:
    words = re.findall(r"\w+", text.casefold())
    if len(words) < SHINGLE:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + SHINGLE]).encode() for i in range(len(words) - SHINGLE + 1)}


def _minhash(text: str) -> Any:
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=1)
    m.update_batch(list(_shingles(text)))
    return m


_ISSUE_URL = re.compile(r"github\.com/([\w.-]+/[\w.-]+)/issues/(\d+)")


def issue_keys(repo: str, problem: str, meta: dict[str, Any]) -> set[tuple[str, int]]:
    """(repository, issue number) pairs a task names."""
    keys: set[tuple[str, int]] = set()
    numbers = meta.get("issue_numbers") if isinstance(meta.get("issue_numbers"), list) else []
    numbers = [*numbers, meta.get("issue_number")]
    for n in numbers:
        if isinstance(n, int | str) and str(n).isdigit() and repo:
            keys.add((repo.casefold(), int(n)))
    for text in (str(meta.get("issue_url") or ""), problem):
        keys |= {(r.casefold(), int(n)) for r, n in _ISSUE_URL.findall(text)}
    return keys


@dataclass
class EvalSet:
    ids: set[str] = field(default_factory=set)
    problems: set[str] = field(default_factory=set)
    issues: set[tuple[str, int]] = field(default_factory=set)
    _lsh: Any = None

    def add_problem(self, key: str, text: str) -> None:
        self.problems.add(normalise(text))
        if self._lsh is None:
            from datasketch import MinHashLSH

            self._lsh = MinHashLSH(threshold=NEAR_DUPLICATE, num_perm=NUM_PERM)
        if _shingles(text) and key not in self._lsh.keys:
            self._lsh.insert(key, _minhash(text))

    def why(self, attempt: dict[str, Any]) -> str | None:
        """How the attempt's task is in this set (`id`, `issue`, `problem`, `near_duplicate`), or None."""
        if attempt["instance_id"] in self.ids:
            return "id"
        problem = str(attempt.get("problem") or "")
        keys = issue_keys(str(attempt.get("repo") or ""), problem, attempt.get("task_meta") or {})
        if keys & self.issues:
            return "issue"
        if not problem.strip():
            return None
        if normalise(problem) in self.problems:
            return "problem"
        if self._lsh is not None and _shingles(problem) and self._lsh.query(_minhash(problem)):
            return "near_duplicate"
        return None

    def contains(self, attempt: dict[str, Any]) -> bool:
        return self.why(attempt) is not None


def task_ids(path: Path) -> EvalSet:
    """The evaluation set in a tasks file (.json list or .jsonl of SWE-bench-style records); ValueError
    naming the file and line for one that is not such a file."""
    text = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(text) if path.suffix == ".json" else None
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if rows is None:
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise ValueError(f"{path}:{lineno}: not a JSON record") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list of task records")
    found = EvalSet()
    for r in rows:
        if isinstance(r, dict) and "instance_id" in r:
            iid = str(r["instance_id"])
            found.ids.add(iid)
            problem = r.get("problem_statement") if isinstance(r.get("problem_statement"), str) else ""
            found.issues |= issue_keys(str(r.get("repo") or ""), problem, r)
            if problem.strip():
                found.add_problem(iid, problem)
    return found


def normalised_patch(patch: str) -> str:
    """The patch with what does not change its effect taken out: `index` lines, hunk header positions
    and trailing whitespace; two attempts with the same normalised patch made the same change."""
    lines = []
    for line in patch.splitlines():
        if line.startswith("index "):
            continue
        if line.startswith("@@"):
            line = "@@"
        lines.append(line.rstrip())
    return "\n".join(lines).strip()


def dedup_key(attempt: dict[str, Any]) -> str:
    return hashlib.sha256(
        f"{attempt['instance_id']}\x00{normalised_patch(attempt['patch'])}".encode()
    ).hexdigest()


def split_of(key: str, seed: int, valid_fraction: float) -> str:
    """A seeded hash of the key, so one repository (or instance) is never in both splits."""
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "valid" if h < valid_fraction else "train"


def repo_of(attempt_or_id: dict[str, Any] | str) -> str:
    """The attempt's repository: its task's `repo`, else what precedes the last `-` of a SWE-bench id
    (`owner__repo-NUMBER`)."""
    if isinstance(attempt_or_id, dict):
        if attempt_or_id.get("repo"):
            return str(attempt_or_id["repo"])
        attempt_or_id = str(attempt_or_id["instance_id"])
    head, sep, tail = attempt_or_id.rpartition("-")
    return head if sep and tail.isdigit() else attempt_or_id


# --- secrets ------------------------------------------------------------------------------------------

REDACTED = "[REDACTED]"
_SECRETS = [
    re.compile(p)
    for p in (
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
        r"\bsk-(?:proj-|ant-(?:api\d\d-)?|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{30,}",  # GitHub
        r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
        r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",  # AWS access key ids
        r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
        r"\bhf_[A-Za-z0-9]{30,}\b",  # Hugging Face
        r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
        r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",  # JWTs
    )
]
# `Authorization: Bearer x`, `bearer x`, and KEY=value assignments of variables named like secrets.
_BEARER = re.compile(r"(?i)\b(bearer|token)(\s+|=|:\s*)([A-Za-z0-9._~+/=-]{16,})")
_ASSIGNED = re.compile(
    r"(?i)\b([A-Z0-9_]*(?:API_KEY|SECRET|TOKEN|PASSWORD|PASSWD)[A-Z0-9_]*)(\s*[=:]\s*)(['\"]?)([^\s'\"\\]{8,})\3"
)
_HOME = re.compile(r"(/home/|/Users/)(?!user/)[A-Za-z0-9._-]+(?=/|\b)")


# A literal every pattern above needs: text without one is returned at once (most text, and the same
# tool descriptions and prompts in every row are looked up in the cache).
_HINT = re.compile(
    r"sk-|gh[pousr]_|github_pat_|glpat-|AKIA|ASIA|AIza|xox|hf_|_live_|_test_|eyJ|PRIVATE KEY|/home/|/Users/"
    r"|(?i:bearer|token|key|secret|passw)"
)


@functools.lru_cache(maxsize=65536)
def scrub(text: str) -> str:
    """`text` with API keys of the common shapes, bearer tokens, secret-named assignments and private
    keys replaced by [REDACTED], and home directories (/home/NAME, /Users/NAME) by /home/user."""
    if not _HINT.search(text):
        return text
    for pattern in _SECRETS:
        text = pattern.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    text = _ASSIGNED.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{REDACTED}{m[3]}", text)
    return _HOME.sub(lambda m: f"{m[1]}user", text)


def scrub_value(value: Any, key: str = "") -> Any:
    """Every string in a JSON value scrubbed. Call `arguments` stay a JSON string: when scrubbing the
    text would leave it not JSON, the decoded object is scrubbed and encoded again."""
    if isinstance(value, str):
        clean = scrub(value)
        if key == "arguments" and clean != value:
            try:
                json.loads(clean)
            except ValueError:
                try:
                    return json.dumps(scrub_value(json.loads(value)), ensure_ascii=False)
                except ValueError:
                    return clean
        return clean
    if isinstance(value, list):
        return [scrub_value(v) for v in value]
    if isinstance(value, dict):  # keys too: a report is keyed by repository names
        return {(scrub(k) if isinstance(k, str) else k): scrub_value(v, k) for k, v in value.items()}
    return value
