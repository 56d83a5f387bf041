class TemplateError(Exception):
    """Rendering failed (unknown filter, bad value)."""


class TemplateSyntaxError(TemplateError):
    """The template text is malformed. `line` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")
