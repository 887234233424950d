"""Offer search: 100,000 synthetic posts over a French department, 1,000 mixed queries, SQLite and PostgreSQL.
Prints p50/p95/p99 in ms per backend, and the ratio to a lookup of one post by key in the same run.
Asserts nothing.

    .venv/bin/python bench/search.py [--posts 100000] [--queries 1000] [--seed 7] [--sqlite-only]

Data (seeded, not measured): posts spread over Ille-et-Vilaine (about 110 x 90 km), 85 % around 30 towns
weighted by size (Gaussian, 1.5-4 km), 15 % anywhere; titles and descriptions from a French vocabulary;
every kind and purpose; 10 % expired, 10 % done or closed; 3,000 authors. Rows are inserted with the
schema of the real migrations (`fedineighbour init` equivalent), then, on PostgreSQL only, VACUUM ANALYZE runs
(autovacuum would do it after such a bulk load; SQLite needs no statistics: the search forces its index).

Queries: each has a centre near a town and a radius of 1-20 km; 80 % have a text word, 60 % a kind,
25 % are ordered by date instead of distance; half are made by a signed-in resident (their own posts
are measured from the exact point). What is timed is `neighbourhood.search.search()`, the function the
API calls: the SQL query and the loading of the page's rows with their authors (20 per page).
The baseline is `Offer.filter(key=…).select_related("author").first()` on random keys.

PostgreSQL: a throw-away database on 127.0.0.1:5432 (user postgres), dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tortoise import Tortoise  # noqa: E402

from fedineighbour.neighbourhood.exchange.offer_rules import KINDS  # noqa: E402
from fedineighbour.neighbourhood.exchange.search import SearchQuery, search  # noqa: E402
from fedineighbour.storage import database  # noqa: E402
from fedineighbour.storage.offer_models import Offer, index_words, lat_band, search_document  # noqa: E402

PG_ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"]
AUTHORS = 3000
# (name, lat, lon, weight): towns of Ille-et-Vilaine, weight ~ population
TOWNS = [
    ("Rennes", 48.1113, -1.6800, 40), ("Saint-Malo", 48.6493, -2.0257, 10), ("Fougères", 48.3524, -1.1993, 4),
    ("Vitré", 48.1236, -1.2089, 4), ("Cesson-Sévigné", 48.1213, -1.6030, 3), ("Bruz", 48.0247, -1.7458, 3),
    ("Redon", 47.6517, -2.0844, 2), ("Saint-Jacques", 48.0911, -1.7239, 2), ("Betton", 48.1822, -1.6397, 2),
    ("Pacé", 48.1483, -1.7739, 2), ("Chartres-de-Bretagne", 48.0394, -1.7036, 1.5), ("Dinard", 48.6325, -2.0617, 1.5),
    ("Thorigné-Fouillard", 48.1597, -1.5786, 1), ("Chantepie", 48.0881, -1.6156, 1), ("Le Rheu", 48.1006, -1.7961, 1),
    ("Montfort-sur-Meu", 48.1378, -1.9583, 1), ("Combourg", 48.4103, -1.7511, 1), ("Cancale", 48.6761, -1.8519, 1),
    ("Janzé", 47.9614, -1.4994, 1), ("Liffré", 48.2136, -1.5067, 1), ("Guichen", 47.9672, -1.7947, 1),
    ("Bain-de-Bretagne", 47.8428, -1.6831, 1), ("La Guerche", 47.9417, -1.2300, 0.7),
    ("Châteaugiron", 48.0478, -1.5036, 1),
    ("Saint-Aubin-du-Cormier", 48.2600, -1.3994, 0.6), ("Dol-de-Bretagne", 48.5494, -1.7542, 0.7),
    ("Montauban", 48.1994, -2.0486, 0.6), ("Melesse", 48.2167, -1.6944, 0.8), ("Mordelles", 48.0756, -1.8431, 0.8),
    ("Retiers", 47.9131, -1.3806, 0.5),
]
BOX = (47.63, 48.72, -2.30, -1.00)
ITEMS = ["perceuse", "tondeuse", "vélo", "poussette", "échelle", "scie", "tente", "canapé", "livres", "jouets",
         "cours de maths", "baby-sitting", "déménagement", "courses", "remorque", "nettoyeur haute pression",
         "table", "chaises", "frigo", "machine à laver", "guitare", "piano", "ordinateur", "imprimante",
         "vêtements enfant", "siège auto", "lit bébé", "trottinette", "barbecue", "taille-haie", "broyeur",
         "compost", "plants de tomates", "confiture", "aide administrative", "repas chaud", "chambre",
         "colocation", "gîte", "trajet Rennes"]
ADJECTIVES = ["presque neuf", "bon état", "à réparer", "électrique", "pour le week-end", "gratuit", "urgent",
              "du samedi", "en bois", "grand", "petit", "pliable"]
WORDS = ["bonjour", "quartier", "disponible", "samedi", "dimanche", "soir", "matin", "merci", "voisin",
         "contactez-moi", "rapidement", "possible", "échange", "service", "prêt", "main", "jardin", "maison"]
QUERY_WORDS = ["perceuse", "tondeuse", "velo", "poussette", "echelle", "scie", "tente", "canape", "livres",
               "jouets", "maths", "baby", "demenagement", "courses", "remorque", "table", "frigo", "guitare",
               "bebe", "barbecue", "compost", "tomates", "chambre", "jardin", "neuf", "electrique", "bois"]


def pick_point(rng: random.Random, weights: list[float]) -> tuple[float, float]:
    if rng.random() < 0.15:
        return rng.uniform(BOX[0], BOX[1]), rng.uniform(BOX[2], BOX[3])
    _, lat, lon, _ = rng.choices(TOWNS, weights)[0]
    sigma_km = rng.uniform(1.5, 4.0)
    return lat + rng.gauss(0, sigma_km) / 111.0, lon + rng.gauss(0, sigma_km) / 74.0


def make_rows(n: int, rng: random.Random, author_ids: list[int], now: datetime) -> list[tuple]:
    weights = [t[3] for t in TOWNS]
    rows = []
    for i in range(n):
        lat, lon = pick_point(rng, weights)
        kind = rng.choice(KINDS)
        title = f"{rng.choice(ITEMS)} {rng.choice(ADJECTIVES)}"
        description = " ".join(rng.choices(WORDS, k=rng.randint(5, 25)))
        category = rng.choice(["", "bricolage", "jardin", "enfants", "maison", "transport", "cours"])
        published = now - timedelta(minutes=rng.randint(0, 60 * 24 * 60))
        roll = rng.random()
        status = "open" if roll < 0.8 else ("reserved" if roll < 0.85 else ("done" if roll < 0.92 else "closed"))
        expires = now - timedelta(days=rng.randint(1, 30)) if rng.random() < 0.1 else now + timedelta(days=30)
        key = f"b{i:015x}"
        rows.append((key, f"https://town.example/offers/{key}", f"https://town.example/offers/{key}",
                     rng.choice(author_ids), True, "Ville", True, "public", rng.choice(("offer", "request")), kind,
                     category, title, description, "", search_document(title, description, category), '{"type":"free"}',
                     0, status, lat + rng.uniform(-0.003, 0.003), lon + rng.uniform(-0.004, 0.004), lat, lon,
                     lat_band(lat), "", published, expires))
    return rows


COLUMNS = ("key", "ap_id", "url", "author_id", "local", "town", "listed", "visibility", "purpose", "kind",
           "category", "title", "description", "content_html", "search_text", "terms", "shares_taken", "status",
           "exact_lat", "exact_lon", "lat", "lon", "lat_band", "neighbourhood", "published", "expires_at")


async def insert(conn, postgres: bool, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if postgres:  # COPY: executemany of 1.5 million rows would take most of the run
        async with conn.acquire_connection() as raw:
            await raw.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    for start in range(0, len(rows), 50_000):
        await conn.execute_many(sql, rows[start:start + 50_000])


async def load(postgres: bool, n: int, rng: random.Random, now: datetime) -> list[str]:
    conn = Tortoise.get_connection("default")
    accounts = [(f"https://town.example/users/u{i}", f"u{i}", True, "Person", "resident", "", "", "", False, True,
                 False, now) for i in range(AUTHORS)]
    acc_cols = ("ap_id", "username", "local", "actor_type", "role", "display_name", "summary", "inbox", "locked",
                "discoverable", "suspended", "created_at")
    await insert(conn, postgres, "accounts", acc_cols, accounts)
    _, ids = await conn.execute_query("SELECT id FROM accounts")
    author_ids = [r[0] for r in ids]
    rows = make_rows(n, rng, author_ids, now)
    await insert(conn, postgres, "offers", COLUMNS, rows)
    _, ids = await conn.execute_query("SELECT id, key FROM offers")
    id_of = {r[1]: r[0] for r in ids}
    text_at = COLUMNS.index("search_text")
    kind_at = COLUMNS.index("kind")
    words = [(id_of[r[0]], r[kind_at], w) for r in rows for w in index_words(r[text_at])]
    await insert(conn, postgres, "offer_words", ("offer_id", "kind", "word"), words)
    if postgres:  # what autovacuum does after a bulk load: statistics and the visibility map
        await conn.execute_script("VACUUM ANALYZE")
    return [r[0] for r in rows]


def make_queries(count: int, rng: random.Random, viewer_ids: list[int]) -> list[tuple[SearchQuery, int | None]]:
    weights = [t[3] for t in TOWNS]
    out = []
    for _ in range(count):
        _, lat, lon, _ = rng.choices(TOWNS, weights)[0]
        q = SearchQuery(lat=lat + rng.gauss(0, 2) / 111.0, lon=lon + rng.gauss(0, 2) / 74.0,
                        radius_km=rng.choice([1, 2, 3, 5, 5, 10, 10, 15, 20]))
        if rng.random() < 0.8:
            q.words = [rng.choice(QUERY_WORDS)]
        if rng.random() < 0.6:
            q.kind = rng.choice(KINDS)
        q.order = "date" if rng.random() < 0.25 else "distance"
        out.append((q, rng.choice(viewer_ids) if rng.random() < 0.5 else None))
    return out


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49], qs[94], qs[98]


async def run_backend(name: str, url: str, args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    await database.migrate(url)
    await database.open_database(url)
    try:
        keys = await load(url.startswith("postgres"), args.posts, rng, now)
        load_s = time.perf_counter() - t0
        _, ids = await Tortoise.get_connection("default").execute_query("SELECT id FROM accounts")
        queries = make_queries(args.queries, rng, [r[0] for r in ids])
        for q, viewer in queries[:50]:  # warm-up (caches, prepared statements)
            await search(q, viewer, now)
        times, cpu, found = [], [], 0
        for q, viewer in queries:
            start, start_cpu = time.perf_counter(), time.process_time()
            page = await search(q, viewer, now)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
            found += len(page.items)
        lookups = []
        for key in rng.sample(keys, min(1000, len(keys))):
            start = time.perf_counter()
            offer = await Offer.filter(key=key).select_related("author").first()
            lookups.append((time.perf_counter() - start) * 1000)
            assert offer is not None
    finally:
        await database.close_database()
    p50, p95, p99 = percentiles(times)
    l50, l95, _ = percentiles(lookups)
    c50, c95, c99 = percentiles(cpu)
    return {"name": name, "p50": p50, "p95": p95, "p99": p99, "lookup_p50": l50, "lookup_p95": l95,
            "cpu": (c50, c95, c99),
            "load_s": load_s, "avg_items": found / len(queries)}


def report(r: dict) -> None:
    print(f"{r['name']:<10} search p50 {r['p50']:6.2f} ms  p95 {r['p95']:6.2f} ms  p99 {r['p99']:6.2f} ms | "
          f"lookup by key p50 {r['lookup_p50']:5.2f} ms p95 {r['lookup_p95']:5.2f} ms | "
          f"ratio p50 {r['p50'] / r['lookup_p50']:4.1f}x p95 {r['p95'] / r['lookup_p95']:4.1f}x | "
          f"{r['avg_items']:.1f} items/page, load {r['load_s']:.1f} s", flush=True)
    print(f"{'':<10} (CPU time of this process: p50 {r['cpu'][0]:.2f} p95 {r['cpu'][1]:.2f} p99 {r['cpu'][2]:.2f} ms;"
          f" on PostgreSQL the server's CPU is not in it)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    print(f"{args.posts} posts, {args.queries} queries (radius 1-20 km, 80 % text, 60 % kind), seed {args.seed}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report(asyncio.run(run_backend("SQLite", f"sqlite://{tmp}/bench.sqlite3", args)))
    if not args.sqlite_only:
        db = f"fn_bench_{uuid.uuid4().hex[:8]}"
        subprocess.run([*PG_ADMIN, f"CREATE DATABASE {db}"], check=True, capture_output=True)
        try:
            report(asyncio.run(run_backend("PostgreSQL", f"postgres://postgres@127.0.0.1:5432/{db}", args)))
        finally:
            subprocess.run([*PG_ADMIN, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], capture_output=True)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
