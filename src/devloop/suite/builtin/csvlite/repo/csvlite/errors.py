class CsvError(ValueError):
    """Malformed CSV input. `line` is 1-based."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)
