"""Run the bot: `python -m mnist_bot.bot [-v] [options of mnist-bot bot]`, the same as `mnist-bot bot`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mnist_bot import cli

GLOBAL_FLAGS = ("-v", "--verbose")  # options of `mnist-bot` itself, which must come before `bot`


def cli_arguments(argv: Sequence[str]) -> list[str]:
    """Return the `mnist-bot` command line that runs the bot with `argv`."""
    flags = [a for a in argv if a in GLOBAL_FLAGS]
    rest = [a for a in argv if a not in GLOBAL_FLAGS]
    return [*flags, "bot", *rest]


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mnist-bot bot` with this command line; return its exit status."""
    return cli.main(cli_arguments(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
