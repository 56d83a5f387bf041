from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pagenav.nav import build_nav


def render_text(current: int, total: int, size: int = 5) -> str:
    """e.g. '« 1 … 4 5 [6] 7 8 … 20 »'."""
    parts = []
    for item in build_nav(current, total, size):
        parts.append(f"[{item.label}]" if item.current else item.label)
    return " ".join(parts)


def _href(base_url: str, page: int) -> str:
    parts = urlsplit(base_url)
    query = dict(parse_qsl(parts.query))
    query["page"] = str(page)
    return urlunsplit(parts._replace(query=urlencode(query)))


def render_html(base_url: str, current: int, total: int, size: int = 5) -> str:
    """A <nav> with links; the current page and disabled items are <span>s."""
    out = ['<nav class="pagination">']
    for item in build_nav(current, total, size):
        label = html.escape(item.label)
        if item.current:
            out.append(f'<span class="current" aria-current="page">{label}</span>')
        elif item.page is None:
            out.append(f'<span class="disabled">{label}</span>')
        else:
            out.append(f'<a href="{html.escape(_href(base_url, item.page))}">{label}</a>')
    out.append("</nav>")
    return "".join(out)
