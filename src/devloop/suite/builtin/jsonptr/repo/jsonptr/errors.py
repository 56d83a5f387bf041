class PointerError(ValueError):
    """A pointer is malformed or does not resolve in the document."""


class PatchError(ValueError):
    """A patch operation is malformed or failed; `index` is the operation's position."""

    def __init__(self, message: str, index: int) -> None:
        self.index = index
        super().__init__(f"operation {index}: {message}")
