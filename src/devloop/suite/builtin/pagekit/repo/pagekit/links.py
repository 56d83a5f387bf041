from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pagekit.paginator import Paginator


def _with_page(url: str, number: int, per_page: int) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query["page"] = str(number)
    query["per_page"] = str(per_page)
    return urlunsplit(parts._replace(query=urlencode(query)))


def link_header(url: str, paginator: Paginator, number: int) -> str:
    """An RFC 8288 `Link` header value with first/prev/next/last relations for page `number`."""
    number = paginator.validate_number(number)
    rels = [("first", 1)]
    if number > 1:
        rels.append(("prev", number - 1))
    if number < paginator.page_count:
        rels.append(("next", number + 1))
    rels.append(("last", paginator.page_count))
    return ", ".join(f'<{_with_page(url, n, paginator.per_page)}>; rel="{rel}"' for rel, n in rels)
