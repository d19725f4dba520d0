"""`admit_lines` and `admit_items`: a batch of log lines or items checked a column
at a time accepts, flags, converts and refuses exactly what the check of one line
or one item at a time does."""

from __future__ import annotations

import math
from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlife._core import admission
from runlife._core.records import ErrorInfo, Item, LogLine
from runlife._core.status import Status
from runlife.exceptions import InvalidValue, RunlifeError

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


class _Text(str):
    """A str subclass: equal to its str, and no plain text."""


# Plain values, and one of every kind of value the check must catch, each as
# likely as the others.
plain_texts = st.sampled_from(["r1", "backing up", "", "x" * 40])
plain_scalars = st.one_of(
    plain_texts, st.sampled_from([0, 1, -5, 2**63 - 1, True, False, None, 0.5, -0.0])
)
ODD_TEXTS: Final = ["é", "a\x00b", "lone \ud800", _Text("r1"), None, 42, ["x"]]
ODD: Final[dict[str, list[Any]]] = {
    "stream": ["nope", None, _Text("log"), ["log"]],
    "level": ["INFO", "", 7, "é", _Text("info")],
    "message": ODD_TEXTS,
    "item": [*ODD_TEXTS[:4], 3, ["x"]],
    "attempt": [0, 2**40, "1", True, -1, 1.0],
    "run_id": ["run-b", "", "r\x00", ["x"], "é", _Text("run-a"), None],
    "at": [
        T0.astimezone(timezone(timedelta(hours=2))),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(1, 1, 1, 0, 1, tzinfo=UTC),
        datetime(2026, 3, 10, 2, 0),
    ],
    "fields": [
        *(
            {"n": value}
            for value in (
                2**63,
                -(2**63) - 1,
                math.nan,
                math.inf,
                [1],
                {"a": 1},
                (1, 2),
                b"x",
                "é",
                "a\x00b",
                _Text("r1"),
            )
        ),
        {"é": 1},
        {"a\x00": 1},
        {1: "x"},
        {_Text("host"): 1},
        OrderedDict(n=1),
        [("a", 1)],
        None,
    ],
}


@st.composite
def log_lines(draw: st.DrawFn) -> LogLine:
    """A plain line (as the runtime writes), or one with a single odd value (one
    in four)."""
    line = LogLine(
        run_id="run-a",
        seq=0,
        at=draw(st.sampled_from([T0, T0 + timedelta(microseconds=1)])),
        stream=draw(st.sampled_from(["log", "stdout", "stderr"])),
        level=draw(st.sampled_from(["info", "warning", "error"])),
        message=draw(plain_texts),
        item=draw(st.one_of(st.none(), plain_texts)),
        attempt=draw(st.sampled_from([None, 1, 2**31 - 1])),
        fields=draw(st.dictionaries(st.sampled_from(["host", "n", "ok"]), plain_scalars)),
    )
    if draw(st.integers(0, 3)) == 0:
        name = draw(st.sampled_from(sorted(ODD)))
        # Frozen, but a writer may hand any value: set past the converters.
        object.__setattr__(line, name, draw(st.sampled_from(ODD[name])))
    return line


def _batched(lines: list[LogLine], claimed: str | None) -> tuple[Any, list[bool]]:
    """What the batch check gives, in `_one_by_one`'s form."""
    flat: list[bool] = []
    try:
        return admission.admit_lines(lines, claimed, flat=flat), flat
    except (RunlifeError, TypeError) as exc:
        return (type(exc), str(exc)), []


def _one_by_one(lines: list[LogLine], claimed: str | None) -> tuple[Any, list[bool]]:
    """What the line-by-line check gives: the lines and flags, or the error."""
    out, flat, good = [], [], set()
    for index, line in enumerate(lines):
        try:
            plain = line.__class__ is LogLine and admission._plain_line(line, claimed, good)
        except TypeError:
            plain = False
        if plain:
            out.append(line)
        else:
            try:
                out.append(admission._admit_line(index, line, claimed))
            except (RunlifeError, TypeError) as exc:
                return (type(exc), str(exc)), []
        flat.append(plain)
    return tuple(out), flat


# Cheap examples, and a miss hides in one value of one line: many of them.
@settings(max_examples=500)
@given(st.lists(log_lines(), max_size=5), st.sampled_from([None, "run-a"]))
def test_a_batch_is_admitted_as_its_lines_one_by_one(
    lines: list[LogLine], claimed: str | None
) -> None:
    """The same lines back, the same flat flags, or the same error naming the same
    line: the column checks only ever shortcut the line-by-line ones."""
    expected, expected_flat = _one_by_one(lines, claimed)
    assert _batched(lines, claimed) == (expected, expected_flat)


def test_a_plain_batch_comes_back_as_given() -> None:
    """A batch of plain lines (the runtime's) is admitted as the very lines given."""
    lines = [
        LogLine(run_id="run-a", seq=n, at=T0, message="backing up", fields={"n": n, "h": "r1"})
        for n in range(1, 4)
    ]
    flat: list[bool] = []
    admitted = admission.admit_lines(lines, "run-a", flat=flat)
    assert all(a is b for a, b in zip(admitted, lines, strict=True))
    assert flat == [True, True, True]


@pytest.mark.parametrize("claimed", [None, "run-a"])
@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in ODD.items() for value in values]
)
def test_one_odd_value_among_plain_lines_is_caught(
    name: str, value: Any, claimed: str | None
) -> None:
    """Every odd value, alone in a batch of plain lines, is refused or flagged as
    the line-by-line check refuses or flags it."""
    plain = [
        LogLine(run_id="run-a", seq=0, at=T0, message="m", item="r1", attempt=1, fields={"n": 1})
        for _ in range(3)
    ]
    object.__setattr__(plain[1], name, value)
    expected, expected_flat = _one_by_one(plain, claimed)
    assert _batched(plain, claimed) == (expected, expected_flat)


# -- items -----------------------------------------------------------------------------

ODD_ITEM: Final[dict[str, list[Any]]] = {
    "run_id": ["run-b", "", "r\x00", None, 3, _Text("run-a"), "lone \ud800"],
    "key": ["", "k\x00", None, 3, _Text("k1"), ["k"], "lone \ud800", "é"],
    "phase": ["", "p\x00", 3, _Text("p"), "é", "lone \ud800"],
    "reason": ["", "r\x00", 3, _Text("r"), "é"],
    "status": ["SUCCEEDED", None, 3],
    "attempts": [-1, 2**31, True, 1.0, "1", None],
    "error": [ErrorInfo(kind="error", type="E", message="m"), "boom"],
    "output": [{"a": [1, 2]}, math.nan, object(), {1: "x"}, [b"x"], "é", 2**70],
    "started_at": [
        T0.astimezone(timezone(timedelta(hours=2))),
        datetime(2026, 3, 10, 2, 0),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(1, 1, 1, 0, 1, tzinfo=UTC),
        "2026-03-10",
    ],
    "ended_at": [datetime(2026, 3, 10, 2, 0), "x", T0 + timedelta(seconds=1)],
}


def _items_one_by_one(items: list[Item], claimed: str | None) -> Any:
    out, run_id = [], claimed
    for index, item in enumerate(items):
        try:
            stored = admission.admit_item(item)
        except InvalidValue as exc:
            return InvalidValue, f"items[{index}]{exc.field.removeprefix('item')}"
        except (RunlifeError, TypeError) as exc:
            return type(exc), str(exc)
        if run_id is None:
            run_id = stored.run_id
        elif stored.run_id != run_id:
            return InvalidValue, f"items[{index}].run_id"
        out.append(stored)
    return tuple(out)


@pytest.mark.parametrize("claimed", [None, "run-a"])
@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in ODD_ITEM.items() for value in values]
)
def test_one_odd_value_among_plain_items_is_caught(
    name: str, value: Any, claimed: str | None
) -> None:
    """Every odd value, alone in a batch of plain items, is refused or converted
    as the item-by-item check refuses or converts it."""
    items = [
        Item(run_id="run-a", key=f"k{n}", phase="p", status=Status.SUCCEEDED, started_at=T0,
             ended_at=T0, attempts=1, output={"n": n})
        for n in range(3)
    ]  # fmt: skip
    object.__setattr__(items[1], name, value)
    expected = _items_one_by_one(items, claimed)
    try:
        got: Any = admission.admit_items(items, claimed)
    except InvalidValue as exc:
        got = InvalidValue, exc.field
    except (RunlifeError, TypeError) as exc:
        got = type(exc), str(exc)
    assert got == expected


def test_plain_items_come_back_as_given() -> None:
    """A batch of plain items (the runtime's) is admitted as the very items given."""
    items = [Item(run_id="run-a", key=f"k{n}", started_at=T0, attempts=1) for n in range(3)]
    admitted = admission.admit_items(items)
    assert all(a is b for a, b in zip(admitted, items, strict=True))
