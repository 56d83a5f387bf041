from __future__ import annotations

from dataclasses import dataclass

from pagenav.window import page_window


@dataclass(frozen=True)
class NavItem:
    """One element of the navigation bar. `page` is None for an ellipsis."""

    label: str
    page: int | None
    current: bool = False
    disabled: bool = False


def build_nav(current: int, total: int, size: int = 5) -> list[NavItem]:
    """Prev, first page, ellipsis, window, ellipsis, last page, next."""
    if total < 1:
        return []
    current = min(max(current, 1), total)
    pages = page_window(current, total, size)
    items = [NavItem("«", current - 1 if current > 1 else None, disabled=current == 1)]
    if pages[0] > 1:
        items.append(NavItem("1", 1))
        if pages[0] > 2:
            items.append(NavItem("…", None, disabled=True))
    items.extend(NavItem(str(p), p, current=p == current) for p in pages)
    if pages[-1] < total:
        if pages[-1] < total - 1:
            items.append(NavItem("…", None, disabled=True))
        items.append(NavItem(str(total), total))
    items.append(NavItem("»", current + 1 if current < total else None, disabled=current == total))
    return items
