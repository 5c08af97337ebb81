"""sixsense-udf: 6sense firmographics, lead scores and segments in your warehouse."""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml's [project].version, as installed (wheel or editable): the one source.
    __version__ = version("sixsense-udf")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
