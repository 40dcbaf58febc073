"""Real servers for tests, started from Debian's packages in temporary folders on 127.0.0.1.

PostgreSQL (`initdb` + `pg_ctl` of the `postgresql` package) and nginx (the `nginx` package), each
with its own data, configuration, pid file and logs: nothing of the system's installation is used.
Import the fixtures into a test module: `from tests.servers import postgres_server, pg_url`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

POSTGRES_HINT = "install them with `apt-get install postgresql` (`make test` does it where it may)"
NGINX_HINT = "install it with `apt-get install nginx` (`make test` does it where it may)"
START_TIMEOUT_S = 60
_database_numbers = itertools.count(1)


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = START_TIMEOUT_S) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


# ---------------------------------------------------------------- PostgreSQL


def postgres_bin() -> Path | None:
    """Return the newest Debian PostgreSQL server bin folder, or None if none is installed."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    return found[-1] if found else None


def _as_server_user() -> list[str]:
    """Return the command prefix that drops root: initdb and postgres refuse to run as root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("PostgreSQL tests run as root need the `postgres` user; " + POSTGRES_HINT)
    return ["runuser", "-u", "postgres", "--"]


class PostgresServer:
    """A throwaway PostgreSQL cluster: trust authentication, TCP on 127.0.0.1 only, no fsync."""

    user = "mnist"

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir, self.port, self.prefix = bin_dir, free_port(), _as_server_user()
        # Not under pytest's tmp_path: its 0700 folders are closed to the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="mnist-bot-pg-"))
        self.data = self.root / "data"
        if self.prefix:
            shutil.chown(self.root, "postgres")

    def _run(self, tool: str, *args: str) -> None:
        """Run one of the server's tools as the server user; fail with its output."""
        command = [*self.prefix, str(self.bin_dir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def start(self) -> PostgresServer:
        """Create the cluster and start the server; return once it accepts connections."""
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w",
                  "-t", str(START_TIMEOUT_S), "start")  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """Return the URL of one database on this server."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """Create an empty database and return its URL: each test gets a clean one."""
        import psycopg

        name = f"test_{os.getpid()}_{next(_database_numbers)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        """Return the server log, for failure messages."""
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start one PostgreSQL server for the session, or skip with how to get it."""
    bin_dir = postgres_bin()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) not found; " + POSTGRES_HINT)
    pytest.importorskip("psycopg", reason='the PostgreSQL driver is missing: pip install -e ".[dev]"')
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        log = server.log()
        server.stop()
        pytest.fail(f"PostgreSQL did not start: {exc}\n{log}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """Return the URL of a fresh, empty database."""
    return postgres_server.create_database()


# ---------------------------------------------------------------- nginx


def nginx_binary() -> str | None:
    """Return the nginx executable, or None if nginx is not installed."""
    return shutil.which("nginx") or next(iter(glob.glob("/usr/sbin/nginx")), None)


NGINX_MAIN = """
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format upstreams '$msec|$status|$upstream_addr|$upstream_status|$request_uri';
    access_log {prefix}/access.log upstreams;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    include {prefix}/site.conf;
}}
"""


class Nginx:
    """nginx with its own configuration, pid file and logs in a folder (no system config is read)."""

    def __init__(self, prefix: Path, site: str) -> None:
        binary = nginx_binary()
        if binary is None:
            pytest.skip("nginx not found; " + NGINX_HINT)
        self.binary, self.prefix = binary, prefix
        prefix.mkdir(parents=True, exist_ok=True)
        # As root nginx would hand its workers to `nobody`, who cannot enter pytest's 0700 folders.
        user = "user root;" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(NGINX_MAIN.format(prefix=prefix, user=user))
        (prefix / "site.conf").write_text(site)
        self.process: subprocess.Popen[bytes] | None = None

    def _command(self, *extra: str) -> list[str]:
        """Return an nginx command line bound to this folder."""
        return [self.binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), *extra]

    def check(self) -> None:
        """Have nginx test its configuration; fail with its complaint."""
        check = subprocess.run(self._command("-t"), capture_output=True, text=True, timeout=30, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected its configuration:\n{check.stderr}")

    def start(self, port: int) -> Nginx:
        """Check the configuration, start nginx in the foreground and wait for its port."""
        self.check()
        self.process = subprocess.Popen(self._command("-g", "daemon off;"), stderr=subprocess.DEVNULL)
        wait_for_port(port)
        return self

    def stop(self) -> None:
        """Stop nginx (SIGQUIT would wait for open requests; SIGTERM is a fast, clean stop)."""
        if self.process is not None:
            stop_process(self.process, timeout=15)

    def access_log(self) -> list[str]:
        """Return the access log lines: time|status|upstream(s) tried|their statuses|URI."""
        path = self.prefix / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def error_log(self) -> str:
        """Return the error log."""
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def site_config(shipped: Path, listen_port: int, upstreams: Sequence[int]) -> str:
    """Return the shipped proxy site with the test's ports: one listen port, 127.0.0.1 replicas."""
    text = shipped.read_text()
    lines = list(re.finditer(r"^(\s*server\s+)(\S+:\d+)([^;]*;)\n", text, flags=re.MULTILINE))
    if not lines:
        raise ValueError(f"{shipped} names no replicas")
    indent, _, options = lines[0].groups()  # every replica gets the first one's options
    replicas = "".join(f"{indent}127.0.0.1:{port}{options}\n" for port in upstreams)
    text = text[: lines[0].start()] + replicas + text[lines[-1].end() :]
    return re.sub(r"listen\s+\d+;", f"listen 127.0.0.1:{listen_port};", text)


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    """Send `sig` to a process still running, kill it if it outlives `timeout`; return its exit status."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


def bot_env(token: str, api_base_url: str, db: str | Path, **extra: str) -> dict[str, str]:
    """Return the environment of a bot process: this Bot API server and database, none of ours inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MNIST_BOT_"))}
    env.update(TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_BASE_URL=api_base_url, MNIST_BOT_DB=str(db))
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


# ---------------------------------------------------------------- bot replicas


class BotReplica:
    """`mnist-bot bot` in webhook mode as a subprocess on 127.0.0.1, logging into a file."""

    def __init__(
        self, env: dict[str, str], port: int, webhook_url: str, secret: str, log: Path, *args: str
    ) -> None:
        self.port, self.log_path = port, log
        options = ["--webhook", webhook_url, "--port", str(port), "--listen", "127.0.0.1", "--secret", secret]
        command = [sys.executable, "-m", "mnist_bot.cli", "bot", *options, *args]
        self.log_file = log.open("ab")
        self.process = subprocess.Popen(
            command, stdout=self.log_file, stderr=subprocess.STDOUT, env=env, cwd=log.parent
        )

    @property
    def address(self) -> str:
        """Return host:port as nginx names this replica in its logs."""
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> BotReplica:
        """Wait until the webhook server accepts connections; fail with the log if it died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                wait_for_port(self.port, timeout=1)
                return self
            except TimeoutError:
                continue
        self.process.kill()
        raise AssertionError(f"the replica on port {self.port} did not start:\n{self.log()}")

    def kill(self) -> None:
        """Kill the replica without warning (SIGKILL), as a crash or an OOM kill would."""
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> int:
        """Stop the replica with SIGTERM and return its exit status."""
        code = stop_process(self.process)
        self.log_file.close()
        return code

    def log(self) -> str:
        """Return what the replica has written so far."""
        return self.log_path.read_text(errors="replace")
