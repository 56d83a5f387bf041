from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from urlrouter.errors import MethodNotAllowed, NotFound, RouteError
from urlrouter.template import Template

Handler = Callable[..., Any]


@dataclass
class Route:
    name: str
    template: Template
    handlers: dict[str, Handler] = field(default_factory=dict)


@dataclass
class Match:
    route: str
    handler: Handler
    params: dict[str, Any]


class Router:
    """Routes are tried in the order they were added; the first whose template matches wins."""

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._by_name: dict[str, Route] = {}

    def add(self, template: str, handler: Handler, methods: tuple[str, ...] = ("GET",), name: str | None = None) -> None:
        name = name or getattr(handler, "__name__", template)
        route = self._by_name.get(name)
        if route is None:
            route = Route(name, Template.compile(template))
            self._routes.append(route)
            self._by_name[name] = route
        elif route.template.text != template:
            raise RouteError(f"route name {name!r} already used for {route.template.text!r}")
        for method in methods:
            route.handlers[method.upper()] = handler

    def route(self, template: str, methods: tuple[str, ...] = ("GET",), name: str | None = None):
        """Decorator form of `add`."""

        def decorate(handler: Handler) -> Handler:
            self.add(template, handler, methods, name)
            return handler

        return decorate

    def resolve(self, method: str, path: str) -> Match:
        allowed: set[str] = set()
        for route in self._routes:
            params = route.template.match(path)
            if params is None:
                continue
            handler = route.handlers.get(method.upper())
            if handler is None and method.upper() == "HEAD":
                handler = route.handlers.get("GET")
            if handler is not None:
                return Match(route.name, handler, params)
            allowed.update(route.handlers)
        if allowed:
            raise MethodNotAllowed(path, sorted(allowed))
        raise NotFound(path)

    def url_for(self, name: str, **values: Any) -> str:
        try:
            return self._by_name[name].template.build(values)
        except KeyError:
            raise RouteError(f"no route named {name!r}") from None
