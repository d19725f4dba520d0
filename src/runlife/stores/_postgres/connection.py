"""Where the store meets the server: its URL, its connections, and the drivers that
run a transaction on them.

A transaction is written once, as a generator (a `Program`) that yields
``(sql, params)`` statements and receives each statement's rows. `drive_async`
runs it on a psycopg ``AsyncConnection`` (asyncio: no thread hop); `drive_sync`
on a sync ``Connection``, in a worker thread (trio, where psycopg's async API does
not run). Whatever interrupts a program — a failed statement, an error of the
program's own Python code (decoding a row, say), a cancellation — its open
transaction is rolled back before the error goes on; a connection whose state is
no longer known is closed, so that its pool replaces it instead of lending it out
again. A program's results therefore never outlive a transaction that did not
commit.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any, Final, TypeVar

import anyio
import attrs
import psycopg  # noqa: TID251 - the PostgreSQL store is where psycopg lives
import psycopg_pool
from psycopg.adapt import AdaptersMap  # noqa: TID251
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: TID251
from psycopg.pq import TransactionStatus  # noqa: TID251
from psycopg.types.string import TextLoader  # noqa: TID251

from runlife._core.values import is_text
from runlife._threads import run_sync
from runlife.exceptions import InvalidValue, RunlifeError, StoreError
from runlife.stores._batching import on_asyncio
from runlife.stores._postgres.errors import DRIVER_ERRORS, store_error

__all__ = (
    "BEGIN",
    "COMMIT",
    "Conn",
    "Connections",
    "Listener",
    "Program",
    "Rows",
    "Target",
    "drive_async",
    "drive_sync",
    "parse_url",
    "redact",
)

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]
AConn = psycopg.AsyncConnection[tuple[Any, ...]]
Rows = list[tuple[Any, ...]]
Stmt = tuple[str, Sequence[Any] | None]
Program = Generator[Stmt, Rows, T]
"""A transaction, written once for both drivers: it yields statements, gets rows."""

BEGIN: Final[Stmt] = ("BEGIN", None)
COMMIT: Final[Stmt] = ("COMMIT", None)

DEFAULT_CONNECT_TIMEOUT: Final = 10
"""Seconds to wait for a server to answer a new connection, unless the URL says."""
POOL_TIMEOUT: Final = 30.0
"""Seconds a call waits for a pooled connection before it fails."""

_IDLE: Final = TransactionStatus.IDLE
_OPEN: Final = (TransactionStatus.INTRANS, TransactionStatus.INERROR)
_SOCKET: Final = "(the default Unix socket)"
_ACCEPTED: Final = (
    "a PostgreSQL URL such as postgresql://user:password@host:5432/dbname "
    "(or postgres://...; query options as libpq knows them, e.g. ?connect_timeout=10)"
)

# JSON comes back as text: the store decodes it (rows.py), so that it controls
# which copies it hands out.
_ADAPTERS: Final = AdaptersMap(psycopg.adapters)
_ADAPTERS.register_loader("json", TextLoader)
_ADAPTERS.register_loader("jsonb", TextLoader)


# -- the URL ---------------------------------------------------------------------------


def redact(url: str) -> str:
    """*url* without its password (in the user part or as a ``password=`` option),
    however malformed *url* is otherwise.

    >>> redact("postgresql://app:s3cret@db.example:5432/app?password=x&sslmode=require")
    'postgresql://app@db.example:5432/app?password=***&sslmode=require'
    """
    head, sep, rest = url.partition("://")
    if sep:
        cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        authority, tail = rest[:cut], rest[cut:]
        if "@" in authority:
            userinfo, _, hostport = authority.rpartition("@")
            authority = f"{userinfo.partition(':')[0]}@{hostport}"
        url = f"{head}{sep}{authority}{tail}"
    parts = url.split("?", 1)
    if len(parts) == 2:
        query = "&".join(
            "password=***" if p.lower().startswith("password=") else p for p in parts[1].split("&")
        )
        url = f"{parts[0]}?{query}"
    return url


@attrs.frozen
class Target:
    """A parsed store URL: what libpq is given, and what may be shown of it."""

    dsn: str = attrs.field(repr=False)
    """The connection string handed to libpq (with its password)."""
    url: str
    """The URL without its password."""
    host: str
    port: str
    dbname: str
    user: str
    connect_timeout: float

    def describe(self) -> str:
        """Where connections go, for messages: host, port, database and user."""
        return f"host {self.host} port {self.port}, database {self.dbname!r}, user {self.user!r}"


def parse_url(url: object) -> Target:
    """Check a store URL and read what a connection will use.

    Raises:
        InvalidValue: *url* is not a PostgreSQL URL libpq accepts (the error
            shows it without its password, and what is accepted).

    >>> target = parse_url("postgresql://app:s3cret@db.example/app")
    >>> target.url, target.connect_timeout
    ('postgresql://app@db.example/app', 10.0)
    >>> target.describe()
    "host db.example port 5432, database 'app', user 'app'"
    """
    if not isinstance(url, str):
        raise InvalidValue("url", url, _ACCEPTED)
    shown = redact(url)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("postgresql", "postgres") or not is_text(url):
        raise InvalidValue("url", shown, _ACCEPTED)
    dsn = f"{scheme.lower()}://{rest}"
    try:
        params = conninfo_to_dict(dsn)
    except (psycopg.Error, ValueError, UnicodeError) as exc:
        said = str(exc).strip().replace(url, shown).replace(dsn, redact(dsn))
        raise InvalidValue("url", shown, f"{_ACCEPTED}; libpq says: {said}") from None
    for port in str(params.get("port") or "").split(","):
        if port and not port.strip().isdigit():
            raise InvalidValue("url", shown, f"{_ACCEPTED}; the port must be a number")
    timeout = params.get("connect_timeout")
    if timeout is None:
        timeout = os.environ.get("PGCONNECT_TIMEOUT") or DEFAULT_CONNECT_TIMEOUT
        dsn = make_conninfo(dsn, connect_timeout=timeout)
    try:
        seconds = float(int(str(timeout).strip()))
    except ValueError:
        raise InvalidValue(
            "url", shown, f"{_ACCEPTED}; connect_timeout must be a whole number of seconds"
        ) from None
    defaults = _defaults()
    user = str(params.get("user") or defaults.get("user") or "(the OS user)")
    return Target(
        dsn=dsn,
        url=shown,
        host=str(params.get("host") or params.get("hostaddr") or defaults.get("host") or _SOCKET),
        port=str(params.get("port") or defaults.get("port") or "5432"),
        dbname=str(params.get("dbname") or defaults.get("dbname") or user),
        user=user,
        connect_timeout=seconds,
    )


def _defaults() -> dict[str, str]:
    # libpq's defaults, environment (PGHOST, PGUSER, ...) included.
    try:
        options = psycopg.pq.Conninfo.get_defaults()
    except psycopg.Error:  # pragma: no cover - libpq always has defaults
        return {}
    return {o.keyword.decode(): o.val.decode() for o in options if o.val is not None}


# -- the drivers -----------------------------------------------------------------------


def drive_sync(conn: Conn, program: Program[T]) -> T:
    """Run *program* on *conn* (blocking); see the module for what a failure does."""
    try:
        stmt = next(program)
        while True:
            query, params = stmt
            cur = conn.execute(query, params)
            stmt = program.send(cur.fetchall() if _has_rows(cur) else [])
    except StopIteration as stop:
        value: T = stop.value
    except BaseException:
        _abort_sync(conn)
        raise
    if conn.pgconn.transaction_status != _IDLE:
        _abort_sync(conn)
        raise StoreError("a store transaction ended without COMMIT; it was rolled back")
    return value


async def drive_async(conn: AConn, program: Program[T]) -> T:
    """Run *program* on *conn*; see the module for what a failure does."""
    try:
        stmt = next(program)
        while True:
            query, params = stmt
            cur = await conn.execute(query, params)
            stmt = program.send(await cur.fetchall() if _has_rows(cur) else [])
    except StopIteration as stop:
        value: T = stop.value
    except BaseException:
        await _abort_async(conn)
        raise
    if conn.pgconn.transaction_status != _IDLE:
        await _abort_async(conn)
        raise StoreError("a store transaction ended without COMMIT; it was rolled back")
    return value


def _has_rows(cur: psycopg.Cursor[Any] | psycopg.AsyncCursor[Any]) -> bool:
    # Cheaper than cur.description, which builds a Column object per column.
    result = cur.pgresult
    return result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK


def _abort_sync(conn: Conn) -> None:
    """Roll back what *conn* has open; close it if its state is not known after that.

    A rollback that fails only closes the connection: the error that interrupted
    the transaction is the one that goes on.
    """
    if conn.pgconn.transaction_status in _OPEN:
        try:
            conn.rollback()
        except Exception:
            conn.close()
    if conn.pgconn.transaction_status != _IDLE:
        conn.close()


async def _abort_async(conn: AConn) -> None:
    """`_abort_sync` on an async connection, shielded from anyio's cancellation; a
    plain asyncio cancellation that cuts the rollback closes the connection (and
    goes on)."""
    if conn.pgconn.transaction_status in _OPEN:
        with anyio.CancelScope(shield=True):
            try:
                await conn.rollback()
            except Exception:
                conn.pgconn.finish()
            except BaseException:
                conn.pgconn.finish()
                raise
    if conn.pgconn.transaction_status != _IDLE:
        # Still busy (a cancelled statement the server did not stop) or broken:
        # closed, its pool discards it.
        conn.pgconn.finish()


# -- the pools -------------------------------------------------------------------------


def _configure(conn: Conn) -> None:
    conn.execute("SET TIME ZONE 'UTC'")


async def _aconfigure(conn: AConn) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


class Connections:
    """The connections of one store: a pool per async backend, opened on first use.

    On asyncio an ``AsyncConnectionPool`` (it belongs to the event loop that
    opened it); on trio a ``ConnectionPool`` used from worker threads. `run`
    runs a transaction on either and maps driver errors to `StoreError`.
    """

    def __init__(self, target: Target, *, min_size: int, max_size: int) -> None:
        self.target = target
        self._min_size = min_size
        self._max_size = max_size
        self._lock = threading.Lock()
        self._closed = False
        self._pool: psycopg_pool.ConnectionPool[Conn] | None = None
        self._apool: psycopg_pool.AsyncConnectionPool[AConn] | None = None
        self._apool_lock: anyio.Lock | None = None

    # -- running transactions --------------------------------------------------------

    async def run(self, fn: Callable[..., Program[T]], *args: Any) -> T:
        """Run the transaction ``fn(*args)`` on a pooled connection.

        anyio's (and trio's) cancellation waits for the transaction (the call is
        shielded); a plain asyncio cancellation of a statement is passed to the
        server by psycopg, and the transaction is rolled back (see the module).
        """
        try:
            if on_asyncio():
                pool = self._apool or await self._async_pool()
                with anyio.CancelScope(shield=True):
                    conn = await pool.getconn()
                    try:
                        value = await drive_async(conn, fn(*args))
                    finally:
                        await pool.putconn(conn)
            else:
                with anyio.CancelScope(shield=True):
                    value = await run_sync(self._in_thread, fn, args)
        except RunlifeError:
            raise
        except DRIVER_ERRORS as exc:
            raise store_error(exc, self.target) from exc
        return value

    def _in_thread(self, fn: Callable[..., Program[T]], args: tuple[Any, ...]) -> T:
        pool = self._pool or self._sync_pool()
        conn = pool.getconn()
        try:
            return drive_sync(conn, fn(*args))
        finally:
            pool.putconn(conn)

    def connect(self) -> Conn:
        """A new connection outside the pools (blocking): for migrations and LISTEN."""
        try:
            return psycopg.connect(self.target.dsn, autocommit=True)
        except DRIVER_ERRORS as exc:
            raise store_error(exc, self.target, connecting=True) from exc

    # -- opening and closing ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"<PostgresStore {self.target.url}> is closed")

    def _sync_pool(self) -> psycopg_pool.ConnectionPool[Conn]:
        with self._lock:
            self._check_open()
            if self._pool is None:
                pool: psycopg_pool.ConnectionPool[Conn] = psycopg_pool.ConnectionPool(
                    self.target.dsn,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    open=False,
                    configure=_configure,
                    kwargs={"autocommit": True, "context": _ADAPTERS},
                    timeout=POOL_TIMEOUT,
                )
                try:
                    pool.open(wait=True, timeout=POOL_TIMEOUT)
                except BaseException as exc:
                    pool.close()
                    if isinstance(exc, psycopg_pool.PoolTimeout):
                        raise store_error(exc, self.target, connecting=True) from exc
                    raise
                self._pool = pool
            return self._pool

    async def _async_pool(self) -> psycopg_pool.AsyncConnectionPool[AConn]:
        if self._apool_lock is None:
            self._apool_lock = anyio.Lock()
        async with self._apool_lock:
            self._check_open()
            if self._apool is None:
                pool: psycopg_pool.AsyncConnectionPool[AConn] = psycopg_pool.AsyncConnectionPool(
                    self.target.dsn,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    open=False,
                    configure=_aconfigure,
                    kwargs={"autocommit": True, "context": _ADAPTERS},
                    timeout=POOL_TIMEOUT,
                )
                try:
                    await pool.open(wait=True, timeout=POOL_TIMEOUT)
                except BaseException as exc:
                    with anyio.CancelScope(shield=True):
                        await pool.close()
                    if isinstance(exc, psycopg_pool.PoolTimeout):
                        raise store_error(exc, self.target, connecting=True) from exc
                    raise
                self._apool = pool
            return self._apool

    async def open(self) -> None:
        """Open the pool of the running backend (the first connections included)."""
        try:
            if on_asyncio():
                await self._async_pool()
            else:
                await run_sync(self._sync_pool)
        except RunlifeError:
            raise
        except DRIVER_ERRORS as exc:
            raise store_error(exc, self.target, connecting=True) from exc

    async def close(self) -> None:
        """Close both pools (waiting for the connections lent out)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        apool, self._apool = self._apool, None
        if apool is not None:
            await apool.close()
        if pool is not None:
            await run_sync(pool.close)


class Listener:
    """One connection that LISTENs for the store's NOTIFY, shared by every waiter.

    `listen` blocks (in a worker thread) for at most its timeout; waiters take
    turns on the connection, and whoever hears a notification counts it in
    `wakeups`, which every waiter watches.

    It listens from `start` (the store's opening) on, so that a write of another
    process between the store's first read and its first wait is heard. A
    connection made again after one broke counts as a wakeup: what was sent
    while none listened is not known.
    """

    def __init__(self, connections: Connections, channel: str) -> None:
        self._db = connections
        self._channel = channel
        self._lock = threading.Lock()
        self._conn: Conn | None = None
        self._started = False
        self._closed = False
        self.wakeups = 0

    def start(self) -> None:
        """Listen from now on (blocking)."""
        with self._lock:
            if self._conn is None and not self._closed:
                self._connect()

    def _connect(self) -> None:
        try:
            conn = self._db.connect()
            conn.execute(f"LISTEN {self._channel}")
        except RunlifeError:
            raise
        except DRIVER_ERRORS as exc:
            raise store_error(exc, self._db.target) from exc
        self._conn = conn
        if self._started:
            self.wakeups += 1
        self._started = True

    def listen(self, timeout: float, seen: int) -> None:
        """Wait up to *timeout* seconds for a notification, unless `wakeups` is no
        longer *seen* (blocking)."""
        with self._lock:
            if self.wakeups != seen or self._closed:
                return
            if self._conn is None:
                self._connect()
                if self.wakeups != seen:
                    return
            assert self._conn is not None
            try:
                # Notifications that arrive between two waits wait in the socket.
                for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                    self.wakeups += 1
            except RunlifeError:
                raise
            except DRIVER_ERRORS as exc:
                broken, self._conn = self._conn, None
                if broken is not None:
                    broken.close()
                raise store_error(exc, self._db.target) from exc

    @property
    def closed(self) -> bool:
        """Whether the listener was closed (its store is)."""
        return self._closed

    def close(self) -> None:
        """Close the listening connection (blocking); waiting is over for good."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
