"""Development sessions: ``nox`` runs lint, typecheck and tests; ``nox -s docs examples
bench`` runs the rest. Every session installs runlife with its ``dev`` extra."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
LINTED = ["src", "tests", "benchmarks", "examples", "docs/conf.py", "noxfile.py"]


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite; extra arguments go to pytest (``nox -s tests -- -k lifecycle``)."""
    _install(session)
    session.run("pytest", "-n", "auto", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    _install(session)
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy, strict, on src/."""
    _install(session)
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The Sphinx site, warning-free, into docs/_build/html."""
    _install(session)
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html",
        *session.posargs,
    )  # fmt: skip


@nox.session(python=PYTHON)
def examples(session: nox.Session) -> None:
    """Run every script in examples/."""
    _install(session)
    scripts = sorted(Path("examples").glob("*.py"))
    if not scripts:
        session.error("no examples found in examples/")
    for script in scripts:
        session.run("python", str(script))


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmarks; name some to run only those (``nox -s bench -- lifecycle``)."""
    _install(session)
    session.run("python", "-m", "benchmarks", *session.posargs)
