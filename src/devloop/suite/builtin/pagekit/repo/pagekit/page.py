from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Page:
    """One page of a collection. `number` is 1-based."""

    number: int
    per_page: int
    total: int
    page_count: int
    items: list[Any] = field(default_factory=list)

    @property
    def has_next(self) -> bool:
        return self.number < self.page_count

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def start_index(self) -> int:
        """1-based index of the first item on this page (0 when the collection is empty)."""
        if self.total == 0:
            return 0
        return (self.number - 1) * self.per_page + 1

    @property
    def end_index(self) -> int:
        """1-based index of the last item on this page."""
        return min(self.number * self.per_page, self.total)

    def label(self) -> str:
        """Human text such as 'Showing 21-40 of 45'."""
        return f"Showing {self.start_index}-{self.end_index} of {self.total}"
