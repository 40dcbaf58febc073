"""Load benchmark of the replicated deployment: webhook replicas behind nginx sharing PostgreSQL.

Builds on 127.0.0.1 what compose.yaml runs: a PostgreSQL server (Debian's binaries), nginx with
deploy/nginx.conf, and N `mnist-bot bot --webhook` processes; the fake Bot API server posts every
update to nginx. Many users send photos at once; replies per second and p50/p99 latency (photo at
the server to answer at the server) are measured for each replica count. Outgoing flood control
is off, as in bench_bot_load.py's `concurrent` mode, to measure capacity rather than the limit.

    .venv/bin/python benchmarks/bench_replicas.py [--users 30] [--photos 2] [--replicas 1,2] [--sqlite]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import secrets
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.* when run as a script

from bench_bot_load import Result, make_photos, send_all, table, timed_result  # noqa: E402

from tests.fake_telegram import FakeTelegram  # noqa: E402
from tests.servers import (  # noqa: E402
    BotReplica,
    Nginx,
    PostgresServer,
    bot_env,
    free_port,
    postgres_bin,
    site_config,
)

SITE = ROOT / "deploy" / "nginx.conf"


def start_cluster(
    fake: FakeTelegram, workdir: Path, db_url: str, replicas: int, model: str | None
) -> tuple[Nginx, list[BotReplica]]:
    """Start nginx and the replicas; return once every replica serves its webhook."""
    ports, proxy_port, secret = [free_port() for _ in range(replicas)], free_port(), secrets.token_urlsafe(16)
    nginx = Nginx(workdir / "nginx", site_config(SITE, proxy_port, ports)).start(proxy_port)
    extra = {"MNIST_BOT_RATE_LIMIT": "1000"} | ({"MNIST_BOT_MODEL": model} if model else {})
    env = bot_env(fake.token, fake.base_url, db_url, **extra)
    webhook = f"http://127.0.0.1:{proxy_port}/telegram/hook"
    bots = [
        BotReplica(env, port, webhook, secret, workdir / f"bot{port}.log", "--flood-rate", "0")
        for port in ports
    ]
    for bot in bots:
        bot.wait_ready(120)
    fake.wait_for(lambda: len(fake.calls("setWebhook")) >= replicas, timeout=120)
    return nginx, bots


def run(
    new_database: Callable[[], str],
    replicas: int,
    photos: list[tuple[int, bytes]],
    users: int,
    per_user: int,
    model: str | None,
) -> Result:
    """Send every photo at once through nginx and time the answers."""
    with FakeTelegram() as fake, tempfile.TemporaryDirectory() as tmp:
        nginx, bots = start_cluster(fake, Path(tmp), new_database(), replicas, model)
        try:
            sent, replies = send_all(fake, photos, users, per_user)
        finally:
            for bot in bots:
                bot.stop()
            nginx.stop()
        return timed_result(fake, f"{replicas} replica" + ("s" if replicas > 1 else ""), sent, replies)


def measure(args: argparse.Namespace, counts: list[int]) -> list[Result]:
    """Run the load once per replica count, each on a fresh database of the chosen kind."""
    photos = make_photos(min(50, args.users * args.photos), args.mnist_dir)
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            files = (str(Path(tmp) / f"feedback{i}.db") for i in itertools.count())
            return [run(lambda: next(files), n, photos, args.users, args.photos, args.model) for n in counts]
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries not found: apt-get install postgresql nginx")
    server = PostgresServer(bin_dir).start()
    try:
        return [run(server.create_database, n, photos, args.users, args.photos, args.model) for n in counts]
    finally:
        server.stop()


def main() -> None:
    """Run the benchmark and print a table and a JSON line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=30, help="simulated users sending at once")
    parser.add_argument("--photos", type=int, default=2, help="photos per user")
    parser.add_argument("--replicas", default="1,2", help="comma list of replica counts")
    parser.add_argument("--model", default=None, help="model file (default: the shipped cnn)")
    parser.add_argument("--mnist-dir", default=None, help="MNIST folder (default: MNIST_DIR)")
    parser.add_argument("--sqlite", action="store_true", help="one SQLite file instead of PostgreSQL")
    args = parser.parse_args()
    results = measure(args, [int(n) for n in args.replicas.split(",")])
    print(table(results))
    summary: dict[str, Any] = {
        "benchmark": "replicas",
        "users": args.users,
        "photos_per_user": args.photos,
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "database": "sqlite" if args.sqlite else "postgresql",
        "results": [asdict(r) for r in results],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
