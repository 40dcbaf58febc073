"""End to end: two webhook replicas behind a real nginx, sharing one real PostgreSQL.

Everything runs on 127.0.0.1: the fake Bot API server posts each update to nginx (the shipped
deploy/nginx.conf with test ports), nginx spreads them over two `mnist-bot bot --webhook` processes,
and both store corrections in one PostgreSQL database. One replica is killed in the middle of the
load: no correction it had confirmed is lost, and the other answers everything sent after.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnist_bot.feedback import FeedbackStore
from tests.fake_telegram import FakeTelegram, mnist_test_digits, paper_photo
from tests.servers import (
    BotReplica,
    Nginx,
    PostgresServer,
    bot_env,
    free_port,
    postgres_server,
    site_config,
)

__all__ = ["postgres_server"]  # a fixture, imported for pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHIPPED_SITE = Path(__file__).resolve().parents[1] / "deploy" / "nginx.conf"
MODEL_OVERRIDE = os.environ.get("MNIST_BOT_MODEL")  # read before the isolation fixture clears it
READY_TIMEOUT = 90.0  # two cold starts at once on a busy 2-core machine
REPLY_TIMEOUT = 60.0
USERS = 12  # users in each wave; each sends one photo, then corrects the answer


@dataclass
class Cluster:
    """The deployment under test."""

    fake: FakeTelegram
    nginx: Nginx
    replicas: list[BotReplica]
    db_url: str


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> dict[int, np.ndarray]:
    """One clean MNIST test digit per class, as uint8 (28, 28) ink=255."""
    x, y = mnist_test_digits(str(mnist_dir))
    return {d: x[int(np.flatnonzero(y == d)[0])] for d in range(10)}


@pytest.fixture
def cluster(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[Cluster]:
    """Start nginx, then two replicas registering nginx's address as their webhook."""
    db_url = postgres_server.create_database()
    ports, proxy_port, secret = [free_port(), free_port()], free_port(), secrets.token_urlsafe(24)
    nginx = Nginx(tmp_path / "nginx", site_config(SHIPPED_SITE, proxy_port, ports))
    webhook = f"http://127.0.0.1:{proxy_port}/telegram/hook"
    extra = {"MNIST_BOT_RATE_LIMIT": "600"} | ({"MNIST_BOT_MODEL": MODEL_OVERRIDE} if MODEL_OVERRIDE else {})
    with ExitStack() as stack:  # torn down in reverse: replicas, then the fake server, then nginx
        stack.callback(nginx.stop)
        nginx.start(proxy_port)
        fake = stack.enter_context(FakeTelegram())
        env = bot_env(fake.token, fake.base_url, db_url, **extra)
        replicas = []
        for port in ports:
            replicas.append(BotReplica(env, port, webhook, secret, tmp_path / f"bot{port}.log"))
            stack.callback(replicas[-1].stop)
        for replica in replicas:
            replica.wait_ready(READY_TIMEOUT)
        fake.wait_for(lambda: len(fake.calls("setWebhook")) >= 2, timeout=READY_TIMEOUT)
        yield Cluster(fake, nginx, replicas, db_url)


def _answers(fake: FakeTelegram, sent: dict[int, int]) -> dict[int, dict[str, Any]]:
    """Wait for the answer to each user's photo."""
    return {user: fake.wait_reply(user, message, REPLY_TIMEOUT) for user, message in sent.items()}


def _key(answer: dict[str, Any]) -> str:
    """Return the feedback key an answer's buttons point to."""
    rows = answer["reply_markup"]["inline_keyboard"]
    return str(rows[0][0]["callback_data"].split(":")[1])


def _confirmed(fake: FakeTelegram, user: int, answer: dict[str, Any]) -> bool:
    """Tell whether the bot told the user it stored the correction."""
    return "You said it's" in fake.message(user, answer["message_id"])["text"]


def _served_by(nginx: Nginx) -> Counter[str]:
    """Count the webhook updates each replica answered with 200, from nginx's access log."""
    served: Counter[str] = Counter()
    for line in nginx.access_log():
        _, status, upstreams, _, uri = line.split("|", 4)
        if uri.startswith("/telegram/") and status == "200":
            served[upstreams.split(", ")[-1]] += 1  # the last upstream tried is the one that answered
    return served


def _send_wave(cluster: Cluster, digits: dict[int, np.ndarray], first_user: int) -> dict[int, int]:
    """Send one photo from each of USERS users; return user -> message id."""
    return {
        user: cluster.fake.send_photo(user, paper_photo([digits[user % 10]]))
        for user in range(first_user, first_user + USERS)
    }


def test_two_replicas_share_the_load_and_survive_losing_one(
    cluster: Cluster, digits: dict[int, np.ndarray]
) -> None:
    fake, nginx, (doomed, survivor) = cluster.fake, cluster.nginx, cluster.replicas

    # 1. Answers spread over both replicas.
    first = _answers(fake, _send_wave(cluster, digits, 1000))
    assert all(a["text"].startswith(f"{u % 10}, ") for u, a in first.items()), first
    served = _served_by(nginx)
    assert served[doomed.address] >= USERS // 4 and served[survivor.address] >= USERS // 4, served

    # 2. Corrections and new photos arrive; one replica dies while they are being handled.
    label = {user: (user + 1) % 10 for user in first}
    users = sorted(first)
    for user in users[: USERS // 2]:
        fake.press(user, first[user], f"set:{_key(first[user])}:0:{label[user]}")
    during = _send_wave(cluster, digits, 2000)
    fake.wait_for(lambda: sum(_confirmed(fake, u, first[u]) for u in users) >= USERS // 4, REPLY_TIMEOUT)
    doomed.kill()
    confirmed_before_kill = [u for u in users if _confirmed(fake, u, first[u])]
    for user in users[USERS // 2 :]:
        fake.press(user, first[user], f"set:{_key(first[user])}:0:{label[user]}")
    after = _answers(fake, _send_wave(cluster, digits, 3000))

    # 3. The survivor answers everything sent after the kill...
    assert all(a["text"].startswith(f"{u % 10}, ") for u, a in after.items()), after
    late = users[USERS // 2 :]
    fake.wait_for(lambda: all(_confirmed(fake, u, first[u]) for u in late), REPLY_TIMEOUT)
    assert survivor.process.poll() is None, survivor.log()
    # (photos the killed replica had taken and not answered are lost, as they would be with Telegram)
    for user, message in during.items():
        assert all(r["text"].startswith(f"{user % 10}, ") for r in fake.replies_to(user, message))
    # ...and no correction the users were told was stored is missing from the shared database.
    confirmed = [u for u in users if _confirmed(fake, u, first[u])]
    assert set(confirmed_before_kill) | set(late) <= set(confirmed)
    with FeedbackStore(cluster.db_url) as store:
        stored = {u: store.samples(_key(first[u]))[0].label for u in confirmed}
        assert stored == {u: label[u] for u in confirmed}
        # Unconfirmed ones may be stored too: the killed replica may have written one and died
        # before telling the user.
        assert len(confirmed) <= store.count() <= USERS
    assert fake.token not in doomed.log() + survivor.log()
    assert survivor.stop() == 0, survivor.log()
