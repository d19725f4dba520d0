"""``runlife serve``: its options, and what it says before it listens."""

from __future__ import annotations

from pathlib import Path

import pytest

import runlife.web
from runlife.cli import main


def test_serve_binds_localhost_by_default_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "runs.db"
    db.touch()
    called: list[tuple[object, ...]] = []
    monkeypatch.setattr(
        runlife.web, "serve", lambda *a, **kw: called.append((*a, kw["allow_actions"]))
    )
    assert main(["serve", "--store", f"sqlite:///{db}", "--port", "8123"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8123/ (read only: no actions)" in out
    assert "listening on 127.0.0.1 only" in out
    assert called == [(f"sqlite:///{db}", "127.0.0.1", 8123, False)]
    assert main(["serve", "--store", f"sqlite:///{db}", "--allow-actions"]) == 0
    assert called[-1][-1] is True
    assert "actions allowed" in capsys.readouterr().out


def test_serve_refuses_a_missing_store_and_a_bad_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--store", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["serve", "--store", "memory://", "--port", "-1"]) == 2
    assert "--port" in capsys.readouterr().err
