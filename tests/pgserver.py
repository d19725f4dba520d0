"""A throwaway PostgreSQL server for the tests and benchmarks, and the `postgres_dsn` fixture.

`throwaway_server()` runs ``initdb`` and ``pg_ctl`` from the installed server binaries
(``.ci/postgres.sh`` installs them) in a temporary directory, on 127.0.0.1 and a free
port, tuned for speed over durability (``fsync=off``), and removes everything at exit.
initdb and the server refuse to run as root, so as root they run as the ``postgres``
user through ``runuser``, from a directory that user can read.

`stoppable_server()` is the same server as a `Server` a test may stop and start
again on its port and data directory: a real outage of the database.

`postgres_dsn` (a session fixture) yields ``RUNLIFE_PG_DSN`` when it is set, else the
DSN of a throwaway server. When no server can be started it fails with the output of
the tool that failed: PostgreSQL tests never skip silently.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

__all__ = ("Server", "ServerError", "postgres_dsn", "stoppable_server", "throwaway_server")

DATABASE = "runlife"
USER = "runlife"


class ServerError(RuntimeError):
    """The throwaway server could not be started; the message holds the tool's output."""


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return os.path.dirname(found[-1])
    on_path = shutil.which("initdb") or shutil.which("pg_ctl")
    if on_path:
        return os.path.dirname(on_path)
    raise ServerError(
        "no PostgreSQL server binaries: neither /usr/lib/postgresql/*/bin nor initdb on "
        "PATH; run .ci/postgres.sh (as root) to install them, or set RUNLIFE_PG_DSN"
    )


def _version_key(path: str) -> tuple[int, ...]:
    version = path.split("/")[4]
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; anyone else runs them directly.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _run(argv: list[str], cwd: str) -> str:
    proc = subprocess.run(
        _as_server_user(argv), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        raise ServerError(
            f"{' '.join(argv)} exited with {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc.stdout + proc.stderr


def _wait_ready(port: int, log: str, deadline: float) -> None:
    # A TCP connect proves the postmaster listens; pg_isready then proves it
    # accepts logins (it may still be starting up).
    bindir = _bindir()
    while time.monotonic() < deadline:
        probe = subprocess.run(
            [
                f"{bindir}/pg_isready",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-d",
                DATABASE,
                "-U",
                USER,
            ],
            check=False,
            capture_output=True,
        )
        if probe.returncode == 0:
            return
        time.sleep(0.05)
    raise ServerError(f"the server on port {port} did not become ready\n--- log\n{_tail(log)}")


def _tail(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-4000:]
    except OSError as exc:
        return f"(no log: {exc})"


class Server:
    """A running throwaway server that a test may stop and start again, on the same
    port and data directory (an outage of the database, for real)."""

    def __init__(self, root: str, port: int, options: str, *, unix_socket: bool) -> None:
        self.root = root
        self.data = os.path.join(root, "data")
        self.log = os.path.join(root, "server.log")
        self.port = port
        self._options = options
        if unix_socket:
            self.dsn = f"postgresql://{USER}@/{DATABASE}?host={root}&port={port}"
        else:
            self.dsn = f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"

    def start(self) -> None:
        """Start the server and return once it accepts logins."""
        argv = [f"{_bindir()}/pg_ctl", "-D", self.data, "-l", self.log, "-o", self._options]
        _run([*argv, "-w", "-t", "60", "start"], cwd=self.root)
        _wait_ready(self.port, self.log, time.monotonic() + 30)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m mode``: ``fast`` ends every session and
        checkpoints, ``immediate`` aborts) and return once it is down."""
        _run([f"{_bindir()}/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"], cwd=self.root)

    def tail(self) -> str:
        """The end of the server's log."""
        return _tail(self.log)


@contextlib.contextmanager
def throwaway_server(*, max_connections: int = 200, unix_socket: bool = False) -> Iterator[str]:
    """Start a fresh PostgreSQL server and yield its DSN; stop and delete it at exit.

    With *unix_socket* the DSN connects through the server's Unix-domain socket
    (cheaper than loopback TCP, for benchmarks of a store on the database's host).

    The server has one database (``runlife``) owned by user ``runlife``, trusted on
    127.0.0.1 (it listens nowhere else), with ``fsync``, ``synchronous_commit`` and
    ``full_page_writes`` off: a crash of the test machine loses the test database,
    which is fine.

    Raises:
        ServerError: with initdb's, pg_ctl's or the server log's output.
    """
    with stoppable_server(max_connections=max_connections, unix_socket=unix_socket) as server:
        yield server.dsn


@contextlib.contextmanager
def stoppable_server(*, max_connections: int = 200, unix_socket: bool = False) -> Iterator[Server]:
    """`throwaway_server`, yielding the `Server` itself: its DSN, and the means to
    stop and start it again. It is stopped (if running) and deleted at exit."""
    bindir = _bindir()
    root = tempfile.mkdtemp(prefix="runlife-pg-")
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data = os.path.join(root, "data")
    log = os.path.join(root, "server.log")
    port = _free_port()
    started = False
    try:
        _run(
            [
                f"{bindir}/initdb",
                "-D",
                data,
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=root,
        )
        options = " ".join(
            f"-c {setting}"
            for setting in (
                "listen_addresses=127.0.0.1",
                f"port={port}",
                f"unix_socket_directories={root}",
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
                f"max_connections={max_connections}",
                "shared_buffers=128MB",
            )
        )
        server = Server(root, port, options, unix_socket=unix_socket)
        started = True  # (a server that failed to start is stopped all the same)
        server.start()
        _run([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
             cwd=root)  # fmt: skip
        _wait_ready(port, log, time.monotonic() + 30)
        yield server
    except ServerError as exc:
        if started:
            raise ServerError(f"{exc}\n--- server log\n{_tail(log)}") from None
        raise
    finally:
        if started:
            # Stopped already by the test, perhaps: then pg_ctl fails, harmlessly.
            with contextlib.suppress(ServerError, subprocess.TimeoutExpired):
                _run([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], cwd=root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """The DSN of a PostgreSQL database the tests may fill and empty.

    ``RUNLIFE_PG_DSN`` when set; else a throwaway server for the session. Fails
    (never skips) when no server can be started.
    """
    dsn = os.environ.get("RUNLIFE_PG_DSN")
    if dsn:
        yield dsn
        return
    try:
        server = throwaway_server()
        dsn = server.__enter__()
    except ServerError as exc:
        pytest.fail(f"cannot start a throwaway PostgreSQL server:\n{exc}", pytrace=False)
    try:
        yield dsn
    finally:
        server.__exit__(None, None, None)


def schema_url(dsn: str, schema: str) -> str:
    """*dsn* with its tables in *schema* (libpq's ``options``, URL-encoded), its
    connections named after it (``application_name``)."""
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}&application_name={schema}"


@contextlib.contextmanager
def fresh_schema(dsn: str) -> Iterator[str]:
    """The URL of a fresh, empty schema on the server at *dsn*, dropped afterwards."""
    import psycopg  # noqa: TID251 - a schema per test, which no store API makes

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_url(dsn, schema)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
