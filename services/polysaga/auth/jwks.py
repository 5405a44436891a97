"""An issuer's signing keys (a JWKS document from a file or a URL), cached: re-read when
older than ``max_age_s`` and when a token names a key id the cache does not hold (the
issuer rotated its keys), but at most once per ``min_refresh_interval_s``. If the keys
cannot be re-read, the ones already held keep working."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import msgspec

log = logging.getLogger(__name__)

LoadKeys = Callable[[], Awaitable[dict[str, Any]]]


class UnknownKeyError(LookupError):
    """No key of the issuer's set has the token's key id."""


class KeysUnavailableError(Exception):
    """The key set could not be read, and none is held from before."""


def file_loader(path: Path) -> LoadKeys:
    async def load() -> dict[str, Any]:
        data: dict[str, Any] = msgspec.json.decode(await asyncio.to_thread(path.read_bytes))
        return data

    return load


def url_loader(url: str, client: httpx.AsyncClient) -> LoadKeys:
    async def load() -> dict[str, Any]:
        response = await client.get(url, headers={"accept": "application/json"})
        response.raise_for_status()
        data: dict[str, Any] = msgspec.json.decode(response.content)
        return data

    return load


class JwksCache:
    def __init__(
        self,
        load: LoadKeys,
        *,
        max_age_s: float,
        min_refresh_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._max_age_s = max_age_s
        self._min_refresh_interval_s = min_refresh_interval_s
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The signing key with this key id (a token without one: the set's only key)."""
        now = self._clock()
        stale = self._loaded_at is None or now - self._loaded_at >= self._max_age_s
        if (stale or kid not in self._keys) and self._may_refresh(now):
            await self._refresh(now)
        if self._loaded_at is None:
            raise KeysUnavailableError("the issuer's keys could not be read")
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKeyError(f"no key with id {kid!r}") from None

    def _may_refresh(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= self._min_refresh_interval_s

    async def _refresh(self, now: float) -> None:
        async with self._lock:
            if self._tried_at is not None and self._tried_at >= now:
                return  # another request refreshed while this one waited
            self._tried_at = self._clock()
            try:
                document = await self._load()
                key_set = jwt.PyJWKSet.from_dict(document)
            # (a malformed document is a ValueError: msgspec's DecodeError is one)
            except (OSError, ValueError, httpx.HTTPError, jwt.PyJWTError) as exc:
                log.warning("cannot read the JWKS (keeping %d held keys): %s", len(self._keys), exc)
                return
            self._keys = {
                key.key_id: key for key in key_set.keys if key.public_key_use in (None, "sig")
            }
            self._loaded_at = self._tried_at
