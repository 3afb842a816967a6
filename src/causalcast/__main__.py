"""`python -m causalcast` runs the CLI."""

from causalcast.cli import main

main()
