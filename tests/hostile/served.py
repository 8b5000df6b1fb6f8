"""A real ``nofei serve`` (waitress) in a subprocess for the hostile-file tests: one of this
run's ports (tests/ports.py; else any free port), SQLite, an admin token, and the server's and its workers' memory."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.ports import block

NOFEI = [sys.executable, "-m", "api.cli"]


def free_port() -> int:
    for port in block(0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return out


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 120, chunked: bool = False) -> Reply:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        t = time.monotonic()
        try:
            if chunked:
                c.putrequest(method, path)
                for k, v in {**h, "Transfer-Encoding": "chunked"}.items():
                    c.putheader(k, v)
                c.endheaders()
                step = 1 << 20
                try:
                    for i in range(0, len(body or b""), step):
                        part = (body or b"")[i:i + step]
                        c.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    c.send(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server answered before reading all of it
            else:
                c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data, time.monotonic() - t)
        finally:
            c.close()

    def upload(self, path: str, data: bytes, filename: str = "x.xlsx", **kw: Any) -> Reply:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}, **kw)

    def health(self) -> int:
        return self.request("GET", "/api/v1/health", timeout=10).status

    def workers(self) -> list[int]:
        return children(self.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start(tmp: Path, **settings: Any) -> Server:
    root = Path(__file__).resolve().parents[2]
    db = f"sqlite:///{tmp / 'served.db'}"
    env = {**os.environ, "NOFEI_DATABASE_URL": db, "NOFEI_LOG_LEVEL": "WARNING", "PYTHONPATH": str(root),
           **{f"NOFEI_{k}": str(v) for k, v in settings.items()}}
    env.pop("NOFEI_TEST_DATABASE_URL", None)
    subprocess.run([*NOFEI, "db", "upgrade"], env=env, cwd=tmp, check=True, capture_output=True)
    out = subprocess.run([*NOFEI, "token", "create", "--role", "admin", "--name", "hostile"], env=env, cwd=tmp,
                         check=True, capture_output=True, text=True)
    token = out.stdout.strip().splitlines()[-1]
    for _attempt in range(3):
        port = free_port()
        log = tmp / f"serve-{port}.log"
        proc = subprocess.Popen([*NOFEI, "serve", "--port", str(port), "--threads", "4"], env=env, cwd=tmp,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)
        srv = Server(proc, port, token, log, env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if srv.health() == 200:
                    return srv
            except OSError:
                time.sleep(0.2)
        srv.stop()
    raise RuntimeError(f"nofei serve did not start: {log.read_text()[-2000:]}")
