from __future__ import annotations


def page_window(current: int, total: int, size: int = 5) -> list[int]:
    """The page numbers to show: `size` consecutive pages around `current`, kept inside 1..total.

    The current page is centred when possible; near either end the window is shifted so it still shows
    `size` pages (or all pages when there are fewer).
    """
    if total < 1:
        return []
    if size < 1:
        raise ValueError("size must be at least 1")
    current = min(max(current, 1), total)
    half = size // 2
    start = max(1, current - half)
    end = min(total, start + size - 1)
    if end - start + 1 < size:
        start = max(1, end - size)
    return list(range(start, end + 1))
