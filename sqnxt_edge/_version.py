"""The package version, in a module that imports nothing else (every stage may stamp it into what it writes)."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("sqnxt-edge")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"
