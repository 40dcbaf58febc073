"""Container health check of the bot: exit 0 when healthy, 1 when not (Docker's HEALTHCHECK).

In webhook mode (`mnist-bot bot --webhook URL [--port N]`) the webhook server must answer HTTP on
127.0.0.1: any status counts (it answers 404/405 to a plain GET), a refused or hung connection does
not. In long-polling mode there is no port to probe: the bot being alive is all there is to check.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

DEFAULT_PORT = 8443  # `mnist-bot bot --port`'s default
TIMEOUT_S = 4.0


def webhook_port(argv: Sequence[str]) -> int | None:
    """Return the webhook server's port from the bot's command line, or None for long polling."""
    args = list(argv)
    if not any(a == "--webhook" or a.startswith("--webhook=") for a in args):
        return None
    for i, arg in enumerate(args):
        if arg == "--port" and i + 1 < len(args):
            return int(args[i + 1])
        if arg.startswith("--port="):
            return int(arg.split("=", 1)[1])
    return DEFAULT_PORT


def answers_http(port: int, timeout: float = TIMEOUT_S) -> bool:
    """Tell whether something answers HTTP on 127.0.0.1:port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # an HTTP error status is still an answer
    except OSError:
        return False


def bot_command_line(proc: Path = Path("/proc/1/cmdline")) -> list[str]:
    """Return the command line of the container's main process (the bot is PID 1)."""
    return [part for part in proc.read_bytes().decode(errors="replace").split("\0") if part]


def main() -> int:
    """Return the health check's exit status."""
    port = webhook_port(bot_command_line())
    return 0 if port is None or answers_http(port) else 1


if __name__ == "__main__":
    sys.exit(main())
