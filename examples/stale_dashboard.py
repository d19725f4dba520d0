"""Why is this dashboard stale? A workflow of the jobs behind it, asked the operators'
questions: what is it waiting on, what failed upstream, which step is the bottleneck.

Run it with ``python examples/stale_dashboard.py``. Pure: the statuses are given.
"""

from __future__ import annotations

from runlife import Status, TriggerRule, Workflow

flow = Workflow(
    "dashboards",
    {
        "sync_source": [],
        "refresh_model": ["sync_source"],
        "publish_semantic_model": ["refresh_model"],
        "refresh_dashboard": ["publish_semantic_model"],
        "export_pdf": ["refresh_dashboard"],
        "notify_on_failure": ["refresh_dashboard", "export_pdf"],
    },
    rules={"notify_on_failure": TriggerRule.ANY_FAILED},
)

# The lineage of the dashboard: everything that feeds it.
print("feeds the dashboard:", ", ".join(flow.upstream("refresh_dashboard")))

# A run of the workflow, followed incrementally as its nodes finish.
resolver = flow.resolver()
print("ready first:", resolver.initial)
step = resolver.complete("sync_source", Status.SUCCEEDED)
print("after the sync:", step.ready)
print(resolver.explain("refresh_dashboard").text)

step = resolver.complete("refresh_model", Status.FAILED)
for skipped in step.skipped:
    print(f"skipped {skipped.node}: {skipped.reason}")
print("ready now:", step.ready)
print(flow.to_text(resolver.statuses, running=step.ready))

# From the durations of the last runs: which step makes the dashboard late?
path = flow.critical_path(
    {
        "sync_source": 240,
        "refresh_model": 1500,
        "publish_semantic_model": 90,
        "refresh_dashboard": 120,
        "export_pdf": 45,
    }
)
print(f"critical path: {' -> '.join(path.nodes)} ({path.duration}); bottleneck {path.bottleneck}")
print()
print(flow.to_mermaid(resolver.statuses))
