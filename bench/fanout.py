"""Fan-out: one note from an account with 2,000 followers on 200 loopback hosts, against the pure cost of the
same deliveries. Prints figures; asserts nothing.

    .venv/bin/python bench/fanout.py [--quick]

Setup (not measured): an instance (subprocess, SQLite unless FN_TEST_BACKEND=postgres, `fedineighbour
serve`) on 127.0.0.2 whose user alice has 2,000 accepted remote followers, inserted directly into the
database: 10 on each of 200 hosts 127.0.1.1-200 (one port each, all served by ONE asyncio process of
trivial aiohttp inboxes answering 202, bench/sinks.py); the even hosts advertise a shared inbox, so a note
makes 100 shared + 100 x 10 personal = 1,100 deliveries.

Measured: the time from `POST /api/v1/notes` to the last delivery received by the sinks. Baseline: the same
1,100 deliveries of the same activity from this process, each one draft-cavage signature (alice's key) and
one aiohttp POST, with the server's concurrency (federation.delivery_concurrency) and connector limits
(netguard.make_connector), timed from the start to the last delivery received. One warm-up pair first (not
counted: connections opened, caches filled), then --runs pairs, which of the two goes first alternating;
the ratio is of the medians. CPU seconds of the server process and of the baseline are printed too: this
machine may be shared, and CPU time is steadier than wall time there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from bench.common import ROOT, cpu_seconds, free_port, start_process, stop_process, wait_for_port  # noqa: E402
from fedineighbour.config import FederationSettings  # noqa: E402
from fedineighbour.federation.wire.fetch import AP_ACCEPT  # noqa: E402
from fedineighbour.federation.wire.netguard import make_connector  # noqa: E402
from fedineighbour.federation.wire.signatures import load_private_key, sign_request  # noqa: E402
from tests.instances import Instance  # noqa: E402

INSTANCE_HOST = "127.0.0.2"
CONTROL_HOST = "127.0.0.4"


def sink_addresses(hosts: int) -> list[str]:
    return [f"127.0.1.{i}:{free_port(f'127.0.1.{i}')}" for i in range(1, hosts + 1)]


BENCH_LIMITS = {"write_burst": 100_000, "writes_per_minute": 100_000, "searches_per_minute": 100_000}


async def add_followers(inst: Instance, addresses: list[str], per_host: int) -> list[str]:
    """Remote accounts and accepted follows of alice, straight into the database. Returns the inboxes a
    note of alice's must reach (one per shared inbox, else one per follower)."""
    from tortoise import Tortoise

    from fedineighbour.storage import database
    from fedineighbour.storage.models import Account, Follow

    await database.open_database(inst.db_url)
    try:
        alice = await Account.get(username="alice", local=True)
        accounts = []
        inboxes: dict[str, None] = {}
        for h, netloc in enumerate(addresses):
            base = f"http://{netloc}"
            shared = f"{base}/inbox" if h % 2 == 0 else None
            for n in range(per_host):
                ap_id = f"{base}/users/u{n}"
                accounts.append(Account(
                    ap_id=ap_id, username=f"u{n}", domain=netloc, local=False, inbox=f"{ap_id}/inbox",
                    shared_inbox=shared, outbox=f"{ap_id}/outbox", followers_url=f"{ap_id}/followers",
                    following_url=f"{ap_id}/following", url=ap_id, key_id=f"{ap_id}#main-key",
                    public_key_pem="(unused)"))
                inboxes.setdefault(shared or f"{ap_id}/inbox", None)
        await Account.bulk_create(accounts, batch_size=500)
        ids = dict(await Account.filter(local=False).values_list("ap_id", "id"))
        await Follow.bulk_create([Follow(ap_id=f"{a.ap_id}/follows/alice", follower_id=ids[a.ap_id], target_id=alice.id,
                                         state="accepted") for a in accounts], batch_size=500)
    finally:
        await Tortoise.close_connections()
    return list(inboxes)


async def all_recorded(inst: Instance, expected: int, timeout: float = 10.0) -> int:
    """Wait (unmeasured) until the server has recorded every delivery as sent; returns how many are."""
    deadline = time.monotonic() + timeout
    while (sent := inst.count("deliveries", "state = 'sent'")) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return sent


class Control:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def stats(self) -> dict:
        async with self.session.get(f"{self.url}/stats") as resp:
            return await resp.json()

    async def reset(self) -> None:
        async with self.session.post(f"{self.url}/reset") as resp:
            await resp.read()

    async def wait_for(self, count: int, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = await self.stats()
            if stats["count"] >= count:
                return stats
            await asyncio.sleep(0.01)
        raise TimeoutError(f"only {stats['count']} of {count} deliveries arrived within {timeout}s")


async def real_run(inst: Instance, control: Control, session: aiohttp.ClientSession, token: str,
                   expected: int, n: int) -> tuple[float, dict]:
    await control.reset()
    cpu0 = cpu_seconds(inst.proc.pid)
    t0 = time.time()
    async with session.post(f"{inst.url}/api/v1/notes", headers={"Authorization": f"Bearer {token}"},
                            json={"content": f"Qui a une échelle à prêter ? (essai {n})",
                                  "visibility": "public"}) as resp:
        body = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"POST /api/v1/notes: {resp.status} {body}")
    api = time.time() - t0
    stats = await control.wait_for(expected)
    elapsed = stats["last"] - t0
    return elapsed, {"api": api, "first": stats["first"] - t0, "distinct": stats["distinct"],
                     "cpu": (cpu_seconds(inst.proc.pid) - cpu0) / elapsed, "key": body["key"]}


async def baseline_run(control: Control, session: aiohttp.ClientSession, inboxes: list[str], body: bytes,
                       key_id: str, key, concurrency: int) -> tuple[float, dict]:
    await control.reset()
    sem = asyncio.Semaphore(concurrency)

    async def deliver(url: str) -> None:
        async with sem:
            headers = {"Content-Type": "application/activity+json", "Accept": AP_ACCEPT, "User-Agent": "bench"}
            headers.update(sign_request("POST", url, body, key_id, key, headers=headers))
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 202:
                    raise RuntimeError(f"{url}: {resp.status}")

    cpu0 = time.process_time()
    t0 = time.time()
    await asyncio.gather(*(deliver(url) for url in inboxes))
    stats = await control.wait_for(len(inboxes))
    elapsed = stats["last"] - t0
    return elapsed, {"first": stats["first"] - t0, "distinct": stats["distinct"],
                     "cpu": (time.process_time() - cpu0) / elapsed}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller run (50 hosts x 10 followers)")
    parser.add_argument("--hosts", type=int, help="remote hosts (default 200, quick 50)")
    parser.add_argument("--per-host", type=int, default=10, help="followers per host")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    hosts = args.hosts or (50 if args.quick else 200)
    concurrency = FederationSettings().delivery_concurrency

    tmp = Path(tempfile.mkdtemp(prefix="fn-bench-fanout-"))
    inst = sinks = None
    try:
        t_setup = time.perf_counter()
        # the bench posts a note per run and warm-up: above the default write limit with many runs
        inst = Instance(tmp, INSTANCE_HOST, "bench", settings={"limits": BENCH_LIMITS}).init()
        token = inst.user("alice")
        addresses = sink_addresses(hosts)
        control_port = free_port(CONTROL_HOST)
        sinks = start_process([sys.executable, str(ROOT / "bench" / "sinks.py"), f"{CONTROL_HOST}:{control_port}",
                               *addresses], tmp / "sinks.log")
        inboxes = await add_followers(inst, addresses, args.per_host)
        inst.start()
        wait_for_port(CONTROL_HOST, control_port, sinks)
        followers = inst.count("follows", "state = 'accepted'")
        print(f"setup {time.perf_counter() - t_setup:.1f}s: {followers} followers on {hosts} hosts, "
              f"{hosts // 2 + hosts % 2} with a shared inbox -> {len(inboxes)} deliveries per note; "
              f"delivery concurrency {concurrency}; instance pid {inst.proc.pid}", flush=True)
        private_pem, key_id = inst.sql("SELECT private_key_pem, key_id FROM accounts WHERE username = 'alice'")[0]
        key = load_private_key(private_pem)

        reals: list[float] = []
        bases: list[float] = []
        real_cpu: list[float] = []
        base_cpu: list[float] = []
        async with aiohttp.ClientSession() as api_session, aiohttp.ClientSession(
                connector=make_connector(allow_private_addresses=True)) as base_session:
            control = Control(api_session, f"http://{CONTROL_HOST}:{control_port}")
            notes = 0

            async def real(n: int) -> None:
                nonlocal notes
                elapsed, info = await real_run(inst, control, api_session, token, len(inboxes), n)
                notes += 1
                sent = await all_recorded(inst, notes * len(inboxes))
                if n:
                    reals.append(elapsed)
                    real_cpu.append(info["cpu"] * elapsed)
                print(f"  {f'run {n}' if n else 'warm-up'}: fedineighbour {elapsed:.2f}s (API answered in "
                      f"{info['api'] * 1000:.0f} ms, first delivery at {info['first'] * 1000:.0f} ms, "
                      f"{info['distinct']} inboxes reached, {sent}/{notes * len(inboxes)} rows sent, "
                      f"server CPU {info['cpu'] * elapsed:.2f}s)")

            async def base(n: int) -> None:
                elapsed, info = await baseline_run(control, base_session, inboxes, body, key_id, key, concurrency)
                if n:
                    bases.append(elapsed)
                    base_cpu.append(info["cpu"] * elapsed)
                print(f"  {f'run {n}' if n else 'warm-up'}: baseline {elapsed:.2f}s (first delivery at "
                      f"{info['first'] * 1000:.0f} ms, {info['distinct']} inboxes reached, "
                      f"CPU {info['cpu'] * elapsed:.2f}s)")

            # Warm-up pair, not counted: connections to the 200 hosts opened on both sides, caches filled.
            await real(0)
            payload = inst.sql("SELECT payload FROM outbound_activities ORDER BY id DESC LIMIT 1")[0][0]
            body = json.dumps(json.loads(payload), separators=(",", ":")).encode()  # as the worker sends it
            await base(0)
            for n in range(1, args.runs + 1):  # alternate which goes first
                for step in ((real, base) if n % 2 else (base, real)):
                    await step(n)
        real_s, base_s = statistics.median(reals), statistics.median(bases)
        print(f"  CPU: fedineighbour {statistics.median(real_cpu):.2f}s (server process), baseline "
              f"{statistics.median(base_cpu):.2f}s (medians)")
        print(f"fanout: {len(inboxes)} deliveries in {real_s:.2f}s (median of {args.runs}), baseline {base_s:.2f}s, "
              f"ratio {real_s / base_s:.2f}")
    finally:
        stop_process(sinks)
        if inst is not None:
            inst.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
