"""Page-number navigation for web UIs."""

from pagenav.nav import NavItem, build_nav
from pagenav.query import page_from_query
from pagenav.render import render_html, render_text
from pagenav.window import page_window

__all__ = ["NavItem", "build_nav", "page_from_query", "page_window", "render_html", "render_text"]
