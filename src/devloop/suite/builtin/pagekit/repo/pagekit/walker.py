from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pagekit.paginator import Paginator

# fetch(page_number, per_page) -> (items on that page, total item count)
Fetch = Callable[[int, int], tuple[list[Any], int]]


def iter_items(fetch: Fetch, per_page: int = 20, max_requests: int = 1000) -> Iterator[Any]:
    """Yield every item of a remote collection, one request per page.

    The total reported by the first response decides how many pages are requested.
    """
    items, total = fetch(1, per_page)
    yield from items
    paginator = Paginator(total, per_page)
    requests = 1
    for number in paginator.page_numbers()[1:]:
        if requests >= max_requests:
            raise RuntimeError(f"gave up after {max_requests} requests")
        items, _ = fetch(number, per_page)
        requests += 1
        yield from items
