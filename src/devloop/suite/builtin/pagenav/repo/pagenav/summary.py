from __future__ import annotations


def page_count(total_items: int, per_page: int) -> int:
    """Number of pages for `total_items` (at least 1, so an empty result still has a page)."""
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    return max(1, -(-total_items // per_page))


def results_summary(page: int, per_page: int, total_items: int, noun: str = "results") -> str:
    """'Showing 21-40 of 395 results', or 'No results' when empty."""
    if total_items <= 0:
        return f"No {noun}"
    page = min(max(page, 1), page_count(total_items, per_page))
    first = (page - 1) * per_page + 1
    last = min(page * per_page, total_items)
    if first == last:
        return f"Showing {first} of {total_items} {noun}"
    return f"Showing {first}-{last} of {total_items} {noun}"
