"""Exceptions the library raises for user mistakes.

The CLI turns any `SqnxtError` into one line on stderr and exit code 1; everything else is a bug and keeps
its traceback.
"""


class SqnxtError(Exception):
    """A problem the user can fix: bad name, bad file, missing data or extra."""


class UnknownModelError(SqnxtError, KeyError):
    """A model name the registry does not know (a KeyError too, for dict-style callers)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(SqnxtError):
    """A checkpoint that is missing, corrupt, foreign or unsafe."""


class DataError(SqnxtError):
    """Missing, empty or malformed data."""


class ExportError(SqnxtError):
    """An export that failed or did not verify."""


class MissingExtraError(SqnxtError):
    """An optional dependency is not installed."""


class BenchError(SqnxtError):
    """A measurement that could not be made."""


class DeviceError(SqnxtError):
    """A device that is unknown, unreachable or misconfigured."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (libraries raise multi-line texts), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def require(module: str, extra: str, what: str):
    """Import an optional dependency or say in one line which extra provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{what} needs the '{module}' package: pip install 'sqnxt-edge[{extra}]' ({exc})"
        ) from None
