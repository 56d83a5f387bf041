class ConfigError(ValueError):
    """A configuration value or file is invalid. `source` says where it came from."""

    def __init__(self, message: str, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)
