"""Run the bot: `python -m mnist_bot.bot [--webhook URL --port N --path P --secret S]`."""

from __future__ import annotations

import argparse
import logging
import sys

from mnist_bot import RecognizerError
from mnist_bot.bot.app import run_bot
from mnist_bot.config import load_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m mnist_bot.bot", description=__doc__)
    parser.add_argument(
        "--webhook", metavar="URL", help="public HTTPS URL: run a webhook server, not polling"
    )
    parser.add_argument("--port", type=int, default=8443, help="webhook server port (default 8443)")
    parser.add_argument("--path", default=None, help="webhook URL path to serve (default: the path of URL)")
    parser.add_argument("--secret", default=None, help="webhook secret token (default: random per run)")
    parser.add_argument("--listen", default="0.0.0.0", help="webhook server address (default 0.0.0.0)")
    parser.add_argument("--flood-rate", type=float, default=30.0, help="outgoing messages/s (0: off)")
    parser.add_argument("--concurrency", type=int, default=64, help="updates handled at once (1: one by one)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the bot until it is stopped; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_bot(
            load_settings(),
            webhook_url=args.webhook,
            port=args.port,
            path=args.path,
            secret=args.secret,
            listen=args.listen,
            flood_rate=args.flood_rate,
            concurrency=args.concurrency,
        )
    except RecognizerError as exc:
        logging.getLogger("mnist_bot.bot").error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
