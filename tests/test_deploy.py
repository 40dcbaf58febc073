"""Tests of the deployment files: the container health check, and that Dockerfile, compose and nginx agree."""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.servers import Nginx, free_port, nginx_binary, site_config

ROOT = Path(__file__).resolve().parents[1]


def _healthcheck() -> ModuleType:
    """Import deploy/healthcheck.py, a script outside the package."""
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


health = _healthcheck()


@pytest.fixture
def http_port() -> Iterator[int]:
    """Serve 405 to every GET on a free port, as the bot's webhook server does."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(405)

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("argv", "port"),
    [
        (["mnist-bot", "bot"], None),
        (["python", "/usr/local/bin/mnist-bot", "bot", "--webhook", "https://x/telegram/h"], 8443),
        (["mnist-bot", "bot", "--webhook", "https://x/h", "--port", "9000"], 9000),
        (["mnist-bot", "bot", "--port=9001", "--webhook=https://x/h"], 9001),
    ],
)
def test_the_health_check_probes_the_webhook_port_only_in_webhook_mode(
    argv: list[str], port: int | None
) -> None:
    assert health.webhook_port(argv) == port


def test_a_webhook_server_answering_any_status_is_healthy(http_port: int) -> None:
    assert health.answers_http(http_port)
    assert not health.answers_http(free_port(), timeout=2)


def test_the_health_check_reads_the_main_process_command_line(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"python\0/usr/local/bin/mnist-bot\0bot\0--webhook\0https://x/h\0")
    assert health.bot_command_line(cmdline)[-2:] == ["--webhook", "https://x/h"]


def _compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_runs_the_replicas_nginx_sends_updates_to() -> None:
    services = _compose()["services"]
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    upstreams = re.findall(r"^\s*server\s+(\S+):(\d+)", site, flags=re.MULTILINE)
    replicas = [name for name, service in services.items() if service.get("command", [None])[0] == "bot"]
    assert sorted(host for host, _ in upstreams) == sorted(replicas) == ["bot1", "bot2"]
    for name in replicas:
        command = services[name]["command"]
        assert command[command.index("--port") + 1] == "8443" == upstreams[0][1]
        assert command[command.index("--listen") + 1] == "0.0.0.0"  # reachable from the proxy container
        assert "--secret" in command  # one shared secret: a random one per replica would lock the other out
        assert services[name]["environment"]["MNIST_BOT_DB"].startswith("postgresql://")
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
    rates = [
        float(services[n]["command"][services[n]["command"].index("--flood-rate") + 1]) for n in replicas
    ]
    assert 0 < sum(rates) <= 30  # Telegram's limit is per bot, not per replica
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["proxy"]["volumes"]
    example = (ROOT / "deploy" / "example.env").read_text()
    assert re.search(r"^WEBHOOK_URL=https://[^/]+/telegram/", example, flags=re.MULTILINE)
    assert "location /telegram/" in site


def test_the_dockerfile_serves_without_tensorflow_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, flags=re.MULTILINE)
    installs = re.findall(r"pip install (.+)", dockerfile)
    assert installs == ['".[postgres]" \\']  # core + postgres: not the train extra, no TensorFlow
    assert "find_spec('tensorflow') is not None" in dockerfile  # and the build fails if it slips in
    users = re.findall(r"^USER (\S+)$", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*\n?.*healthcheck\.py", dockerfile, flags=re.MULTILINE)
    assert "MNIST_BOT_MODEL=/app/models/cnn.tflite" in dockerfile


def test_dockerignore_lets_through_everything_the_dockerfile_copies() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}  # fmt: skip
    copied = [src.rstrip("/") for line in re.findall(r"^COPY (.+)$", dockerfile, flags=re.MULTILINE)
              for src in line.split()[:-1]]  # fmt: skip
    assert copied and all(src in allowed for src in copied), (copied, allowed)
    assert all((ROOT / src).exists() for src in copied)


def test_nginx_accepts_the_shipped_site(tmp_path: Path) -> None:
    if nginx_binary() is None:
        pytest.skip("nginx not found; install it with `apt-get install nginx`")
    nginx = Nginx(tmp_path / "nginx", site_config(ROOT / "deploy" / "nginx.conf", free_port(), [1, 2]))
    nginx.check()
