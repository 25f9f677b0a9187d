"""The Redis lock store Rasa serves with when several Rasa processes share
conversations (`LOCK_STORE_TYPE=redis`; scripts/env.sh names this class in
endpoints.yml, through Rasa's extension point for lock stores, `type:
module.Class`).

Rasa's own RedisLockStore keeps a conversation's ticket queue as one JSON value
and changes it by read, modify, write: issuing a ticket, dropping expired ones
while waiting, and the clean-up after a message each GET the queue, change it in
the process and SET it back. Two Rasa processes doing that at the same moment
for one conversation overwrite each other: both can be issued the same ticket
number and process the same conversation at once (seen here as a conversation
that started a session twice), or a clean-up deletes the queue while another
process has just queued, which then fails with a LockError (Rasa issue #9213;
the concurrent store added for it was withdrawn from Rasa Open Source).

This subclass keeps Rasa's ticket lock, its JSON format and its keys, and makes
each of those changes one Redis transaction (WATCH the key, change, MULTI/EXEC,
again if another process changed the key in between). The queue also expires
in Redis when its last ticket does, so a process that died holding a ticket
leaves nothing behind for longer than the lock's lifetime.
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from typing import Any, Callable, Optional, Text, TypeVar

from rasa_addons.serving import require_rasa_version

require_rasa_version()

from rasa.core.lock import TicketLock  # noqa: E402  (after the version check)
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore  # noqa: E402
from rasa.utils.endpoints import EndpointConfig  # noqa: E402

log = logging.getLogger(__name__)
T = TypeVar("T")

# How often a change is retried when another process changed the queue in between.
MAX_ATTEMPTS = 200


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's RedisLockStore with every change of a ticket queue made atomically."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        if endpoint_config is not None:  # created by Rasa from endpoints.yml
            kwargs = {**endpoint_config.kwargs, **kwargs}
            kwargs.setdefault("host", endpoint_config.url or "localhost")
        super().__init__(**kwargs)

    def _change(self, conversation_id: Text, change: Callable[[TicketLock], T]) -> T:
        """Apply `change` to the conversation's stored queue in one transaction and
        store the result (the key removed when no ticket is left)."""
        import redis

        key = self.key_prefix + conversation_id
        for attempt in range(MAX_ATTEMPTS):
            with self.red.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else TicketLock(conversation_id)
                    result = change(lock)
                    lock.remove_expired_tickets()
                    pipe.multi()
                    if lock.tickets:
                        ttl_ms = max(1, math.ceil((max(t.expires for t in lock.tickets) - time.time()) * 1000))
                        pipe.set(key, lock.dumps(), px=ttl_ms)
                    else:
                        pipe.delete(key)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    # Another process changed the queue first: read it again.
                    time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
        raise LockError(f"Could not change the lock of conversation '{conversation_id}': "
                        f"{MAX_ATTEMPTS} attempts met concurrent changes.")

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        try:
            return self._change(conversation_id, lambda lock: lock.issue_ticket(lock_lifetime))
        except LockError:
            raise
        except Exception as exc:  # as Rasa's own: any store failure is a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc

    def update_lock(self, conversation_id: Text) -> None:
        # Expired tickets are dropped by _change itself; a queue that is already
        # gone stays gone (an empty queue is deleted, and Rasa then raises LockError).
        self._change(conversation_id, lambda lock: None)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        # Removing the ticket and deleting an empty queue is one step: a ticket
        # another process issues meanwhile is never deleted with it.
        self.finish_serving(conversation_id, ticket_number)

    def save_lock(self, lock: TicketLock) -> None:
        """Replace the whole queue (Rasa's own code paths above no longer call it)."""
        self._change(lock.conversation_id, lambda stored: setattr(stored, "tickets", lock.tickets))
