"""The error hierarchy of the core. The API maps each class to one HTTP status."""

from __future__ import annotations

from nofei.problems import Problem


class NofeiError(Exception):
    """Base of everything the core raises on purpose. ``code`` is a stable machine-readable slug."""

    code = "error"

    def __init__(self, message: str = "", *, code: str | None = None, problems: list[Problem] | None = None):
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip()
        if code:
            self.code = code
        self.problems: list[Problem] = list(problems or [])


class NotFound(NofeiError):
    """The thing asked for does not exist (or the caller may not know that it does)."""

    code = "not_found"


class PermissionDenied(NofeiError):
    """The caller's role or units do not allow this."""

    code = "forbidden"


class Unauthenticated(NofeiError):
    """No valid credentials were given."""

    code = "unauthenticated"


class Conflict(NofeiError):
    """The request conflicts with the current state (duplicate, step out of order)."""

    code = "conflict"


class InputRejected(NofeiError):
    """The input is well-formed but breaks a rule; ``problems`` lists every one found."""

    code = "invalid_input"


class LedgerRejected(InputRejected):
    """A monthly ledger workbook was rejected; ``problems`` pins every error to its cell."""

    code = "ledger_rejected"
    warnings: list[Problem]  # set by the reader: what was accepted with a warning before the rejection


class TooLarge(NofeiError):
    """The input is over a configured size limit."""

    code = "too_large"


class UnsupportedFile(NofeiError):
    """The upload is not a spreadsheet nofei accepts (macro-enabled, encrypted, disguised...)."""

    code = "unsupported_file"


class Unavailable(NofeiError):
    """The database or another dependency is unavailable; the client may retry."""

    code = "unavailable"
