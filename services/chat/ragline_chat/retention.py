"""Conversation retention: with CHAT_CONVERSATION_RETENTION_DAYS set, an hourly sweep
deletes the conversations whose last message is older, with their messages, so the
database does not grow with every chat that started one (docs/chat.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from ragline_chat.store import ConversationStore, now
from ragline_core.errors import UnavailableError

log = logging.getLogger("ragline.chat.retention")

SWEEP_EVERY_S = 3600.0
# Conversations deleted per sweep at most: a backlog is worked off over several sweeps
# instead of holding the database in one long pass.
SWEEP_LIMIT = 1000


class ConversationRetention:
    def __init__(
        self, store: ConversationStore, retention: timedelta, every_s: float = SWEEP_EVERY_S
    ) -> None:
        self.store, self.retention, self.every_s = store, retention, every_s

    async def sweep(self) -> int:
        """One pass; the conversations deleted (0 when the store is unavailable)."""
        try:
            purged = await self.store.purge_idle(now() - self.retention, SWEEP_LIMIT)
        except UnavailableError:
            log.warning("conversation retention sweep skipped: the store is unavailable")
            return 0
        except Exception:  # the next sweep tries again: the loop must not die
            log.exception("conversation retention sweep failed")
            return 0
        if purged:
            log.info("deleted conversations past their retention", extra={"conversations": purged})
        return purged

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sweep()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)
