"""The runtime: the only layer of runlife that awaits and sleeps.

One small module per service, assembled by `runtime.AsyncRuntime`:

* `guard` — every service reaches the store through a `StoreGuard`, which marks
  each call busy for the clock and rides out store outages with backoff;
* `worker` — claims runs, runs their attempts on executors, heartbeats their
  leases, cuts them at their deadlines and applies the retry policy;
* `mover` — moves runs whose wait is over (a retry delay, a start time) and
  cancels runs that waited in QUEUED past their limit;
* `reaper` — fails (or retries) the attempts of workers that were lost;
* `scheduler` — fires cron and interval schedules, once per slot across processes;
* `hooks` — calls the host's hooks for each move the guard saw stored, from a task
  and a bounded queue of its own, each call cut at its timeout.
* `driver` — drives workflow runs: creates each node's run as its trigger rule
  allows, ends the workflow run, resumes those of a lost driver.

`blocking` holds `blocking.Runtime`, the blocking twin of `runtime.AsyncRuntime`
for hosts that are not async. `job` holds the ``@runlife.job`` decorator, `context`
the `RunContext` a job function receives, `items` the items inside runs
(``ctx.item``, ``ctx.map``), `waiting` how an attempt waits for a signal
(``ctx.wait_for``, the WAITING status), `jobs` what a runtime knows of its own jobs
and of the others' stored specs, and `wake` the wake-ups the services wait on.
"""
