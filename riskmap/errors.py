"""One exception family for the whole project.

Every error a user can cause carries an HTTP status (for the web service) and maps to
exit code 2 on the command line. Messages name the file, column and row when known.
"""

from __future__ import annotations


class RiskmapError(Exception):
    """Base class: an error with a user-facing message and an HTTP status."""

    status = 500
    exit_code = 1

    def __init__(self, message: str, *, errors: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = list(errors or [])


class InputError(RiskmapError):
    """Bad input data: wrong columns, codes, values, encodings, geometry, CRS.

    Parameters
    ----------
    message : str
        What was expected and what was found.
    file, column, row : optional
        Where the problem is; folded into the message as ``file: column 'c', row r: ...``.
    """

    status = 400
    exit_code = 2

    def __init__(self, message: str, *, file=None, column=None, row=None, errors=None):
        where = []
        if file is not None:
            where.append(str(file))
        if column is not None:
            where.append(f"column '{column}'")
        if row is not None:
            where.append(f"row {row}")
        full = f"{', '.join(where)}: {message}" if where else message
        super().__init__(full, errors=errors)
        self.file, self.column, self.row = file, column, row


class ModelError(InputError):
    """The data cannot support the model (all-zero outcome, perfect separation...)."""


class NotFound(RiskmapError):
    """A named thing (edition, municipality, state, format) does not exist."""

    status = 404
    exit_code = 2


class BadParameter(RiskmapError):
    """A request or command parameter is outside its allowed values."""

    status = 400
    exit_code = 2

    def __init__(self, name: str, value, allowed=None, message: str | None = None):
        allowed_list = [str(a) for a in allowed] if allowed is not None else []
        text = message or f"invalid value {value!r} for '{name}'"
        if allowed_list:
            text += "; allowed: " + ", ".join(allowed_list)
        super().__init__(text, errors=[f"{name}: allowed values are {', '.join(allowed_list)}"]
                         if allowed_list else [text])
        self.name, self.value, self.allowed = name, value, allowed_list


class ConfigError(RiskmapError):
    """An unknown or ill-typed setting; raised at start-up."""

    exit_code = 2


class Unavailable(RiskmapError):
    """A feature needs a system component that is missing here (e.g. the Pango library
    WeasyPrint draws PDFs with): HTTP 503, exit code 1, with what to install."""

    status = 503
    exit_code = 1
