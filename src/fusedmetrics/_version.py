"""The package version, written once: pyproject.toml's ``version``."""


def version():
    """The installed distribution's version; "0+unknown" for a source tree without metadata."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version("fusedmetrics")
    except PackageNotFoundError:  # imported from src/ without an install
        return "0+unknown"
