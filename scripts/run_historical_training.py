"""Seed-compatible entry point: the same flags and exit codes as `sensequant historical-run`."""

import sys

from sensequant_assets.cli import main

if __name__ == "__main__":
    sys.exit(main(["historical-run", *sys.argv[1:]]))
