"""The pure core: lifecycle, records, policies, schedules and graphs.

Nothing here performs I/O, awaits or reads a clock: ``now`` is always a parameter,
so all of it is testable without an event loop. It imports neither anyio nor a store.
"""
