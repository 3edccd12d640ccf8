"""The Redis flags of the deploy files, given to a real redis-server: it accepts them and
ends up with seed 001's bounds (2 GB, allkeys-lru) and no persistence."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import redis
import yaml

from tests.deploy.variables import DEPLOY
from tests.waiting import wait_for


def _compose_flags() -> list[str]:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    command = compose["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    return command[1:]


def test_redis_server_runs_with_the_compose_flags(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (`make redis` or apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, *_compose_flags(), "--port", str(port), "--bind",
                             "127.0.0.1", "--dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    try:
        def answers() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"redis-server refused the flags:\n{proc.stdout.read()!r}")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(answers, 10, "redis-server answering PING")
        config = client.config_get("*")
        assert int(config["maxmemory"]) == 2 * 1024**3
        assert config["maxmemory-policy"] == "allkeys-lru"
        assert config["save"] == "" and config["appendonly"] == "no"
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
