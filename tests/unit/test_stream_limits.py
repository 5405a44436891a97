"""Every stream the services declare is bounded: the saga streams by age, the entity streams
by being one record per entity change, and the dead letters by age and size, refusing new
ones when full rather than dropping old ones."""

from __future__ import annotations

from nats.js.api import DiscardPolicy

from polysaga.events import declaration
from polysaga.messaging.connection import stream_configs


def test_the_dead_letter_stream_is_bounded_and_never_drops_what_it_holds() -> None:
    (dead_letters,) = [c for c in stream_configs() if c.name == declaration.DEAD_LETTER_STREAM]
    assert dead_letters.max_age and dead_letters.max_age > 0
    assert dead_letters.max_bytes and dead_letters.max_bytes > 0
    assert dead_letters.discard is DiscardPolicy.NEW
