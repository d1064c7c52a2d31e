"""Keeps the tenant document on disk: changes mark it dirty, a background task writes it at
most every ~100 ms, and a final write happens on shutdown. Files are replaced atomically.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from bulkshare.sim.files import write_atomic
from bulkshare.sim.tenant import SimTenant

__all__ = ["Persister"]


class Persister:
    """Coalesces tenant changes into whole-document writes."""

    __slots__ = ("_dirty", "_lock", "_written", "interval_s", "path", "tenant")

    def __init__(self, tenant: SimTenant, path: Path, interval_s: float = 0.1) -> None:
        #: the tenant written
        self.tenant = tenant
        #: the document's file
        self.path = path
        #: the least time between two writes
        self.interval_s = interval_s
        self._dirty = asyncio.Event()
        self._lock = threading.Lock()
        self._written = -1  # tenant version last on disk

    def __repr__(self) -> str:
        return f"<Persister {self.path} written_v={self._written} tenant_v={self.tenant.version}>"

    def mark_dirty(self) -> None:
        """Note that the tenant changed."""
        self._dirty.set()

    async def run(self) -> None:
        """Write the document whenever it changed, until cancelled."""
        if not self.path.exists():
            self.flush()
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.interval_s)
            self._dirty.clear()
            version, data = self.tenant.version, self.tenant.dumps()
            await asyncio.to_thread(self._write, version, data)

    def flush(self) -> None:
        """Write the current document now unless the file already holds it."""
        self._write(self.tenant.version, self.tenant.dumps())

    def _write(self, version: int, data: bytes) -> None:
        # a lagging background write must never replace a newer document
        with self._lock:
            if version <= self._written:
                return
            write_atomic(self.path, data)
            self._written = version
