"""`python -m causalcast.cli` runs the CLI (used by tests and by subprocess-based workers)."""

from causalcast.cli import main

main()
