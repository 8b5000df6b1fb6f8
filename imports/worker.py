"""The bounded parse worker (issue 17): untrusted spreadsheets are opened only in a separate process.

calamine is Rust: a hostile file can make it abort the process (``memory allocation of 549755813888 bytes
failed``) or panic (pyo3's ``PanicException`` is a ``BaseException``), and openpyxl or calamine can take
gigabytes and minutes on a small file. So every path that reads a spreadsheet (``imports.gate``) hands the
bytes to a small pool of pre-started worker processes, each run under ``RLIMIT_AS`` (``parse_memory_bytes``)
with a wall-clock limit per file (``parse_seconds``): an abort, a panic, a hang or a blow-up costs that one
request a 4xx in the envelope, and the worker is killed and replaced — never the server.

Protocol: length-prefixed pickle frames on two dedicated pipes. A ledger read streams its checked 转出/转入
chunks back as the reader hands them to its sink, so the caller's writer thread stores them while the worker
checks the rest (B1). Workers are started lazily, kept warm (modules and the catalogue loaded) and reused.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nofei.errors import InputRejected, NofeiError, TooLarge, Unavailable
from nofei.problems import Problem

_HEADER = struct.Struct("<Q")
_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True, slots=True)
class ParseBounds:
    """The worker's limits for one file (from ``ReadLimits``, i.e. ``api/config.py``)."""

    memory_bytes: int = 2 * 1024 ** 3
    seconds: float = 60.0
    workers: int = 2


class WorkerFailed(Exception):
    """The worker died, timed out or broke the protocol (internal: mapped to a NofeiError)."""


def unreadable(detail: str) -> InputRejected:
    zh = "文件无法读取（解析时出错），请用 Excel/WPS 另存为 .xlsx 后重新上传"
    return InputRejected(f"{zh} ({detail})", code="unreadable_file",
                         problems=[Problem(code="unreadable_file", message=zh, message_en=f"the file cannot be read: {detail}")])


def too_costly(code: str, zh: str, en: str) -> TooLarge:
    return TooLarge(f"{zh} ({en})", code=code, problems=[Problem(code=code, message=zh, message_en=en)])


def failure(e: BaseException, memory: int) -> NofeiError:
    """What a reader's exception answers: its own NofeiError, else a 413 (memory) or a 422 ``unreadable_file``
    (a panic, a recursion, any other library error). The worker and the gate's pre-scan share it."""
    if isinstance(e, NofeiError):
        return e
    if isinstance(e, MemoryError):
        return too_costly("parse_memory_exceeded", "文件解析所需内存超过上限",
                          f"reading the file needs more than {memory} bytes")
    if isinstance(e, RecursionError):
        return unreadable("nesting too deep")
    return unreadable(type(e).__name__)


# --- framing ------------------------------------------------------------------------------------------------
def _write(fd: int, obj: Any) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(body)) + body)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    parts: list[bytes] = []
    while n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        b = os.read(fd, min(n, 1 << 20))
        if not b:
            raise EOFError
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


def _read(fd: int, deadline: float | None = None) -> Any:
    (n,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return pickle.loads(_read_exact(fd, n, deadline))  # noqa: S301 - frames between our own processes


# --- the parent side ----------------------------------------------------------------------------------------
class _Worker:
    def __init__(self) -> None:
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = _ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["ARROW_DEFAULT_MEMORY_POOL"] = "system"  # jemalloc/mimalloc reserve GBs of address space
        env["MALLOC_ARENA_MAX"] = "2"
        argv = [sys.executable, "-m", "imports.worker", str(req_r), str(res_w)]
        self.proc = subprocess.Popen(argv, pass_fds=(req_r, res_w), env=env,  # noqa: S603 - our own argv
                                     stdin=subprocess.DEVNULL, close_fds=True)
        os.close(req_r)
        os.close(res_w)
        self.req, self.res = req_w, res_r
        self.ready = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, deadline: float) -> None:
        if not self.ready:
            if _read(self.res, deadline) != ("ready",):
                raise WorkerFailed("bad greeting")
            self.ready = True

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        for fd in (self.req, self.res):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


class Abort:
    """Lets another thread stop a task mid-way (``ParsePool.run``): its worker is killed, so the run ends at
    once with the worker's failure and the worker is replaced. The ledger gate fires it when its concurrent
    pre-scan refuses the file (B1)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self.fired = False
        self._killed = False

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            self._kill()

    def _kill(self) -> None:
        if self._worker is not None and not self._killed:
            self._killed = True
            self._worker.proc.kill()  # the reading thread sees EOF and drops it

    def _attach(self, w: _Worker) -> None:
        with self._lock:
            self._worker = w
            if self.fired:
                self._kill()

    def _detach(self) -> bool:
        """True when the worker was killed: it must not go back to the pool. Fired after its task ended,
        nothing happens to it."""
        with self._lock:
            self._worker = None
            return self._killed


class ParsePool:
    """A few warm worker processes; ``run`` hands one a task and waits for it within the bounds."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._free = threading.Semaphore(self.size)
        self._starting: list[_Worker] = []

    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in (*self._idle, *self._starting)]

    def _take(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._starting:
                return self._starting.pop()
        return _Worker()

    def _give_back(self, w: _Worker) -> None:
        with self._lock:
            keep = len(self._idle) + len(self._starting) < self.size
            if keep:
                self._idle.append(w)
        if not keep:  # a replacement raced ahead: never more than ``size`` workers
            w.kill()

    def _replace_soon(self) -> None:
        """Start a replacement now so the next file finds a warm worker."""
        with self._lock:
            if len(self._idle) + len(self._starting) < self.size:
                self._starting.append(_Worker())

    def warm(self) -> None:
        self._replace_soon()

    def run(self, task: str, args: tuple[Any, ...], bounds: ParseBounds,
            on_message: Callable[[Any], Any] | None = None, abort: Abort | None = None) -> Any:
        """Run ``task`` in a worker; messages other than the result go to ``on_message`` (its return value,
        if not ``None``, is sent back). The task's own NofeiError is re-raised here. ``abort`` lets another
        thread kill the worker mid-task (the run then raises as for a dead worker)."""
        deadline = time.monotonic() + bounds.seconds
        if not self._free.acquire(timeout=bounds.seconds):
            raise Unavailable("解析服务繁忙，请稍后重试 (all parse workers are busy; retry)", code="parse_busy")
        w: _Worker | None = None
        try:
            w = self._take()
            if abort is not None:
                abort._attach(w)
            try:
                result = self._exchange(w, task, args, bounds, deadline, on_message)
            except TimeoutError:
                self._drop(w)
                w = None
                raise too_costly("parse_timeout", f"文件解析超过 {bounds.seconds:g} 秒上限",
                                 f"reading the file took over {bounds.seconds:g} s") from None
            except (EOFError, OSError, pickle.UnpicklingError, WorkerFailed) as e:
                rc = self._drop(w)
                w = None
                raise unreadable(f"the parser stopped ({type(e).__name__}, exit {rc})") from None
            except BaseException:
                self._drop(w)  # mid-task: its state is unknown
                w = None
                raise
            if abort is None or not abort._detach():
                self._give_back(w)
                w = None
            if isinstance(result, BaseException):
                raise result
            return result
        finally:
            if abort is not None:
                abort._detach()
            if w is not None:
                self._drop(w)
            self._free.release()

    @staticmethod
    def _exchange(w: _Worker, task: str, args: tuple[Any, ...], bounds: ParseBounds, deadline: float,
                  on_message: Callable[[Any], Any] | None) -> Any:
        """Send the task and relay the worker's messages until its result (a value or a NofeiError)."""
        w.wait_ready(deadline)
        _write(w.req, ("task", task, args, bounds.memory_bytes))
        while True:
            msg = _read(w.res, deadline)
            if msg[0] in ("ok", "error"):
                return msg[1]
            reply = on_message(msg) if on_message is not None else None
            if reply is not None:
                _write(w.req, reply)

    def _drop(self, w: _Worker) -> int | None:
        w.kill()
        rc = w.proc.returncode
        threading.Thread(target=self._replace_soon, daemon=True).start()
        return rc

    def close(self) -> None:
        with self._lock:
            ws, self._idle, self._starting = [*self._idle, *self._starting], [], []
        for w in ws:
            w.kill()


_pool: ParsePool | None = None
_pool_lock = threading.Lock()


def pool(size: int = 2) -> ParsePool:
    """The process's pool (started lazily; ``size`` is taken from the first caller)."""
    global _pool
    with _pool_lock:
        if _pool is None or (_pool.size != max(1, size) and not _pool.pids()):
            _pool = ParsePool(size)
        return _pool


# --- the worker side ----------------------------------------------------------------------------------------
def _set_memory(limit: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))


def _serve(req: int, res: int) -> None:
    import resource

    from imports import tasks

    tasks.TASKS["warm"](send=None, recv=None)
    _write(res, ("ready",))
    while True:
        try:
            msg = _read(req)
        except EOFError:
            return
        _, task, args, memory = msg
        fn = tasks.TASKS[task]
        try:
            _set_memory(memory)
            result = fn(*args, send=lambda m: _write(res, m), recv=lambda: _read(req))
            out: tuple[Any, ...] = ("ok", result)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - pyo3's PanicException is a BaseException
            out = ("error", failure(e, memory))
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        try:
            _write(res, out)
        except (pickle.PicklingError, TypeError, AttributeError):
            _write(res, ("error", unreadable("unpicklable result")))


def main(argv: list[str]) -> None:
    req, res = int(argv[1]), int(argv[2])
    os.dup2(2, 1)  # a library's print must not reach the protocol pipe
    _serve(req, res)


if __name__ == "__main__":
    main(sys.argv)
