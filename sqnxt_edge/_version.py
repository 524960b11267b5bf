"""The package version, in a module that imports nothing else (every stage may stamp it into what it writes).

The one place it is written: pyproject.toml reads it from here (`[tool.setuptools.dynamic]`)."""

__version__ = "0.1.0"
