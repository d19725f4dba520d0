"""Ready-made hooks: `webhook` tells an HTTP endpoint of the runs that need a person.

``AsyncRuntime(hooks=[runlife.hooks.webhook(url)])`` POSTs a JSON object to *url*
each time a run FAILED, and each time a run SUCCEEDED with warnings: what an
escalation (a chat message, a ticket, a page) needs to say what happened
(`payload`). It uses only the standard library (`urllib.request`).

Each call runs in a worker thread of the runtime's hooks (see `runlife.abc.Hooks`),
so a slow endpoint never holds up a run: each try is cut after *timeout*
seconds, a failed try (no answer, a connection error, a 5xx or 429 answer) is
tried again up to *retries* times, half a second apart and doubling; an endpoint
that still fails is logged (``runlife.hooks``, with the URL, the run and the
error) and the run is as it was. Give the runtime a ``hook_timeout`` of at least
``(retries + 1) * (timeout + 5)`` seconds, or it stops waiting for the hook
before its last try (the thread still makes it, and logs its outcome).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

import structlog

from runlife._core.claiming import claimed_by
from runlife._core.run import Run
from runlife.abc import Hooks
from runlife.exceptions import InvalidPolicy

__all__ = ("Webhook", "payload", "webhook")

_RETRIED: Final = frozenset({408, 425, 429})
_log = structlog.get_logger("runlife.hooks")


def _moment(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def payload(run: Run, event: Literal["failure", "warning"]) -> dict[str, Any]:
    """The JSON object `Webhook` posts for *run*: what happened (*event*:
    ``"failure"`` or ``"warning"``), the run's id, job, status, error (its kind,
    type and message; None without one), labels, times (ISO 8601), attempt
    count, the worker that claimed its last attempt (None if unknown), its
    warnings, trigger and parent and root runs.

    >>> from datetime import datetime, UTC
    >>> from runlife import Run
    >>> run = Run.create(job="backup", at=datetime(2026, 3, 10, 2, tzinfo=UTC),
    ...                  labels={"site": "dc1"})
    >>> body = payload(run, "failure")
    >>> body["event"], body["job"], body["status"], body["labels"], body["created_at"]
    ('failure', 'backup', 'PENDING', {'site': 'dc1'}, '2026-03-10T02:00:00+00:00')
    """
    error = run.error
    return {
        "event": event,
        "run_id": run.id,
        "job": run.job,
        "status": str(run.status),
        "error": None
        if error is None
        else {"kind": error.kind, "type": error.type, "message": error.message},
        "labels": dict(run.labels),
        "created_at": _moment(run.created_at),
        "started_at": _moment(run.started_at),
        "ended_at": _moment(run.ended_at),
        "attempts": run.attempt,
        "worker": claimed_by(run),
        "warnings": list(run.warnings),
        "trigger": str(run.trigger),
        "parent_id": run.parent_id,
        "root_id": run.root_id,
    }


class Webhook(Hooks):
    """Hooks that POST `payload` as JSON to *url* when a run FAILED or SUCCEEDED
    with warnings (see the module docstring). Make one with `webhook`."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10,
        retries: int = 3,
        headers: Mapping[str, str] | None = None,
        backoff: float = 0.5,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidPolicy("url", url, "an http:// or https:// URL")
        for field, value in (("timeout", timeout), ("backoff", backoff)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise InvalidPolicy(field, value, "seconds >= 0")
        if not timeout:
            raise InvalidPolicy("timeout", timeout, "seconds > 0")
        if type(retries) is not int or retries < 0:
            raise InvalidPolicy("retries", retries, "an int >= 0")
        if headers is not None and (
            not isinstance(headers, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise InvalidPolicy("headers", headers, "None or a mapping of str to str")
        self.url = url
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def __repr__(self) -> str:
        return f"<Webhook {self.url}>"

    def on_failure(self, run: Run) -> None:
        """POST the failed run's `payload`."""
        self.post(payload(run, "failure"))

    def on_warning(self, run: Run) -> None:
        """POST the `payload` of a run that succeeded with warnings."""
        self.post(payload(run, "warning"))

    def post(self, body: Mapping[str, Any]) -> bool:
        """POST *body* as JSON, trying again after a failed try; whether the
        endpoint took it (a 2xx answer). Blocks: the runtime calls it in a thread."""
        data = json.dumps(body).encode("utf-8")
        tries = self.retries + 1
        for attempt in range(1, tries + 1):
            error, retry = self._try(data)
            if error is None:
                return True
            if not retry or attempt == tries:
                _log.warning(
                    "webhook failed",
                    url=self.url,
                    run_id=body.get("run_id"),
                    job=body.get("job"),
                    tries=attempt,
                    error=error,
                )
                return False
            time.sleep(min(self.backoff * 2 ** (attempt - 1), 5.0))
        return False  # pragma: no cover - the loop returns

    def _try(self, data: bytes) -> tuple[str | None, bool]:
        """One POST: (None, _) if taken, else (what went wrong, whether to retry)."""
        # The scheme is checked at construction: http or https only.
        request = urllib.request.Request(self.url, data=data, headers=self.headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                answer.read()
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code} {exc.reason}", exc.code >= 500 or exc.code in _RETRIED
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return f"{type(reason).__name__}: {reason}", True
        return None, False


def webhook(
    url: str,
    *,
    timeout: float = 10,
    retries: int = 3,
    headers: Mapping[str, str] | None = None,
) -> Webhook:
    """Hooks that POST a JSON `payload` to *url* when a run FAILED, or
    SUCCEEDED with warnings: give them to ``AsyncRuntime(hooks=[...])``.

    Args:
        url: the endpoint (``http://`` or ``https://``).
        timeout: seconds each try may take.
        retries: how many times a failed try (no answer, a 5xx or 429) is made
            again; a 4xx answer is not tried again.
        headers: added to each request (``{"Authorization": "Bearer ..."}``).

    Raises:
        InvalidPolicy: a bad argument, named.

    >>> hook = webhook("https://chat.example.net/hooks/ops", timeout=5, retries=2)
    >>> hook.url, hook.timeout, hook.retries
    ('https://chat.example.net/hooks/ops', 5.0, 2)
    """
    return Webhook(url, timeout=timeout, retries=retries, headers=headers)
