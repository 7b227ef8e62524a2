"""The ETag store: validators of guard answers, in memory, bounded, least recently used
out first. A cold start only costs one revalidation per guard, so nothing is persisted."""

from __future__ import annotations

from collections import OrderedDict

from orchestrator.ports import ETagKey


class LruETagStore:
    """``ETagStore`` holding at most ``capacity`` validators."""

    def __init__(self, capacity: int = 512) -> None:
        self._capacity = max(1, capacity)
        self._etags: OrderedDict[ETagKey, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._etags)

    def get(self, key: ETagKey) -> str | None:
        etag = self._etags.get(key)
        if etag is not None:
            self._etags.move_to_end(key)
        return etag

    def put(self, key: ETagKey, etag: str | None) -> None:
        if etag is None:
            self._etags.pop(key, None)
            return
        self._etags[key] = etag
        self._etags.move_to_end(key)
        while len(self._etags) > self._capacity:
            self._etags.popitem(last=False)

    def clear(self) -> None:
        self._etags.clear()
