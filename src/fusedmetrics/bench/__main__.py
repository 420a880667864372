"""Command-line entry point: ``python -m fusedmetrics.bench`` and the ``fusedmetrics-bench`` script."""
import sys

from .runner import run


def main(argv=None):
    """Run the harness with command-line arguments ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    return run(sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(main())
