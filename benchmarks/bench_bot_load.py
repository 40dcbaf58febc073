"""Load benchmark: many users send digit photos at once to the real bot, through the fake Bot API.

Runs the real bot process (`python -m mnist_bot.bot`, real model, real SQLite) against the fake
server from the tests, once per mode:
  sequential   one update at a time (python-telegram-bot's default): the naive baseline
  concurrent   64 updates at once, inference in worker threads (what `mnist-bot bot` runs)
  flood-30     concurrent, with the production outgoing limit of 30 requests/s
and reports replies per second and p50/p99 latency from the photo arriving at the server to the
answer arriving there. Prints a table, then one JSON line.

    .venv/bin/python benchmarks/bench_bot_load.py [--users 40] [--photos 3] [--modes sequential,concurrent]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.fake_telegram when run as a script

from tests.fake_telegram import FakeTelegram, mnist_test_digits, paper_photo  # noqa: E402

MODES: dict[str, list[str]] = {
    "sequential": ["--concurrency", "1", "--flood-rate", "0"],
    "concurrent": ["--concurrency", "64", "--flood-rate", "0"],
    "flood-30": ["--concurrency", "64", "--flood-rate", "30"],
}


@dataclass(frozen=True)
class Result:
    """One mode's measurements."""

    mode: str
    photos: int
    answered: int
    correct: int
    seconds: float
    replies_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float


def start_bot(
    fake: FakeTelegram, workdir: Path, args: list[str], model: str | None
) -> subprocess.Popen[bytes]:
    """Start the bot process and wait until it polls."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MNIST_BOT_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=fake.token,
        TELEGRAM_API_BASE_URL=fake.base_url,
        MNIST_BOT_DB=str(workdir / "feedback.db"),
        MNIST_BOT_RATE_LIMIT="1000",
    )
    if model:
        env["MNIST_BOT_MODEL"] = model
    log = (workdir / "bot.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_bot.bot", *args],  # logs warnings only, the CLI's default
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=workdir,
    )
    fake.wait_for(lambda: fake.calls("deleteWebhook") or process.poll() is not None, timeout=120)
    if process.poll() is not None:
        raise SystemExit(f"the bot exited:\n{(workdir / 'bot.log').read_text()}")
    return process


def run_mode(
    mode: str, photos: list[tuple[int, bytes]], users: int, per_user: int, model: str | None
) -> Result:
    """Send every photo at once and time the answers."""
    with FakeTelegram() as fake, tempfile.TemporaryDirectory() as tmp:
        process = start_bot(fake, Path(tmp), MODES[mode], model)
        try:
            sent, replies = send_all(fake, photos, users, per_user)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        return timed_result(fake, mode, sent, replies)


Sent = list[tuple[int, int, int]]  # (user, message id, true digit) of each photo sent


def send_all(
    fake: FakeTelegram, photos: list[tuple[int, bytes]], users: int, per_user: int
) -> tuple[Sent, list[dict[str, Any]]]:
    """Send `per_user` photos from each of `users` users at once, then wait for every reply."""
    prepared = [(label, fake.photo_sizes(jpeg)) for label, jpeg in photos]  # before the clock starts
    sent = []
    for i in range(users * per_user):
        label, sizes = prepared[i % len(prepared)]
        user = 10_000 + i % users
        sent.append((user, fake.send_photo(user, None, sizes=sizes), label))
    return sent, [fake.wait_reply(user, message_id, timeout=600) for user, message_id, _ in sent]


def timed_result(fake: FakeTelegram, mode: str, sent: Sent, replies: list[dict[str, Any]]) -> Result:
    """Measure latencies and throughput from the fake server's timestamps of each photo and its reply."""
    pairs = list(zip(sent, replies, strict=True))
    latencies = np.array([fake.stamp(u, r["message_id"]) - fake.stamp(u, m) for (u, m, _), r in pairs])
    first = min(fake.stamp(u, m) for u, m, _ in sent)
    last = max(fake.stamp(u, r["message_id"]) for (u, _, _), r in pairs)
    correct = sum(first_digit(r.get("text", "")) == label for (_, _, label), r in pairs)
    return Result(
        mode=mode,
        photos=len(sent),
        answered=len(replies),
        correct=int(correct),
        seconds=round(last - first, 3),
        replies_per_s=round(len(replies) / (last - first), 2),
        p50_ms=round(float(np.percentile(latencies, 50)) * 1000, 1),
        p99_ms=round(float(np.percentile(latencies, 99)) * 1000, 1),
        max_ms=round(float(latencies.max()) * 1000, 1),
    )


def first_digit(text: str) -> int | None:
    """Return the answer's digit: the first one in the reply ("7, 98% sure", "Maybe 7, ...")."""
    found = re.search(r"\d", text)
    return int(found.group()) if found else None


def make_photos(count: int, mnist_dir: str | None) -> list[tuple[int, bytes]]:
    """Render `count` distinct MNIST test digits as phone-like JPEGs (label, bytes)."""
    x, y = mnist_test_digits(mnist_dir)
    return [(int(y[i]), paper_photo([x[i]])) for i in range(count)]


def table(results: list[Result]) -> str:
    """Format the results as a plain text table."""
    head = f"{'mode':<11} {'photos':>6} {'correct':>7} {'seconds':>8} {'replies/s':>9} "
    head += f"{'p50 ms':>8} {'p99 ms':>8}"
    rows = [
        f"{r.mode:<11} {r.photos:>6} {r.correct:>7} {r.seconds:>8.2f} {r.replies_per_s:>9.2f} "
        f"{r.p50_ms:>8.0f} {r.p99_ms:>8.0f}"
        for r in results
    ]
    return "\n".join([head, "-" * len(head), *rows])


def main() -> None:
    """Run the benchmark and print a table and a JSON line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=40, help="simulated users sending at once")
    parser.add_argument("--photos", type=int, default=3, help="photos per user")
    parser.add_argument(
        "--modes", default="sequential,concurrent,flood-30", help=f"comma list of {list(MODES)}"
    )
    parser.add_argument(
        "--model", default=None, help="model file (default: MNIST_BOT_MODEL or models/cnn.tflite)"
    )
    parser.add_argument(
        "--mnist-dir", default=None, help="MNIST folder (default: MNIST_DIR or /work/shared/mnist)"
    )
    args = parser.parse_args()
    photos = make_photos(min(50, args.users * args.photos), args.mnist_dir)
    results = [run_mode(mode, photos, args.users, args.photos, args.model) for mode in args.modes.split(",")]
    print(table(results))
    summary: dict[str, Any] = {
        "benchmark": "bot_load",
        "users": args.users,
        "photos_per_user": args.photos,
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "results": [asdict(r) for r in results],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
