"""What every bienbao package shares (standard library only): ``files``, ``cpu``, ``errors``."""

from .errors import UserError, first_line

__all__ = ["UserError", "first_line"]
