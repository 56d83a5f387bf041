"""Pagination helpers for API clients and servers."""

from pagekit.errors import EmptyPage, InvalidPage
from pagekit.links import link_header
from pagekit.page import Page
from pagekit.paginator import Paginator
from pagekit.walker import iter_items

__all__ = ["EmptyPage", "InvalidPage", "Page", "Paginator", "iter_items", "link_header"]
