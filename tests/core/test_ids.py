"""Run ids: UUIDv7 text, time-sortable, unique under bursts and threads."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

from runlife._core.ids import id_time_ms, new_id


def test_ids_are_uuid_v7_text() -> None:
    """An id is canonical lowercase UUID text with version 7 and the RFC 9562 variant."""
    run_id = new_id()
    parsed = uuid.UUID(run_id)
    assert str(parsed) == run_id
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert (parsed.int >> 62) & 0b11 == 0b10


def test_burst_strictly_increases() -> None:
    """100,000 ids made in a row in one thread are strictly increasing (as text)."""
    ids = [new_id() for _ in range(100_000)]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert all(uuid.UUID(i).version == 7 for i in ids[::997])


def test_unique_across_threads() -> None:
    """Four threads making ids at the same time never make the same id, and each
    thread's ids still increase."""
    per_thread: list[list[str]] = [[] for _ in range(4)]
    barrier = threading.Barrier(4)

    def make(out: list[str]) -> None:
        barrier.wait()
        out.extend(new_id() for _ in range(20_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for out in per_thread for i in out]
    assert len(set(every)) == len(every) == 80_000
    for out in per_thread:
        assert out == sorted(out)


def test_id_time_matches_the_clock() -> None:
    """id_time_ms gives the Unix time in milliseconds at which the id was made."""
    before = time.time_ns() // 1_000_000
    run_id = new_id()
    after = time.time_ns() // 1_000_000
    # A burst may borrow the next millisecond, hence the one millisecond of slack.
    assert before <= id_time_ms(run_id) <= after + 1
    assert id_time_ms(run_id) == uuid.UUID(run_id).int >> 80


def test_a_forked_child_draws_other_random_bits() -> None:
    """A forked worker reseeds the id generator, so parent and child never share a
    random sequence (their ids within one millisecond would collide)."""
    import os

    from runlife._core import ids

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next draw, then leave at once
        os.write(write, str(ids._bits(64)).encode())
        os._exit(0)
    os.close(write)
    child = int(os.read(read, 64).decode())
    os.close(read)
    os.waitpid(pid, 0)
    assert child != ids._bits(64)
