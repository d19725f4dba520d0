"""Workflows in the runtime: the driver runs each node when its upstream nodes allow,
skips what can no longer run (naming the upstream run), ends the workflow run as its
nodes decide, resumes after a crash without creating anything twice, and cancels."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

import runlife
from runlife import (
    AsyncRuntime,
    InvalidPolicy,
    InvalidValue,
    JobNotFound,
    Retry,
    Run,
    RunContext,
    Status,
    Trigger,
    TriggerRule,
    Workflow,
)
from runlife.abc import Store
from runlife.exceptions import StoreError
from runlife.stores import MemoryStore, open_store
from runlife.testing import VirtualClock

from .conftest import at

pytestmark = pytest.mark.anyio

S = Status


def make_jobs(*names: str, log: list[str] | None = None, **behaviour: Any) -> list[runlife.Job]:
    """One async job per name: it records its name in *log* and then does what
    *behaviour* says for it (an exception to raise, or a coroutine function)."""

    def make(name: str) -> runlife.Job:
        async def fn(ctx: RunContext, **params: Any) -> Any:
            if log is not None:
                log.append(name)
            what = behaviour.get(name)
            if isinstance(what, BaseException):
                raise what
            if callable(what):
                return await what(ctx, **params)
            return {"node": name, "params": params}

        return runlife.job(name=name, retry=Retry(max_attempts=2, delay=0))(fn)

    return [make(name) for name in names]


async def children(rt: AsyncRuntime, run_id: str) -> dict[str, Run]:
    """The workflow run's children by node (each node at most once: checked)."""
    page = await rt.list_runs(workflow_run_id=run_id, limit=100_000)
    found = [r.job for r in page.runs]
    assert len(found) == len(set(found)), f"a node has two runs: {Counter(found)}"
    return {r.job: r for r in page.runs}


def reason(run: Run) -> str | None:
    return run.history[-1].reason


# -- the shape of a run ------------------------------------------------------------------


async def test_a_diamond_runs_each_node_once_its_upstream_nodes_succeeded(
    clock: VirtualClock, store: MemoryStore
) -> None:
    log: list[str] = []

    async def slow(ctx: RunContext, **params: Any) -> str:
        await clock.sleep(60)
        return "transformed"

    extract, left, right, load = make_jobs("extract", "left", "right", "load", log=log, left=slow)
    etl = Workflow("etl", {extract: [], left: [extract], right: [extract], load: [left, right]})
    async with AsyncRuntime(workflows=[etl], store=store, clock=clock) as rt:
        run = await rt.submit(
            etl, params={"load": {"table": "sales"}}, labels={"site": "dc1"}, priority=5
        )
        assert (run.job, run.status, run.trigger) == ("etl", S.QUEUED, Trigger.ADHOC)
        assert run.params == {"load": {"table": "sales"}}
        done = await rt.wait(run.id)
        nodes = await children(rt, run.id)
        graph = await rt.graph(run.id)

    assert done.status is S.SUCCEEDED
    assert done.result == {"nodes": 4, "succeeded": 4}
    assert done.history[-1].reason == "workflow succeeded"
    assert [a.outcome for a in done.attempts] == ["succeeded"]
    assert (log[0], log[-1]) == ("extract", "load")
    assert sorted(log) == sorted(nodes)
    assert set(nodes) == {"extract", "left", "right", "load"}
    for node, child in nodes.items():
        assert child.status is S.SUCCEEDED
        assert child.workflow_run_id == run.id
        assert child.trigger is Trigger.UPSTREAM
        assert child.idempotency_key == f"{run.id}/{node}"
        assert child.labels == {"site": "dc1"}
        assert child.priority == 5
        assert (child.parent_id, child.root_id) == (None, None)
    assert nodes["load"].params == {"table": "sales"}
    assert nodes["load"].result == {"node": "load", "params": {"table": "sales"}}
    assert nodes["extract"].params == {}
    # load waits for the slow branch: created once both ended, within the same instant.
    assert nodes["left"].ended_at == at(60)
    assert nodes["load"].created_at == at(60)
    assert nodes["right"].created_at == nodes["left"].created_at == at(0)
    assert done.ended_at == at(60)
    assert (graph.run_id, graph.status) == (run.id, S.SUCCEEDED)
    assert graph.statuses == dict.fromkeys(etl.nodes, S.SUCCEEDED)
    assert graph.runs == {node: child.id for node, child in nodes.items()}
    assert graph.explain("load").text == "load is SUCCEEDED"
    assert graph.to_mermaid().count(":::succeeded") == 4
    assert '"load" [label="load\\nSUCCEEDED"' in graph.to_dot()
    assert graph.outcome().status is S.SUCCEEDED


async def test_the_graph_of_a_run_under_way_shows_what_runs_and_what_waits(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async def slow(ctx: RunContext, **params: Any) -> None:
        await clock.sleep(60)

    fetch, report = make_jobs("fetch", "report", fetch=slow)
    wf = Workflow("daily", {fetch: [], report: [fetch]})
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock) as rt:
        run = await rt.submit(wf)
        await clock.sleep(30)
        graph = await rt.graph(run.id)
        await rt.wait(run.id)
    assert graph.status is S.RUNNING
    assert graph.statuses == {"fetch": S.RUNNING, "report": S.PENDING}
    assert set(graph.runs) == {"fetch"}
    assert graph.explain("report").text == "report is waiting on fetch (RUNNING)"
    assert "▶ fetch" in graph.to_text()


async def test_a_failure_skips_what_depends_on_it_naming_the_upstream_run(
    clock: VirtualClock, store: MemoryStore
) -> None:
    log: list[str] = []
    jobs = make_jobs(
        "generate", "send", "archive", "close", "notify", log=log, generate=ValueError("no data")
    )
    generate, send, archive, close, notify = jobs
    billing = Workflow(
        "billing",
        {generate: [], send: [generate], archive: [generate], close: [send, archive], notify: []},
    )
    async with AsyncRuntime(workflows=[billing], store=store, clock=clock) as rt:
        run = await rt.submit(billing)
        done = await rt.wait(run.id)
        nodes = await children(rt, run.id)
        graph = await rt.graph(run.id)

    assert sorted(log) == ["generate", "generate", "notify"]  # two attempts, then FAILED
    assert {n: c.status for n, c in nodes.items()} == {
        "generate": S.FAILED,
        "send": S.SKIPPED,
        "archive": S.SKIPPED,
        "close": S.SKIPPED,
        "notify": S.SUCCEEDED,
    }
    failed = nodes["generate"].id
    assert reason(nodes["send"]) == f"upstream generate (run {failed}) FAILED"
    assert reason(nodes["archive"]) == f"upstream generate (run {failed}) FAILED"
    # A chain of skips leads back to the failure, run by run.
    assert reason(nodes["close"]) == f"upstream send (run {nodes['send'].id}) SKIPPED"
    for skipped in ("send", "archive", "close"):
        child = nodes[skipped]
        assert [(t.from_, t.to) for t in child.history] == [(S.PENDING, S.SKIPPED)]
        assert child.attempts == ()
        assert child.workflow_run_id == run.id
    assert done.status is S.FAILED
    assert done.error is not None
    assert (done.error.kind, done.error.type) == ("error", "WorkflowFailed")
    assert done.error.message == f"failed: generate (run {failed})"
    assert done.history[-1].reason == "workflow failed: generate"
    assert done.result == {"nodes": 5, "failed": 1, "skipped": 3, "succeeded": 1}
    assert graph.explain("close").text == (
        "close was SKIPPED: upstream send SKIPPED, upstream archive SKIPPED"
    )


async def test_a_failure_handler_runs_and_the_workflow_succeeds(
    clock: VirtualClock, store: MemoryStore
) -> None:
    load, alert, publish = make_jobs("load", "alert", "publish", load=RuntimeError("disk full"))
    wf = Workflow(
        "nightly", {load: [], alert: [load], publish: [load]}, rules={alert: "ANY_FAILED"}
    )
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock) as rt:
        done = await rt.wait((await rt.submit(wf)).id)
        nodes = await children(rt, done.id)
    assert {n: c.status for n, c in nodes.items()} == {
        "load": S.FAILED,
        "alert": S.SUCCEEDED,
        "publish": S.SKIPPED,
    }
    assert done.status is S.SUCCEEDED
    assert done.history[-1].reason == "workflow succeeded; failures handled: load"


async def test_trigger_rules_decide_which_nodes_run(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """One workflow where a node fails and another succeeds: each rule runs its node
    or skips it as the rule table says, with the skip's reason naming the rule."""
    jobs = make_jobs(
        "ok", "bad", "done", "all_failed", "any_ok", "any_failed", "none_failed",
        "none_skipped", "always", "after_skip", bad=ValueError("boom"),
    )  # fmt: skip
    ok, bad, done, all_failed, any_ok, any_failed, none_failed, none_skipped, always, after = jobs
    R = TriggerRule
    wf = Workflow(
        "rules",
        {
            ok: [], bad: [], done: [ok, bad], all_failed: [ok, bad], any_ok: [ok, bad],
            any_failed: [ok, bad], none_failed: [ok, bad], none_skipped: [ok, bad],
            always: [ok, bad], after: [all_failed, ok],
        },
        rules={
            done: R.ALL_DONE, all_failed: R.ALL_FAILED, any_ok: R.ANY_SUCCEEDED,
            any_failed: R.ANY_FAILED, none_failed: R.NONE_FAILED,
            none_skipped: R.NONE_SKIPPED, always: R.ALWAYS, after: R.NONE_SKIPPED,
        },
    )  # fmt: skip
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(wf)).id)
        nodes = await children(rt, run.id)
    assert {n: c.status for n, c in nodes.items()} == {
        "ok": S.SUCCEEDED,
        "bad": S.FAILED,
        "done": S.SUCCEEDED,
        "all_failed": S.SKIPPED,
        "any_ok": S.SUCCEEDED,
        "any_failed": S.SUCCEEDED,
        "none_failed": S.SKIPPED,
        "none_skipped": S.SUCCEEDED,
        "always": S.SUCCEEDED,
        "after_skip": S.SKIPPED,
    }
    assert reason(nodes["all_failed"]) == (
        f"upstream ok (run {nodes['ok'].id}) SUCCEEDED; ALL_FAILED needs every upstream "
        "node to fail"
    )
    assert reason(nodes["none_failed"]) == (
        f"upstream bad (run {nodes['bad'].id}) FAILED; NONE_FAILED needs every upstream "
        "node to succeed or be skipped"
    )
    assert reason(nodes["after_skip"]) == (
        f"upstream all_failed (run {nodes['all_failed'].id}) SKIPPED; NONE_SKIPPED needs "
        "every upstream node to finish without being skipped"
    )
    # ALWAYS starts with the roots; the others wait for both upstream nodes.
    assert nodes["always"].created_at == nodes["ok"].created_at
    # bad's failure is handled by any_failed: the workflow run succeeds.
    assert run.status is S.SUCCEEDED


async def test_a_workflow_run_for_later_a_direct_node_and_a_retry(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A workflow run submitted for later starts then; a node whose job is declared
    ``queued=False`` starts RUNNING at once; retrying a failed workflow run makes a
    new one (trigger RETRY) that runs every node again."""
    attempts = iter([ValueError("flaky"), None])

    async def flaky(ctx: RunContext, **params: Any) -> None:
        error = next(attempts)
        if error is not None:
            raise error

    @runlife.job(queued=False)
    async def promote(ctx: RunContext) -> str:
        return "promoted"

    (build,) = make_jobs("build", build=flaky)
    build = runlife.job(name="build")(build.fn)  # one attempt: the first run fails
    wf = Workflow("release", {build: [], promote: [build]})
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock) as rt:
        later = await rt.submit(wf, at=at(3600))
        assert later.status is S.PENDING
        failed = await rt.wait(later.id)
        again = await rt.retry(failed.id)
        done = await rt.wait(again.id)
        first, second = await children(rt, failed.id), await children(rt, again.id)
    assert failed.status is S.FAILED
    assert first["build"].started_at == at(3600)  # claimed as soon as it was queued
    assert first["promote"].status is S.SKIPPED
    assert (again.trigger, again.parent_id, again.root_id) == (Trigger.RETRY, failed.id, failed.id)
    assert done.status is S.SUCCEEDED
    assert second["promote"].result == "promoted"
    # Started at once, without waiting in QUEUED.
    assert [t.to for t in second["promote"].history][:1] == [S.RUNNING]
    assert {r.id for r in first.values()}.isdisjoint(r.id for r in second.values())


# -- params, refusals --------------------------------------------------------------------


async def test_params_are_checked_per_node_at_submit(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job
    async def backup(ctx: RunContext, devices: list[str]) -> int:
        return len(devices)

    (report,) = make_jobs("report")
    wf = Workflow("nightly", {backup: [], report: [backup]})
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock) as rt:
        with pytest.raises(InvalidValue) as missing:
            await rt.submit(wf)
        assert missing.value.field == "params.backup.devices"
        with pytest.raises(InvalidValue) as unknown:
            await rt.submit(wf, params={"backup": {"devices": []}, "restore": {}})
        assert unknown.value.field == "params['restore']"
        assert "has the nodes backup, report" in str(unknown.value)
        with pytest.raises(InvalidValue) as flat:
            await rt.submit(wf, params={"backup": ["core-rtr-01"]})
        assert flat.value.field == "params.backup"
        assert (await rt.list_runs()).runs == ()
        run = await rt.submit(wf, params={"backup": {"devices": ["a", "b"]}})
        done = await rt.wait(run.id)
        nodes = await children(rt, run.id)
    assert done.status is S.SUCCEEDED
    assert nodes["backup"].result == 2


async def test_a_workflow_where_a_job_is_expected_is_refused(
    clock: VirtualClock, store: MemoryStore
) -> None:
    first, second = make_jobs("first", "second")
    wf = Workflow("pair", {first: [], second: [first]})
    with pytest.raises(InvalidPolicy) as as_job:
        AsyncRuntime(jobs=[wf], store=store, clock=clock)  # type: ignore[list-item]
    assert as_job.value.field == "jobs"
    assert "a workflow goes in workflows=[...]" in str(as_job.value)
    with pytest.raises(InvalidPolicy) as as_workflow:
        AsyncRuntime(workflows=[first], store=store, clock=clock)  # type: ignore[list-item]
    assert "a job goes in jobs=[...]" in str(as_workflow.value)
    with pytest.raises(InvalidPolicy) as clash:
        AsyncRuntime(jobs=[runlife.job(name="pair")(first.fn)], workflows=[wf], store=store)
    assert clash.value.value == "pair"
    nested = Workflow("outer", {"pair": [], second: ["pair"]})
    with pytest.raises(InvalidPolicy) as inside:
        AsyncRuntime(workflows=[wf, nested], store=store, clock=clock)
    assert "node 'pair' is a workflow" in str(inside.value)

    async with AsyncRuntime(workflows=[wf], store=store, clock=clock) as rt:
        with pytest.raises(InvalidValue) as many:
            await rt.submit_many(wf, [{}])  # type: ignore[arg-type]
        assert "'pair' is a workflow: submit each of its runs with submit" in str(many.value)
        job_run = await rt.wait((await rt.submit(first)).id)
        with pytest.raises(InvalidValue) as not_a_workflow:
            await rt.graph(job_run.id)
        assert "run of job 'first'" in str(not_a_workflow.value)
        run = await rt.wait((await rt.submit("pair")).id)  # by name
        child = (await children(rt, run.id))["first"]
        with pytest.raises(InvalidValue) as child_graph:
            await rt.graph(child.id)
        assert f"node 'first' of workflow run {run.id}" in str(child_graph.value)
        with pytest.raises(InvalidValue) as other_graph:
            await rt.submit(Workflow("pair", {first: []}))
        assert "not another graph" in str(other_graph.value)
        with pytest.raises(InvalidValue) as job_named:
            await rt.submit(Workflow("first", {second: []}))
        assert "'first' is the name of a job" in str(job_named.value)
    assert run.status is S.SUCCEEDED


async def test_a_node_nobody_can_run_is_refused_at_submit(
    clock: VirtualClock, store: MemoryStore
) -> None:
    (extract,) = make_jobs("extract")
    wf = Workflow("etl", {extract: [], "load": [extract]})
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock) as rt:
        with pytest.raises(JobNotFound) as caught:
            await rt.submit(wf)
        assert caught.value.job == "load"
        assert (await rt.list_runs()).runs == ()


# -- across runtimes, crashes ------------------------------------------------------------


async def test_a_runtime_without_the_workflow_drives_it_from_its_record(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """The workflow's record holds its graph: a runtime that has only the jobs
    submits the workflow by name and drives it."""
    split, merge = make_jobs("split", "merge")
    wf = Workflow("mapreduce", {split: [], merge: [split]})
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock):
        pass  # saves the workflow's record
    async with AsyncRuntime(jobs=[split, merge], store=store, clock=clock) as rt:
        run = await rt.submit("mapreduce")
        done = await rt.wait(run.id)
        graph = await rt.graph(run.id)
        held = rt.driver.held
    assert done.status is S.SUCCEEDED
    assert graph.workflow == wf
    assert held == frozenset()


async def test_a_runtime_that_stops_hands_its_workflow_runs_back(
    clock: VirtualClock, store: MemoryStore
) -> None:
    log: list[str] = []

    async def slow(ctx: RunContext, **params: Any) -> None:
        await clock.sleep(60)

    first, second = make_jobs("first", "second", log=log, first=slow)
    wf = Workflow("two", {first: [], second: [first]})
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock, grace=0) as rt:
        run = await rt.submit(wf)
        await clock.sleep(10)
    handed_back = await store.get_run(run.id)
    assert handed_back.status is S.QUEUED
    assert handed_back.attempts[0].outcome == "interrupted"
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock) as rt:
        done = await rt.wait(run.id)
        nodes = await children(rt, run.id)
    assert done.status is S.SUCCEEDED
    assert [a.outcome for a in done.attempts] == ["interrupted", "succeeded"]
    assert log == ["first", "first", "second"]  # first was interrupted too
    assert [a.outcome for a in nodes["first"].attempts] == ["interrupted", "succeeded"]


class Severable:
    """A store that a runtime loses all at once, as when its process is killed:
    once `sever` is called, every call fails."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.url = store.url
        self.severed = False

    def sever(self) -> None:
        self.severed = True

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.severed:
                raise StoreError("the process is gone")
            return await attr(*args, **kwargs)

        return call


def crash(rt: AsyncRuntime, store: Severable) -> None:
    """Leave *rt* as a killed process would: it writes nothing more, its attempts
    and its driver stop where they are."""
    store.sever()
    rt.worker.abort()
    assert rt._services is not None
    rt._services.cancel()


async def test_after_a_crash_another_runtime_completes_the_workflow(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """The runtime dies with one branch done, one running and the join not created;
    a new runtime reaps the workflow run and the running child, resumes the workflow
    from its children and completes it: every node has one run."""
    log: list[str] = []

    async def slow(ctx: RunContext, **params: Any) -> None:
        await clock.sleep(60)

    jobs = make_jobs("start", "quick", "slow", "join", log=log, slow=slow)
    start, quick, slow_job, join = jobs
    wf = Workflow(
        "diamond", {start: [], quick: [start], slow_job: [start], join: [quick, slow_job]}
    )
    severable = Severable(store)
    first = AsyncRuntime(workflows=[wf], store=severable, clock=clock, lease=30)  # type: ignore[arg-type]
    async with first:
        run = await first.submit(wf)
        await clock.sleep(30)
        before = await children(first, run.id)
        crash(first, severable)
        assert {n: c.status for n, c in before.items()} == {
            "start": S.SUCCEEDED,
            "quick": S.SUCCEEDED,
            "slow": S.RUNNING,
        }
        async with AsyncRuntime(workflows=[wf], store=store, clock=clock, lease=30) as second:
            done = await second.wait(run.id)
            nodes = await children(second, run.id)
    assert done.status is S.SUCCEEDED
    assert [a.outcome for a in done.attempts] == ["abandoned", "succeeded"]
    assert set(nodes) == {"start", "quick", "slow", "join"}
    assert {n: c.id for n, c in nodes.items() if n in before} == {
        n: c.id for n, c in before.items()
    }
    assert [a.outcome for a in nodes["slow"].attempts] == ["abandoned", "succeeded"]
    assert Counter(log) == {"start": 1, "quick": 1, "slow": 2, "join": 1}
    # Taken over within lease + reaper interval of the last heartbeat.
    assert done.attempts[1].started_at is not None
    assert done.attempts[1].started_at <= at(30 + 30 + 10)


async def test_a_driver_lost_while_creating_children_creates_none_twice(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """The store as a driver leaves it when it dies halfway through creating a step's
    children (one of three fan-out nodes created): the next driver creates the two
    others, and the one that exists runs once."""
    log: list[str] = []
    root, a, b, c = make_jobs("root", "a", "b", "c", log=log)
    wf = Workflow("fan", {root: [], a: [root], b: [root], c: [root]})
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock) as setup:
        pass  # the records
    del setup
    lifecycle = runlife.DEFAULT_LIFECYCLE
    queued = lifecycle.transition(
        Run.create(job="fan", at=clock.now()), S.QUEUED, at=clock.now(), reason="submitted"
    )
    wf_run = await store.create_run(attrs_version0(queued))
    (claim,) = await store.claim("dead-driver", {"fan": lifecycle}, limit=1, lease=30)

    def child(node: str) -> Run:
        made = Run.create(
            job=node,
            at=clock.now(),
            trigger=Trigger.UPSTREAM,
            workflow_run_id=wf_run.id,
            idempotency_key=f"{wf_run.id}/{node}",
        )
        return attrs_version0(lifecycle.transition(made, S.QUEUED, at=clock.now()))

    root_run = await store.create_run(child("root"))
    (held,) = await store.claim("dead-worker", {"root": lifecycle}, limit=1, lease=30)
    await store.update_run(
        lifecycle.transition(held.run, S.SUCCEEDED, at=clock.now()),
        expected_version=held.run.version,
        claim=held,
    )
    a_run = await store.create_run(child("a"))
    assert claim.run.id == wf_run.id

    async with AsyncRuntime(workflows=[wf], store=store, clock=clock, lease=30) as rt:
        done = await rt.wait(wf_run.id)
        nodes = await children(rt, wf_run.id)
    assert done.status is S.SUCCEEDED
    assert set(nodes) == {"root", "a", "b", "c"}
    assert (nodes["root"].id, nodes["a"].id) == (root_run.id, a_run.id)
    assert Counter(log) == {"a": 1, "b": 1, "c": 1}  # root ran before the crash
    assert all(n.status is S.SUCCEEDED for n in nodes.values())


def attrs_version0(run: Run) -> Run:
    import attrs

    return attrs.evolve(run, version=0)


# -- cancelling ------------------------------------------------------------------------


async def test_cancelling_a_workflow_run_cancels_its_live_children(
    clock: VirtualClock, store: MemoryStore
) -> None:
    log: list[str] = []

    async def slow(ctx: RunContext, **params: Any) -> None:
        await clock.sleep(600)

    extract, left, right, load = make_jobs(
        "extract", "left", "right", "load", log=log, left=slow, right=slow
    )
    wf = Workflow("etl", {extract: [], left: [extract], right: [extract], load: [left, right]})
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock) as rt:
        run = await rt.submit(wf)
        await clock.sleep(30)
        cancelled = await rt.cancel(run.id, reason="wrong day")
        await clock.sleep(30)
        nodes = await children(rt, run.id)
        graph = await rt.graph(run.id)
        assert rt.driver.held == frozenset()
    assert cancelled.status is S.CANCELLED
    assert {n: c.status for n, c in nodes.items()} == {
        "extract": S.SUCCEEDED,
        "left": S.CANCELLED,
        "right": S.CANCELLED,
    }
    for node in ("left", "right"):
        error = nodes[node].error
        assert error is not None
        assert (
            error.message
            == f"cancelled by {rt.worker_id}: workflow run {run.id} cancelled: wrong day"
        )
    assert graph.statuses["load"] is S.CANCELLED  # never started: it has no run
    assert "load" not in graph.runs
    assert (log[0], sorted(log[1:])) == ("extract", ["left", "right"])


async def test_a_cancelled_node_skips_what_needs_it_and_the_workflow_ends_cancelled(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async def slow(ctx: RunContext, **params: Any) -> None:
        await clock.sleep(600)

    fetch, parse, cleanup = make_jobs("fetch", "parse", "cleanup", fetch=slow)
    wf = Workflow(
        "ingest", {fetch: [], parse: [fetch], cleanup: [parse]}, rules={cleanup: "ALL_DONE"}
    )
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock) as rt:
        run = await rt.submit(wf)
        await clock.sleep(30)
        fetching = (await children(rt, run.id))["fetch"]
        await rt.cancel(fetching.id, reason="source down")
        done = await rt.wait(run.id)
        nodes = await children(rt, run.id)
    assert {n: c.status for n, c in nodes.items()} == {
        "fetch": S.CANCELLED,
        "parse": S.SKIPPED,
        "cleanup": S.SUCCEEDED,
    }
    assert reason(nodes["parse"]) == f"upstream fetch (run {fetching.id}) CANCELLED"
    assert done.status is S.CANCELLED
    assert done.error is not None
    assert done.error.message == f"cancelled: fetch (run {fetching.id})"


# -- size ------------------------------------------------------------------------------


async def test_a_chain_of_a_thousand_links(clock: VirtualClock, store: MemoryStore) -> None:
    jobs = make_jobs(*(f"step{i:04d}" for i in range(1000)))
    chain = Workflow("chain", {job: [jobs[i - 1]] if i else [] for i, job in enumerate(jobs)})
    async with AsyncRuntime(workflows=[chain], store=store, clock=clock) as rt:
        done = await rt.wait((await rt.submit(chain)).id)
        nodes = await children(rt, done.id)
    assert done.status is S.SUCCEEDED
    assert done.result == {"nodes": 1000, "succeeded": 1000}
    assert len(nodes) == 1000
    order = sorted(nodes.values(), key=lambda r: (r.created_at, r.id))
    assert [r.job for r in order] == [job.name for job in jobs]


# On asyncio only: it takes a while, and the chain above runs on both backends.
# `python -m benchmarks workflow` runs the same shape with 10,000 parts, timed.
@pytest.mark.parametrize("anyio_backend", [("asyncio", {})], ids=["asyncio"])
async def test_a_fan_out_and_in_of_thousands_of_nodes(
    clock: VirtualClock, store: MemoryStore
) -> None:
    n = 2_500
    jobs = make_jobs("split", *(f"part{i:05d}" for i in range(n)), "merge")
    split, parts, merge = jobs[0], jobs[1:-1], jobs[-1]
    graph: dict[runlife.Job, list[runlife.Job]] = {split: [], **{p: [split] for p in parts}}
    graph[merge] = parts
    wf = Workflow("fan", graph)
    async with AsyncRuntime(workflows=[wf], store=store, clock=clock, concurrency=64) as rt:
        done = await rt.wait((await rt.submit(wf)).id)
        nodes = await children(rt, done.id)
    assert done.status is S.SUCCEEDED
    assert done.result == {"nodes": n + 2, "succeeded": n + 2}
    assert len(nodes) == n + 2
    assert nodes["merge"].created_at >= max(nodes[p.name].ended_at for p in parts)  # type: ignore[type-var]


# -- the SQL stores --------------------------------------------------------------------


async def run_a_diamond(store: Store) -> tuple[Run, dict[str, Run]]:
    extract, left, right, load = make_jobs("extract", "left", "right", "load", right=KeyError("x"))
    wf = Workflow(
        "etl", {extract: [], left: [extract], right: [extract], load: [left, right]},
        rules={load: "ALL_DONE"},
    )  # fmt: skip
    async with AsyncRuntime(workflows=[wf], store=store) as rt:
        done = await rt.wait((await rt.submit(wf)).id, timeout=30)
        return done, await children(rt, done.id)


async def test_on_sqlite(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        done, nodes = await run_a_diamond(store)
    assert done.status is S.FAILED
    assert {n: c.status for n, c in nodes.items()} == {
        "extract": S.SUCCEEDED, "left": S.SUCCEEDED, "right": S.FAILED, "load": S.SUCCEEDED,
    }  # fmt: skip


async def test_on_postgresql(pg_url: str) -> None:
    async with open_store(pg_url) as store:
        done, nodes = await run_a_diamond(store)
    assert done.status is S.FAILED
    assert {n: c.status for n, c in nodes.items()} == {
        "extract": S.SUCCEEDED, "left": S.SUCCEEDED, "right": S.FAILED, "load": S.SUCCEEDED,
    }  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


async def test_after_a_crash_on_a_sql_store(sql_url: str) -> None:
    """The crash above, in real time with a one-second lease, on SQLite and
    PostgreSQL: the store's clock judges the leases."""
    log: list[str] = []

    async def slow(ctx: RunContext, **params: Any) -> None:
        await anyio.sleep(1.5)

    start, quick, slow_job, join = make_jobs("start", "quick", "slow", "join", log=log, slow=slow)
    wf = Workflow(
        "diamond", {start: [], quick: [start], slow_job: [start], join: [quick, slow_job]}
    )
    async with open_store(sql_url) as store:
        severable = Severable(store)
        first = AsyncRuntime(workflows=[wf], store=severable, lease=1, poll=0.2, grace=0)  # type: ignore[arg-type]
        async with first:
            run = await first.submit(wf)
            with anyio.fail_after(10):
                while "slow" not in log:
                    await anyio.sleep(0.05)
            crash(first, severable)
            async with AsyncRuntime(workflows=[wf], store=store, lease=1, poll=0.2) as second:
                done = await second.wait(run.id, timeout=20)
                nodes = await children(second, run.id)
    assert done.status is S.SUCCEEDED
    assert [a.outcome for a in done.attempts] == ["abandoned", "succeeded"]
    assert {n: c.status for n, c in nodes.items()} == dict.fromkeys(wf.nodes, S.SUCCEEDED)
    assert [a.outcome for a in nodes["slow"].attempts] == ["abandoned", "succeeded"]
    assert Counter(log) == {"start": 1, "quick": 1, "slow": 2, "join": 1}
