"""A real PostgreSQL server (Debian's `postgresql` package) in a temporary directory, for tests.

`make test` installs it (apt); where `initdb` is absent the tests using it are skipped. The
cluster is created by `initdb` in a fresh directory, listens on 127.0.0.1 at a free port and
keeps its unix socket in that directory (nothing under `/var/run/postgresql` is touched). Its
superuser `evalserve` has a password, so the store is tested with credentials in its URL, as
deployments have them.

PostgreSQL refuses to run as root: under root the server runs as the `postgres` system user
(created by the package) through `runuser`, and its directory, under `/tmp` rather than pytest's
root-only temporary directory, belongs to that user.
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
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "benchmark_databases", "fresh_database", "postgres_bindir",
           "postgres_server_fixture"]

USER = "evalserve"
PASSWORD = "s3cret-evalserve-pw"
SYSTEM_USER = "postgres"


def postgres_bindir() -> Path | None:
    """The directory of Debian's newest PostgreSQL binaries (or of `initdb` on the PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster: `start`, `crash` (an immediate stop: no checkpoint, as if the
    machine lost power for the server), `stop`; `url(db)` is a `postgresql://` URL with the
    password; `create_database` makes an empty database for one test.

    `durable=False` (tests) turns off fsync: a crash of the server process (`crash`) still
    keeps every commit, since the WAL reaches the OS at commit; only an OS crash could lose
    some. `durable=True` (benchmarks) keeps PostgreSQL's defaults, as a deployment has them."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="evalserve-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.port = _free_port()
        self._as_system_user = os.geteuid() == 0
        if self._as_system_user:
            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def url(self, database: str = "postgres", password: str | None = PASSWORD) -> str:
        auth = f"{USER}:{password}" if password is not None else USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", SYSTEM_USER, "--"] if self._as_system_user else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}"
                               f"{done.stderr}\n{self._log_tail()}")
        return done

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-3000:]
        return ""

    def _initdb(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_system_user:
            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        # TCP connections need the password (scram); the socket in this directory is trusted.
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER,
                  f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        pwfile.unlink()

    def start(self) -> PostgresServer:
        """Start the server (creating the cluster the first time) and wait until it accepts
        connections (`pg_ctl -w`)."""
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=200")
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_path),
                  "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m <mode>`; `immediate` kills the server without a checkpoint."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def crash(self) -> None:
        self.stop("immediate")

    @property
    def running(self) -> bool:
        prefix = ["runuser", "-u", SYSTEM_USER, "--"] if self._as_system_user else []
        done = subprocess.run([*prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data),
                               "status"], capture_output=True, check=False)
        return done.returncode == 0

    def admin(self):  # noqa: ANN201 - psycopg.Connection
        """An autocommit superuser connection to the `postgres` database."""
        import psycopg

        return psycopg.connect(self.url("postgres"), autocommit=True)

    def create_database(self) -> str:
        """A new, empty database; its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template1 STRATEGY FILE_COPY')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def remove(self) -> None:
        """Stop the server if it runs and delete its directory."""
        if self.running:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_server_fixture() -> Iterator[PostgresServer]:
    """Body of a `postgres_server` fixture:
    `pytest.fixture(scope="session")(postgres_server_fixture)`."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (`make postgresql` or apt-get install "
                    "postgresql)")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@contextlib.contextmanager
def fresh_database(server: PostgresServer) -> Iterator[str]:
    """The URL of a new empty database on `server`, dropped afterwards."""
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        if server.running:
            server.drop_database(name)


@contextlib.contextmanager
def benchmark_databases(url: str | None = None) -> Iterator[Callable[[], str]]:
    """For the benchmarks: a function returning the URL of a new empty database, on the
    server at `url` or, when None, on a durable server started from Debian's binaries for the
    block (`RuntimeError` when PostgreSQL is not installed)."""
    if url is not None:
        import psycopg

        def on_given() -> str:
            name = f"bench_{uuid.uuid4().hex}"
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            return url.rsplit("/", 1)[0] + "/" + name

        yield on_given
        return
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: `make postgresql`, or pass "
                           "--database-url")
    server = PostgresServer(bindir, durable=True).start()
    try:
        yield lambda: server.url(server.create_database())
    finally:
        server.remove()
