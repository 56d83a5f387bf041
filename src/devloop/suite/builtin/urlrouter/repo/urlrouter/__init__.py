"""URL routing with typed placeholders and reverse building."""

from urlrouter.converters import CONVERTERS, Converter
from urlrouter.errors import MethodNotAllowed, NotFound, RouteError
from urlrouter.router import Match, Router

__all__ = ["CONVERTERS", "Converter", "Match", "MethodNotAllowed", "NotFound", "RouteError", "Router"]
