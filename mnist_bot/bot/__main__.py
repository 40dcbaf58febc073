"""Run the bot: `python -m mnist_bot.bot [--webhook URL --port N --path P --secret S]`."""

from __future__ import annotations

import argparse
import logging
import sys

from mnist_bot import RecognizerError
from mnist_bot.bot.app import run_bot
from mnist_bot.cli import add_bot_options, bot_options
from mnist_bot.config import load_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line: the options of `mnist-bot bot`, plus a log level."""
    parser = argparse.ArgumentParser(prog="python -m mnist_bot.bot", description=__doc__)
    add_bot_options(parser)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the bot until it is stopped; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_bot(load_settings(), **bot_options(args))
    except RecognizerError as exc:
        logging.getLogger("mnist_bot.bot").error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
