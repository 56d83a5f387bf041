class DotenvError(ValueError):
    """A .env file is malformed. `line` is 1-based."""

    def __init__(self, message: str, line: int, source: str = ".env") -> None:
        self.line = line
        super().__init__(f"{source}:{line}: {message}")
