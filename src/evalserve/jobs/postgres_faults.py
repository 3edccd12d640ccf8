"""Which PostgreSQL errors are storage faults, and the messages that say so.

A fault is what the same call may survive later: the server down, restarting or unreachable
(no connection within the pool's timeout, a connection lost mid-call: SQLSTATE class 08,
57P01-57P03), out of room (class 53: a full disk, memory, connections), an I/O failure (class
58), a read-only server (25006: a standby, a primary failing over), or a transaction another
one beat (40001, 40P01, 55P03). Each is `StorageFullError` (503); any other error is the call's
own. A URL or password is never in a message: the server is named by its redacted URL, and
psycopg's text goes through `redact_text`. A rejected login or a missing database is a wrong
`DATABASE_URL` (`ConfigurationError`), not something to wait out.
"""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout

from evalserve.errors import ConfigurationError, StorageFullError
from evalserve.redact import redact_text

__all__ = ["storage_fault", "configuration_fault"]

_BY_STATE = {
    "53100": "the disk holding the PostgreSQL database is full",
    "53200": "PostgreSQL is out of memory",
    "53300": "PostgreSQL has no connection slot left (max_connections)",
    "25006": "PostgreSQL is read-only (a standby, or a primary failing over)",
    "40001": "a concurrent transaction conflicted with this one",
    "40P01": "a concurrent transaction deadlocked with this one",
    "55P03": "another session holds a lock this one waited for",
}
#: What libpq says when the server refuses the login itself (its connect errors have no
#: SQLSTATE).
_REFUSED_LOGIN = ("authentication failed", "does not exist", "no pg_hba.conf entry")
_BY_CLASS = {
    "08": "the connection to PostgreSQL failed",
    "53": "PostgreSQL lacks the resources (disk, memory or connections)",
    "57": "PostgreSQL is shutting down, restarting or not accepting connections yet",
    "58": "PostgreSQL failed a read or write of its files",
}


def _detail(exc: BaseException) -> str:
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return redact_text(text)[:400]


def _reason(exc: BaseException, timeout: float, pool_size: int) -> str | None:
    if isinstance(exc, PoolTimeout):
        return (f"no connection to PostgreSQL within {timeout:g} s: the server is down or "
                f"unreachable, or all {pool_size} connections (DATABASE_POOL_SIZE) stayed busy")
    if not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate
    if state is None:
        # Client-side failures carry no SQLSTATE: refused, reset or closed connections.
        if isinstance(exc, psycopg.OperationalError):
            return "the connection to PostgreSQL was refused or lost"
        return None
    return _BY_STATE.get(state) or _BY_CLASS.get(state[:2])


def storage_fault(exc: BaseException, *, writing: bool, where: str, timeout: float,
                  pool_size: int) -> StorageFullError | None:
    """The `StorageFullError` for a storage fault (None for any other error). `where` is the
    server's redacted URL."""
    why = _reason(exc, timeout, pool_size)
    if why is None:
        return None
    detail = _detail(exc)
    if writing:
        return StorageFullError(
            f"the job store cannot write ({why}: {detail}); new jobs are refused until it "
            f"can: check the PostgreSQL server at {where}; running jobs pause and go on by "
            "themselves once it writes again")
    return StorageFullError(f"the job store cannot be read right now ({why}: {detail}; "
                            f"PostgreSQL at {where}); retry shortly")


def configuration_fault(exc: BaseException, where: str) -> ConfigurationError | None:
    """The `ConfigurationError` of a `DATABASE_URL` the server or libpq refuses: a rejected
    login, a missing database or role, no `pg_hba.conf` entry (SQLSTATE class 28 and 3D000;
    libpq reports them at connect time as text only), or a URL libpq cannot parse; None for
    anything else."""
    state = getattr(exc, "sqlstate", None) or ""
    text = str(exc)
    if not (state.startswith("28") or state == "3D000"
            or isinstance(exc, psycopg.ProgrammingError)
            or any(marker in text for marker in _REFUSED_LOGIN)):
        return None
    return ConfigurationError(
        f"PostgreSQL at {where} refused the job store ({_detail(exc)}): fix DATABASE_URL "
        "(its user, password and database must exist: create the database first)")
