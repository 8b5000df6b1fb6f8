"""A real ``nofei serve`` (waitress, a child process) for the hardening tests of issue 17, on one of this
run's ports (tests/ports.py) and a SQLite file (or the suite's PostgreSQL database when NOFEI_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.ports import block

ROOT = Path(__file__).resolve().parents[2]
PORTS = block(2)  # this worker's ten ports for the hardening servers (tests/ports.py)


def free_port() -> int:
    """A free port of this worker's block (tests/ports.py: no other run or worker uses it)."""
    for p in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return p
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


class Served:
    """One ``nofei serve`` process; ``request`` never follows redirects and keeps no cookies."""

    def __init__(self, database_url: str, tmp: Path, **env: str) -> None:
        self.url = database_url
        self.env = {**os.environ, "NOFEI_DATABASE_URL": database_url, "NOFEI_LOG_LEVEL": "WARNING",
                    "NOFEI_SECRET_KEY": "test-secret-key-shared-by-the-processes", **env}
        self.env.pop("NOFEI_TEST_DATABASE_URL", None)
        self.port = free_port()
        self.log = (tmp / f"serve-{self.port}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(self.port),
                                      "--threads", "4"], env=self.env, cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        for _ in range(300):
            if self.proc.poll() is not None:
                break
            try:
                if self.request("GET", "/api/v1/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nofei serve did not start")

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "api.cli", *args], env=self.env, cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout

    def token(self, role: str = "admin", *extra: str) -> str:
        return self.cli("token", "create", "--role", role, *extra).strip().splitlines()[-1]

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                form: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        body = urlencode(form) if form is not None else None
        h = dict(headers or {})
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        c.close()
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """``serve(**env)`` starts a ``nofei serve`` on the test's database; all are stopped at the end."""
    started: list[Served] = []

    def start(**env: str) -> Served:
        s = Served(database_url, tmp_path, **env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
