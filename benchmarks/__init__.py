"""runlife's benchmarks: ``python -m benchmarks [name ...]`` or ``nox -s bench``.

Each ``bench_*.py`` module here defines ``run(report)``; it measures and calls
``report.figure(...)`` with the figure and its target, measured in the same run
wherever the target is a ratio. Figures are printed, never asserted by the tests.
"""
