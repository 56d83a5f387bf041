class InvalidPage(ValueError):
    """The page number is not a positive integer."""


class EmptyPage(InvalidPage):
    """The page number is past the last page."""
