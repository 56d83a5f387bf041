from __future__ import annotations

import re
from functools import lru_cache

_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]+$")


def validate_topic(topic: str, pattern: bool = False) -> str:
    """Topics are dot-separated segments; patterns may also use '*' (one segment) and '#' (rest)."""
    parts = topic.split(".")
    for i, part in enumerate(parts):
        if pattern and part == "*":
            continue
        if pattern and part == "#" and i == len(parts) - 1:
            continue
        if not _SEGMENT.match(part):
            raise ValueError(f"invalid {'pattern' if pattern else 'topic'} {topic!r}")
    return topic


@lru_cache(maxsize=1024)
def topic_matches(pattern: str, topic: str) -> bool:
    """'order.*' matches 'order.paid'; 'order.#' matches 'order' and 'order.paid.refunded'."""
    p_parts, t_parts = pattern.split("."), topic.split(".")
    for i, p in enumerate(p_parts):
        if p == "#":
            return True
        if i >= len(t_parts) or (p != "*" and p != t_parts[i]):
            return False
    return len(p_parts) == len(t_parts)
