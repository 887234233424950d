"""Inbox throughput: signed Create(Note) POSTs from 100 remote actors into one real fedineighbour instance,
against a trivial Starlette endpoint served the same way. Prints figures; asserts nothing.

    .venv/bin/python bench/inbox.py [--quick] [--connections 50]

Setup (not measured): an instance (subprocess, SQLite, `fedineighbour serve`) on 127.0.0.2; a small real
aiohttp host on 127.0.0.3 serving the 100 actors and their keys (tests/remote.py); one signed request per
actor first, so the instance fetches and caches every key; then every measured request is signed in
advance (two processes), a tenth of them sent twice (a remote retrying), so the client's signing cost is
not measured. The same request bytes then go, with the same load generator (bench/common.py: pre-built
requests written on N keep-alive connections, a few tens of microseconds per request, so never the
bottleneck) and concurrency, to the
instance's shared inbox and to the trivial endpoint (measured twice, before the instance; the mean is
the baseline). Afterwards inbox_items must hold exactly one row per distinct activity id.

The instance runs as `fedineighbour serve` does, workers included: its inbox worker handles the stored
activities (each a Create of a Note nobody here follows, so it is parsed, checked and set aside) while the
load goes on, and that CPU counts against the inbox, as it would on a real server. While requests keep
arriving the worker makes way for them (inbox_worker.YIELD); the bench prints how many it handled during
the load, then how fast it handles the rest once the load stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    build_request,
    free_port,
    run_load,
    start_process,
    stop_process,
    wait_for_port,
)
from fedineighbour.federation.wire.signatures import generate_key_pair, load_private_key, sign_request  # noqa: E402
from tests.instances import Instance  # noqa: E402
from tests.remote import RemoteHost  # noqa: E402

ACTORS = 100
INSTANCE_HOST = "127.0.0.2"
REMOTE_HOST = "127.0.0.3"
CONTEXT = ["https://www.w3.org/ns/activitystreams", {
    "ostatus": "http://ostatus.org#", "atomUri": "ostatus:atomUri", "inReplyToAtomUri": "ostatus:inReplyToAtomUri",
    "conversation": "ostatus:conversation", "sensitive": "as:sensitive", "toot": "http://joinmastodon.org/ns#",
    "votersCount": "toot:votersCount", "Hashtag": "as:Hashtag"}]
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def create_note(actor: str, n: int) -> bytes:
    """A Mastodon-shaped Create(Note), about 1.6 kB."""
    status = f"{actor}/statuses/{n}"
    published = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    content = (f"<p>Bonjour le quartier ! Je prête ma perceuse ce samedi, message n°{n}. "
               f"<a href=\"{actor.rsplit('/users/', 1)[0]}/tags/bricolage\" class=\"mention hashtag\" "
               f"rel=\"tag\">#<span>bricolage</span></a></p>")
    doc = {
        "@context": CONTEXT, "id": f"{status}/activity", "type": "Create", "actor": actor, "published": published,
        "to": [PUBLIC], "cc": [f"{actor}/followers"],
        "object": {
            "id": status, "type": "Note", "summary": None, "inReplyTo": None, "published": published,
            "url": status, "attributedTo": actor, "to": [PUBLIC], "cc": [f"{actor}/followers"],
            "sensitive": False, "atomUri": status, "inReplyToAtomUri": None,
            "conversation": f"tag:{REMOTE_HOST},2025:objectId={n}:objectType=Conversation",
            "content": content, "contentMap": {"fr": content}, "attachment": [],
            "tag": [{"type": "Hashtag", "href": f"{actor.rsplit('/users/', 1)[0]}/tags/bricolage",
                     "name": "#bricolage"}],
            "replies": {"id": f"{status}/replies", "type": "Collection", "first": {
                "type": "CollectionPage", "next": f"{status}/replies?only_other_accounts=true&page=true",
                "partOf": f"{status}/replies", "items": []}},
        },
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _sign_chunk(args: tuple[str, str, str, str, list[int]]) -> list[tuple[bytes, dict[str, str]]]:
    private_pem, actor, url, _name, numbers = args
    key = load_private_key(private_pem)
    out = []
    for n in numbers:
        body = create_note(actor, n)
        headers = sign_request("POST", url, body, f"{actor}#main-key", key)
        headers["Content-Type"] = "application/activity+json"
        headers["User-Agent"] = "bench (Mastodon-like)"
        out.append((body, headers))
    return out


def signed_requests(pool: ProcessPoolExecutor, remote: RemoteHost, names: list[str], url: str, path: str,
                    netloc: str, per_actor: int, first: int) -> list[bytes]:
    """per_actor activities for each actor, numbered from `first`, interleaved actor by actor."""
    jobs = [(remote.keys[name][0], remote.actor_id(name), url, name, list(range(first, first + per_actor)))
            for name in names]
    chunks = list(pool.map(_sign_chunk, jobs))
    out = []
    for i in range(per_actor):
        for chunk in chunks:
            body, headers = chunk[i]
            out.append(build_request("POST", path, netloc, headers, body))
    return out


def with_duplicates(requests: list[bytes], fraction: float, rng: random.Random) -> list[bytes]:
    """Resend a fraction of the requests, each later than its original (a sender's retry)."""
    out = list(requests)
    for _ in range(int(len(requests) * fraction)):
        i = rng.randrange(len(requests))
        out.insert(rng.randint(i + 1, len(out)), requests[i])
    return out


def summary(label: str, result, wanted: int = 202) -> str:
    bad = sum(1 for s in result.statuses if s != wanted)
    cpu = (f", server CPU {result.server_cpu:.0%} (main thread {result.server_main_thread_cpu:.0%})"
           if result.server_cpu is not None else "")
    return (f"  {label}: {len(result.statuses)} requests in {result.elapsed:.2f}s = {result.rate:.0f} req/s, "
            f"p50 {result.percentile(50) * 1000:.1f} ms, p99 {result.percentile(99) * 1000:.1f} ms{cpu}, "
            f"client CPU {result.client_cpu:.0%}" + (f", {bad} not {wanted}" if bad else ""))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--per-actor", type=int, help="distinct activities per actor (default 100, quick 30)")
    parser.add_argument("--duplicates", type=float, default=0.1, help="fraction of requests sent twice")
    parser.add_argument("--path", default="/inbox", help="/inbox (shared) or /users/alice/inbox")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to wait before measuring (attach a profiler)")
    args = parser.parse_args()
    per_actor = args.per_actor or (30 if args.quick else 100)
    rng = random.Random(1)

    tmp = Path(tempfile.mkdtemp(prefix="fn-bench-inbox-"))
    inst = remote = trivial = None
    pool = ProcessPoolExecutor(2)
    try:
        t_setup = time.perf_counter()
        keys = list(pool.map(_keypair, range(ACTORS), chunksize=10))
        inst = Instance(tmp, INSTANCE_HOST, "bench").init()
        inst.user("alice")
        remote = RemoteHost(REMOTE_HOST)
        names = [f"a{i}" for i in range(ACTORS)]
        for name, pair in zip(names, keys, strict=True):
            remote.add_actor(name, pair)
        await remote.start()
        inst.start()
        trivial_port = free_port(INSTANCE_HOST)
        trivial = start_process([sys.executable, str(ROOT / "bench" / "trivial_app.py"), INSTANCE_HOST,
                                 str(trivial_port)], tmp / "trivial.log")
        wait_for_port(INSTANCE_HOST, trivial_port, trivial)

        url = inst.url + args.path
        # Pre-warm: the first request of each actor makes the instance fetch its key.
        warm = signed_requests(pool, remote, names, url, args.path, inst.netloc, 1, 0)
        result = await run_load(INSTANCE_HOST, inst.port, warm, 20)
        fetched = sum(1 for n in names if remote.actor_gets[n])
        print(f"pre-warm: {sum(s == 202 for s in result.statuses)}/{len(warm)} accepted, "
              f"{fetched}/{ACTORS} actor keys fetched by the instance")
        distinct = signed_requests(pool, remote, names, url, args.path, inst.netloc, per_actor, 1)
        requests = with_duplicates(distinct, args.duplicates, rng)
        await run_load(INSTANCE_HOST, trivial_port, requests[:500], args.connections)  # warm the baseline
        print(f"setup {time.perf_counter() - t_setup:.1f}s; {len(requests)} requests "
              f"({len(distinct)} distinct activities, {len(requests) - len(distinct)} resent), "
              f"{len(distinct[0])} bytes each, {args.connections} connections, path {args.path}")
        if args.hold:
            print(f"instance pid {inst.proc.pid}, baseline pid {trivial.pid}: measuring in {args.hold}s", flush=True)
            await asyncio.sleep(args.hold)

        # Both baseline runs come first: after its run the instance keeps a core busy for a while (its inbox
        # worker handles the backlog), which would slow a baseline measured then.
        base1 = await run_load(INSTANCE_HOST, trivial_port, requests, args.connections, server_pid=trivial.pid)
        print(summary("baseline (trivial Starlette)", base1))
        base2 = await run_load(INSTANCE_HOST, trivial_port, requests, args.connections, server_pid=trivial.pid)
        print(summary("baseline (trivial Starlette)", base2))
        real = await run_load(INSTANCE_HOST, inst.port, requests, args.connections, server_pid=inst.proc.pid)
        print(summary("fedineighbour inbox", real))

        rows = inst.count("inbox_items")
        expected = len(distinct) + len(warm)
        print(f"  inbox_items rows: {rows}, distinct activity ids sent: {expected} -> "
              f"{'deduplicated OK' if rows == expected else 'MISMATCH'}")
        processed = inst.count("inbox_items", "state <> 'received'")
        print(f"  handled by the inbox worker meanwhile: {processed}/{rows}")
        drained, seconds = await drain(inst, rows)
        print(f"  then the inbox worker handled the other {drained - processed} in {seconds:.1f}s "
              f"({(drained - processed) / seconds:.0f}/s)" + ("" if drained == rows else f", {rows - drained} left"))
        baseline = (base1.rate + base2.rate) / 2

        def cpu_per_request(r) -> float:  # server CPU time per request, all threads, in microseconds
            return r.server_cpu * r.elapsed / len(r.statuses) * 1e6
        base_cpu = (cpu_per_request(base1) + cpu_per_request(base2)) / 2
        print(f"  server CPU per request: inbox {cpu_per_request(real):.0f} us, baseline {base_cpu:.0f} us "
              f"(ratio {base_cpu / cpu_per_request(real):.2f}; steadier than wall time on a shared machine)")
        print(f"inbox: {real.rate:.0f} req/s, baseline {baseline:.0f} req/s, ratio {real.rate / baseline:.2f}")
    finally:
        pool.shutdown()
        stop_process(trivial)
        if remote is not None:
            await remote.stop()
        if inst is not None:
            inst.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


async def drain(inst: Instance, rows: int, timeout: float = 60.0) -> tuple[int, float]:
    """Wait for the inbox worker to handle every stored row: (rows handled, seconds waited)."""
    started = time.perf_counter()
    while True:
        await asyncio.sleep(0.25)
        handled = inst.count("inbox_items", "state <> 'received'")
        if handled >= rows or time.perf_counter() - started > timeout:
            return handled, time.perf_counter() - started


def _keypair(_: int) -> tuple[str, str]:
    return generate_key_pair()


if __name__ == "__main__":
    asyncio.run(main())
