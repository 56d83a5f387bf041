"""Markdown table rendering."""

from tablemd.cells import format_cell
from tablemd.table import render, render_dicts
from tablemd.width import display_width

__all__ = ["display_width", "format_cell", "render", "render_dicts"]
