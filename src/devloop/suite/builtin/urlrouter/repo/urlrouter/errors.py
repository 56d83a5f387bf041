class RouteError(ValueError):
    """A route template is invalid or a URL cannot be built."""


class NotFound(LookupError):
    """No route matches the path."""


class MethodNotAllowed(LookupError):
    """A route matches the path but not the method. `allowed` lists the methods that would match."""

    def __init__(self, path: str, allowed: list[str]) -> None:
        self.allowed = allowed
        super().__init__(f"{path}: method not allowed (allowed: {', '.join(allowed)})")
