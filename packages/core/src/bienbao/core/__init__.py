"""What every bienbao package shares (standard library only): ``files``, ``cpu``, ``errors``."""

from .errors import ConfigError, UserError, first_line

__all__ = ["ConfigError", "UserError", "first_line"]
