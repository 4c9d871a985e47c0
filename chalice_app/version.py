"""The package's version, as installed (``importlib.metadata``), for serverInfo and the OpenAPI document."""

from __future__ import annotations

from functools import cache
from importlib import metadata

DISTRIBUTION = "pb-fm-webpage"
# The Lambda zip vendors the package without its dist-info, so there the metadata cannot be asked;
# a unit test keeps this equal to pyproject.toml's version.
PACKAGED_VERSION = "0.1.0"


@cache
def package_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return PACKAGED_VERSION
