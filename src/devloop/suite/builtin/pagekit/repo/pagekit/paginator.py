from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pagekit.errors import EmptyPage, InvalidPage
from pagekit.page import Page


class Paginator:
    """Splits `total` items into pages of `per_page`.

    An empty collection still has one (empty) page so that page 1 is always valid.
    """

    def __init__(self, total: int, per_page: int = 20, max_per_page: int = 100) -> None:
        if per_page < 1:
            raise ValueError("per_page must be at least 1")
        if total < 0:
            raise ValueError("total cannot be negative")
        self.total = total
        self.per_page = min(per_page, max_per_page)

    @property
    def page_count(self) -> int:
        return self.total // self.per_page + 1

    def validate_number(self, number: Any) -> int:
        """Return `number` as an int if it names an existing page, else raise."""
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise InvalidPage(f"page number {number!r} is not an integer") from None
        if number < 1:
            raise InvalidPage(f"page number {number} is less than 1")
        if number > self.page_count:
            raise EmptyPage(f"page {number} is past the last page ({self.page_count})")
        return number

    def bounds(self, number: int) -> tuple[int, int]:
        """The [start, stop) slice of the collection that page `number` covers."""
        number = self.validate_number(number)
        start = (number - 1) * self.per_page
        return start, min(start + self.per_page, self.total)

    def page(self, number: Any, items: Sequence[Any] | None = None) -> Page:
        """Build page `number`; `items` is the whole collection (sliced here) or None."""
        number = self.validate_number(number)
        start, stop = self.bounds(number)
        chunk = list(items[start:stop]) if items is not None else []
        return Page(number, self.per_page, self.total, self.page_count, chunk)

    def page_numbers(self) -> range:
        return range(1, self.page_count + 1)
