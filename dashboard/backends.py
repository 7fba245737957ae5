"""Where the dashboard keeps bytes: a folder on this machine, or Redis for many machines.

Both backends hold plain ``bytes`` under string keys and offer what the store and the job
queue need: get, set, set-if-absent, delete, and a lock that makes a read-modify-write
atomic across every process on the same folder or Redis. Nothing here unpickles: values
go in and come out as bytes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import diskcache


class Backend(Protocol):
    """Bytes under keys, shared by every process that opens the same place."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes) -> None: ...

    def add(self, key: str, value: bytes) -> bool: ...

    def delete(self, key: str) -> None: ...

    def locked(self, name: str) -> contextlib.AbstractContextManager: ...

    def close(self) -> None: ...


class DiskBackend:
    """A ``diskcache.Cache`` in a private folder, size-bounded, least recently used first out.

    Parameters
    ----------
    directory : path
        Created with mode 0o700 if missing.
    size_limit : int, default=2 GiB
        Bytes the folder may hold; beyond it the least recently used entries are evicted.
    """

    def __init__(self, directory: str | os.PathLike, size_limit: int = 2 * 1024**3) -> None:
        if isinstance(size_limit, bool) or not isinstance(size_limit, int) or size_limit <= 0:
            raise ValueError(f"size_limit must be a positive number of bytes; got {size_limit!r}.")
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.cache = diskcache.Cache(
            str(self.directory), size_limit=size_limit, eviction_policy="least-recently-used"
        )

    @property
    def size_limit(self) -> int:
        return self.cache.size_limit

    def get(self, key: str) -> bytes | None:
        return self.cache.get(key)

    def set(self, key: str, value: bytes) -> None:
        """Store an entry that stays readable if it fits in the cache.

        When the cache is full, diskcache evicts up to ten least recently used entries at
        once: with few entries, the new one among them. It is then written once more, into
        the emptied cache.
        """
        for _ in range(2):
            self.cache.set(key, value)
            if key in self.cache:
                return

    def add(self, key: str, value: bytes) -> bool:
        return self.cache.add(key, value)

    def delete(self, key: str) -> None:
        self.cache.delete(key)

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """One SQLite transaction: reads and writes inside it are atomic across processes."""
        with self.cache.transact():
            yield

    def volume(self) -> int:
        return self.cache.volume()

    def close(self) -> None:
        self.cache.close()


class RedisBackend:
    """Keys of one Redis database, under a prefix, each kept for ``expire`` seconds.

    Parameters
    ----------
    url : str
        ``redis://[:password@]host:port/db``.
    expire : int, default=7 days
        Seconds an entry lives after it was written (set Redis's ``maxmemory`` with an
        LRU policy to bound its size).
    prefix : str, default="innsight:"
    """

    def __init__(self, url: str, expire: int = 7 * 24 * 3600, prefix: str = "innsight:") -> None:
        try:
            import redis
        except ImportError:  # pragma: no cover - the celery extra brings it
            raise ImportError(
                "--redis-url needs the redis package: pip install 'innsight-python[celery]'."
            ) from None
        self.url = url
        self.client = redis.Redis.from_url(url)
        self.expire = expire
        self.prefix = prefix

    def get(self, key: str) -> bytes | None:
        return self.client.get(self.prefix + key)

    def set(self, key: str, value: bytes) -> None:
        self.client.set(self.prefix + key, value, ex=self.expire)

    def add(self, key: str, value: bytes) -> bool:
        """Set ``key`` if it is absent, for good (the server secret: it never expires)."""
        return bool(self.client.set(self.prefix + key, value, nx=True))

    def delete(self, key: str) -> None:
        self.client.delete(self.prefix + key)

    def locked(self, name: str) -> contextlib.AbstractContextManager:
        """A Redis lock (released after 30 s at the latest, should its holder die)."""
        return self.client.lock(f"{self.prefix}lock:{name}", timeout=30, blocking_timeout=30)

    def close(self) -> None:
        self.client.close()
