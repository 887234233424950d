"""Shared by the benchmarks: a lean HTTP/1.1 load generator, server CPU sampling, subprocess helpers.

The load generator writes pre-built request bytes on N keep-alive connections and reads the responses
(Content-Length framed, as starlette always answers). It costs a few tens of microseconds per request,
far less than any server measured here, so the server is the bottleneck; each benchmark also prints the
server's CPU use during the run to show it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """utime + stime of a process (its threads included), or of one of its threads, in seconds."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port}")


def build_request(method: str, path: str, netloc: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1"]
    names = {k.lower() for k in headers}
    if "host" not in names:
        lines.append(f"Host: {netloc}")
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class LoadResult:
    elapsed: float
    statuses: list[int]  # per request, in input order; 0 for a connection failure
    latencies: list[float] = field(default_factory=list)
    client_cpu: float = 0.0
    server_cpu: float | None = None
    server_main_thread_cpu: float | None = None

    @property
    def rate(self) -> float:
        return len(self.statuses) / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        return statistics.quantiles(self.latencies, n=100)[int(q) - 1] if len(self.latencies) > 1 else self.latencies[0]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    lower = head.lower()
    i = lower.find(b"\r\ncontent-length:")
    if i >= 0:
        j = lower.find(b"\r\n", i + 2)
        length = int(lower[i + 17:j])
    elif b"transfer-encoding: chunked" in lower:
        raise RuntimeError("chunked responses are not supported by this load generator")
    if length:
        await reader.readexactly(length)
    return status


async def run_load(host: str, port: int, requests: list[bytes], connections: int, *,
                   server_pid: int | None = None) -> LoadResult:
    """Send every request once, `connections` at a time on keep-alive connections."""
    statuses = [0] * len(requests)
    latencies = [0.0] * len(requests)
    next_index = 0

    async def connection() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while next_index < len(requests):
                i = next_index
                next_index += 1
                t = time.perf_counter()
                writer.write(requests[i])
                try:
                    statuses[i] = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    statuses[i] = 0
                latencies[i] = time.perf_counter() - t
        finally:
            writer.close()

    cpu0 = cpu_seconds(server_pid) if server_pid else None
    main0 = cpu_seconds(server_pid, server_pid) if server_pid else None
    pcpu0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(min(connections, len(requests)))))
    elapsed = time.perf_counter() - t0
    result = LoadResult(elapsed, statuses, latencies, client_cpu=(time.process_time() - pcpu0) / elapsed)
    if server_pid:
        result.server_cpu = (cpu_seconds(server_pid) - cpu0) / elapsed
        result.server_main_thread_cpu = (cpu_seconds(server_pid, server_pid) - main0) / elapsed
    return result


def start_process(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            env=env or os.environ.copy(), start_new_session=True)


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
