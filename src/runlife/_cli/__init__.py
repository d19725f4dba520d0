"""The ``runlife`` command, one small module per concern.

* `app` — the parser, the store it opens (``--store``, ``$RUNLIFE_STORE``), errors
  as one line and exit status 2, the entry point;
* `args` — the values read from arguments (spans, moments, statuses, labels, JSON);
* `render` — the terminal: colours, tables that fit the width, JSON output;
* `jsonform` — the JSON form of runlife values (``--json``);
* `runs` — ``runs``, ``show``, ``items``, ``explain``, ``graph``, ``watch``;
* `logs` — ``logs``;
* `jobs` — ``jobs``, ``pause``, ``unpause``, ``summary``, ``purge``;
* `act` — ``cancel``, ``retry``, ``rerun``, ``resume``, ``signal``;
* `worker` — ``worker``, which runs a host's jobs.

An operator's command opens ``AsyncRuntime(store=..., serve=False)`` and uses
its verbs; nothing here reads a store by itself.
"""
