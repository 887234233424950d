"""The one composition root: builds the runtime (HTTP clients, keys, domain policy, addresses, wakeups, inbox
writer, the domain's context and its Exchange), the handler registry and the workers. `serve` (app.py's lifespan),
`worker` and the CLI commands all build and start the process here; nothing is attached to the runtime later."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from fedineighbour.config import Settings
from fedineighbour.federation.actors import fetch_key_owner
from fedineighbour.federation.domain_policy import DomainPolicy
from fedineighbour.federation.inbox import handlers_actor, handlers_content, handlers_follow, handlers_offers
from fedineighbour.federation.inbox.receive import InboxWriter
from fedineighbour.federation.inbox.registry import Registry
from fedineighbour.federation.inbox.worker import InboxWorker
from fedineighbour.federation.outbox.delivery import DeliveryWorker
from fedineighbour.federation.outbox.event_worker import EventWorker
from fedineighbour.federation.runtime import Runtime, Wakeups
from fedineighbour.federation.wire.fetch import Fetcher
from fedineighbour.federation.wire.keys import KeyStore
from fedineighbour.neighbourhood.addresses import INSTANCE_ACTOR_USERNAME, Urls
from fedineighbour.neighbourhood.exchange.answers import send_return_reminders
from fedineighbour.storage.event_models import DomainEvent
from fedineighbour.storage.models import Account, Delivery, InboxItem
from fedineighbour.storage.queue import release_all_leases
from fedineighbour.storage.queue_signals import watch_queues

log = logging.getLogger(__name__)

USER_AGENT = "fedineighbour/0.1"
KEY_CONNECTIONS = 16
KEY_CONNECTIONS_PER_HOST = 2
REMINDER_SECONDS = 600.0  # loans due back are reminded within ten minutes of their return date


def build_registry() -> Registry:
    """A new registry with every inbound activity's handler (refusing two for the same key)."""
    registry = Registry()
    for module in (handlers_follow, handlers_content, handlers_actor, handlers_offers):
        module.register(registry)
    return registry


async def build_runtime(settings: Settings) -> Runtime:
    """The database must be open. The instance actor signs our GETs (authorized-fetch peers need it)."""
    urls = Urls(settings.base_url)
    instance = await Account.filter(username=INSTANCE_ACTOR_USERNAME, local=True).first()
    rt: Runtime  # the key store fetches key owners through the runtime it belongs to (bound below)

    async def fetch_owner(key_id: str) -> Account | None:
        return await fetch_key_owner(rt, key_id)

    fed = settings.federation
    keys = KeyStore(fetch_owner, fetch_timeout=fed.key_fetch_timeout)

    def signer() -> tuple[str, Any] | None:
        if instance is None:
            return None
        return keys.signer_for(instance)

    fetcher = Fetcher(allow_http=fed.allow_http, allow_private_addresses=fed.allow_private_addresses,
                      max_bytes=fed.fetch_max_bytes, timeout=fed.fetch_timeout,
                      user_agent=f"{USER_AGENT} (+{settings.base_url})", signer=signer if instance else None)
    # Key fetches are what unverified senders can cause: their own small pool, so they never take the
    # connections deliveries and handlers use, and their own timeout.
    key_fetcher = Fetcher(allow_http=fed.allow_http, allow_private_addresses=fed.allow_private_addresses,
                          max_bytes=fed.fetch_max_bytes, timeout=min(fed.fetch_timeout, fed.key_fetch_timeout),
                          user_agent=f"{USER_AGENT} (+{settings.base_url})", signer=signer if instance else None,
                          connection_limit=KEY_CONNECTIONS, connection_limit_per_host=KEY_CONNECTIONS_PER_HOST)
    wake = Wakeups()
    rt = Runtime(settings=settings, urls=urls, fetcher=fetcher, keys=keys, policy=DomainPolicy(),
                 inbox_writer=InboxWriter(settings, wake), wake=wake, key_fetcher=key_fetcher)
    await rt.policy.refresh(force=True)
    return rt


async def close_runtime(rt: Runtime) -> None:
    await rt.fetcher.close()
    if rt.key_fetcher is not None:
        await rt.key_fetcher.close()


async def start_workers(rt: Runtime, count: int) -> list[asyncio.Task]:
    if not rt.is_postgres:  # SQLite: this process is the only worker, leases left by a crash are dead
        await release_all_leases(Delivery)
        await release_all_leases(InboxItem)
        await release_all_leases(DomainEvent)
    registry = build_registry()
    # SQLite has one writer: one worker of each kind (deliveries still run concurrently inside it).
    deliverers = 1 if not rt.is_postgres else max(1, count // 2)
    handlers = 1 if not rt.is_postgres else max(1, count - count // 2)
    tasks = [asyncio.create_task(DeliveryWorker(rt).run_forever(), name=f"delivery-{i}") for i in range(deliverers)]
    tasks += [asyncio.create_task(InboxWorker(rt, registry).run_forever(), name=f"inbox-{i}")
              for i in range(handlers)]
    # One event worker per process: events of one post are published in the order they were written.
    tasks.append(asyncio.create_task(EventWorker(rt).run_forever(), name="events"))
    tasks.append(asyncio.create_task(every(REMINDER_SECONDS, send_return_reminders), name="loan-reminders"))
    # Rows queued by another process (the CLI, a `worker`) wake these workers too, not only the poll.
    tasks.append(asyncio.create_task(watch_queues(partial(wake_queue, rt.wake), postgres=rt.is_postgres),
                                     name="queue-signals"))
    return tasks


def wake_queue(wake: Wakeups, queue: str) -> None:
    """Wake the workers of `queue` (a name of storage.queue_signals.QUEUE_TABLES: inbox, delivery, events)."""
    getattr(wake, queue).set()


async def every(seconds: float, chore: Callable[[], Awaitable[object]]) -> None:
    """Run `chore` now and then every `seconds`; a failure is logged and the next round tries again.
    Safe with several worker processes: each chore claims its rows (see send_return_reminders)."""
    while True:
        try:
            await chore()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("periodic %s failed", getattr(chore, "__name__", chore))
        await asyncio.sleep(seconds)


async def stop_tasks(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def start(settings: Settings, *, run_workers: bool = True) -> tuple[Runtime, list[asyncio.Task]]:
    """A running process, server or `worker`: the runtime, its inbox writer and (if asked) the workers.
    The database must be open."""
    rt = await build_runtime(settings)
    rt.inbox_writer.start()
    tasks = await start_workers(rt, settings.server.workers) if run_workers else []
    return rt, tasks


async def stop(rt: Runtime, tasks: list[asyncio.Task]) -> None:
    await stop_tasks(tasks)
    await rt.inbox_writer.stop()
    await close_runtime(rt)
