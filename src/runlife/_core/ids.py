"""Time-sortable run ids: UUIDv7 text (RFC 9562), monotonic within a process."""

from __future__ import annotations

import os
import threading
import time

__all__ = ("id_time_ms", "new_id")

_lock = threading.Lock()
_last_ms = 0
_last_tail = 0
_TAIL_BITS = 74  # 12 bits of rand_a + 62 bits of rand_b
_TAIL_MAX = (1 << _TAIL_BITS) - 1


def new_id() -> str:
    """Return a new UUIDv7 as text; ids from one process strictly increase.

    Within one millisecond the 74 random bits act as a counter that starts at a
    random point in the lower half of its range (RFC 9562, method 3 with a random
    seed), so a burst of ids stays sorted and unique. If a burst ever exhausts a
    millisecond, the timestamp is borrowed from the next one.

    >>> a, b = new_id(), new_id()
    >>> a < b and len(a) == 36 and a[14] == "7"
    True
    """
    global _last_ms, _last_tail
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            tail = int.from_bytes(os.urandom(10)) >> 7  # 73 bits: room to count up
        else:
            ms = _last_ms
            tail = _last_tail + 1 + (os.urandom(1)[0] & 0x0F)
            if tail > _TAIL_MAX:
                ms += 1
                tail = int.from_bytes(os.urandom(10)) >> 7
        _last_ms, _last_tail = ms, tail
    rand_a = tail >> 62
    rand_b = tail & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def id_time_ms(run_id: str) -> int:
    """The Unix time in milliseconds encoded in a UUIDv7 *run_id*."""
    return int(run_id[:8] + run_id[9:13], 16)
