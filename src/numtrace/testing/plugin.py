"""The numtrace pytest plugin: options and fixtures (loaded through its ``pytest11`` entry point).

Options:

- ``--numtrace-update``: write (or rewrite) the golden traces instead of comparing; a golden
  whose every stage the new recording still MATCHes is left as committed (say so).
- ``--numtrace-force-update``: the same, rewriting every golden that is not bit-identical.
- ``--numtrace-golden-dir DIR``: where golden traces live (default ``tests/golden``
  under the rootdir, or ``[tool.numtrace] golden_dir``, relative to the rootdir).
- ``--numtrace-report DIR``: keep the traces, JSON report and message of every
  failing check (and the stages recorded by every failing test), for CI artifacts.

Configuration, in the rootdir's ``pyproject.toml``::

    [tool.numtrace]
    golden_dir = "tests/golden"
    fail_on = "any"                     # any (default: only MATCH passes) | large | small | missing | never
    tolerance = {default = 1e-4, "mel" = {rtol = 1e-3}, "db" = {atol = 0.01}}

Fixtures: ``numtrace`` (records what the test taps; ``check_golden()``,
``check_against(reference)``; see :class:`numtrace.testing.fixture.NumtraceFixture`)
and ``numtrace_tolerances`` (the configured ToleranceTable, or None).

Example (a test file)::

    def test_frontend(numtrace):
        frontend(load_clip())            # taps "frontend.mel", "frontend.db", ...
        numtrace.check_golden()          # tests/golden/test_frontend__test_frontend.safetensors

Importing this module imports pytest and the standard library only; the
compare engine loads when a check runs (or at start-up when pyproject sets
tolerances, to report a bad one at once).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    import tomllib  # type: ignore[import-not-found]  # mypy checks for Python 3.10, which lacks it
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found]  # installed on Python 3.10 only

FAIL_ON = ("large", "small", "missing", "never", "any")
KEYS = ("tolerance", "golden_dir", "fail_on")


@dataclass
class Settings:
    """What the plugin was configured with, plus what it did (for the terminal summary)."""

    rootpath: Path
    invocation_dir: Path
    update: bool
    golden_dir: Path
    report_dir: Path | None
    fail_on: str = "any"
    tolerances: object = None  # a ToleranceTable, or None for numtrace's defaults
    written: list = field(default_factory=list)  # (path, "new" | "changed")
    unchanged: list = field(default_factory=list)
    within: list = field(default_factory=list)  # goldens kept: the new recording matches them within tolerance
    force_update: bool = False
    kept: list = field(default_factory=list)  # report folders written

    def shown(self, path: Path) -> str:
        """``path`` relative to where pytest was started, when it lies below it."""
        try:
            return os.path.relpath(path, self.invocation_dir) if path.is_relative_to(self.invocation_dir) else str(path)
        except ValueError:
            return str(path)


SETTINGS = pytest.StashKey[Settings]()
REPORTS = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("numtrace", "numtrace golden traces")
    group.addoption(
        "--numtrace-update",
        action="store_true",
        default=False,
        help="write or rewrite the golden traces of the tests that call numtrace.check_golden(); "
        "a golden the new recording still matches within tolerance is kept as it is",
    )
    group.addoption(
        "--numtrace-force-update",
        action="store_true",
        default=False,
        help="as --numtrace-update, but rewrite every golden that is not bit-identical, even one "
        "still matched within tolerance",
    )
    group.addoption(
        "--numtrace-golden-dir",
        metavar="DIR",
        default=None,
        help="directory of golden traces (default: [tool.numtrace] golden_dir, else tests/golden under the rootdir)",
    )
    group.addoption(
        "--numtrace-report",
        metavar="DIR",
        default=None,
        help="keep the traces, JSON report and message of failing numtrace checks in DIR",
    )


def pytest_configure(config: pytest.Config) -> None:
    pyproject = config.rootpath / "pyproject.toml"
    section = read_pyproject(pyproject)
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                f"{pyproject}: numtrace ignores unknown [tool.numtrace] key(s) {', '.join(unknown)}; "
                f"it reads {', '.join(KEYS)}"
            ),
            stacklevel=2,
        )
    invocation = Path(config.invocation_params.dir)
    golden_option = config.getoption("numtrace_golden_dir")
    if golden_option:
        golden_dir = invocation / golden_option
    else:
        golden_dir = config.rootpath / section.get("golden_dir", os.path.join("tests", "golden"))
    report_option = config.getoption("numtrace_report")
    settings = Settings(
        rootpath=config.rootpath,
        invocation_dir=invocation,
        update=config.getoption("numtrace_update") or config.getoption("numtrace_force_update"),
        force_update=config.getoption("numtrace_force_update"),
        golden_dir=golden_dir.resolve(),
        report_dir=(invocation / report_option).resolve() if report_option else None,
        fail_on=section.get("fail_on", "any"),
    )
    if "tolerance" in section:
        from ..errors import NumtraceError
        from .tolerances import tolerance_table

        try:
            settings.tolerances = tolerance_table(section["tolerance"], where="[tool.numtrace] tolerance")
        except NumtraceError as err:
            raise pytest.UsageError(f"{config.rootpath / 'pyproject.toml'}: {err}") from None
    config.stash[SETTINGS] = settings


def read_pyproject(path: Path) -> dict:
    """The ``[tool.numtrace]`` table of ``path`` (empty when there is none), checked."""
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as handle:
            section = tomllib.load(handle).get("tool", {}).get("numtrace", {})
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise pytest.UsageError(f"numtrace: cannot read {path}: {err}") from None
    if not isinstance(section, dict):
        raise pytest.UsageError(f"{path}: [tool.numtrace] must be a table")
    fail_on = section.get("fail_on", "any")
    if not isinstance(fail_on, str) or not all(part.strip() in FAIL_ON for part in fail_on.split(",")):
        raise pytest.UsageError(
            f"{path}: [tool.numtrace] fail_on must be one of {', '.join(FAIL_ON)} "
            f"(or several, comma-separated), got {fail_on!r}"
        )
    if "golden_dir" in section and not (isinstance(section["golden_dir"], str) and section["golden_dir"]):
        raise pytest.UsageError(f"{path}: [tool.numtrace] golden_dir must be a non-empty string (a path)")
    return section


@pytest.fixture
def numtrace(request: pytest.FixtureRequest):
    """Record the stages this test taps (in memory); check them against a golden trace.

    The object also offers ``tap``, ``scope`` and ``record`` like the module,
    so a test parameter named ``numtrace`` may shadow ``import numtrace``.

    Example::

        def test_mel(numtrace):
            numtrace.tap("mel", mel_frontend(clip))
            numtrace.check_golden(tolerance={"mel": {"atol": 0.01}})
    """
    from .fixture import NumtraceFixture

    fixture = NumtraceFixture(request.config.stash[SETTINGS], request.node.nodeid, getattr(request.node, "path", None))
    fixture.start()
    try:
        yield fixture
    finally:
        reports = request.node.stash.get(REPORTS, {})
        fixture.finish(failed=any(report.failed for report in reports.values()))


@pytest.fixture(scope="session")
def numtrace_tolerances(pytestconfig: pytest.Config):
    """The ToleranceTable of ``[tool.numtrace] tolerance`` (None when not configured)."""
    return pytestconfig.stash[SETTINGS].tolerances


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(SETTINGS, None)
    if settings is None or not (settings.update or settings.report_dir):
        return []
    lines = [
        f"numtrace: golden traces in {settings.shown(settings.golden_dir)}"
        + (" (update mode: writing them)" if settings.update else "")
    ]
    if settings.report_dir:
        lines.append(f"numtrace: reports of failing checks in {settings.shown(settings.report_dir)}")
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    settings = config.stash.get(SETTINGS, None)
    if settings is None or not (settings.written or settings.unchanged or settings.within or settings.kept):
        return
    terminalreporter.section("numtrace")
    if settings.written or settings.unchanged or settings.within:
        new = sum(1 for _, how in settings.written if how == "new")
        within = (
            (f", {len(settings.within)} kept: still matched within tolerance (--numtrace-force-update rewrites them)")
            if settings.within
            else ""
        )
        terminalreporter.write_line(
            f"golden traces in {settings.shown(settings.golden_dir)}: {len(settings.written)} written "
            f"({new} new, {len(settings.written) - new} changed), {len(settings.unchanged)} unchanged{within}"
        )
        for path, how in settings.written:
            terminalreporter.write_line(f"  {how:<7} {settings.shown(path)}")
        for path in settings.within:
            terminalreporter.write_line(f"  kept    {settings.shown(path)}")
    if settings.kept:
        assert settings.report_dir is not None  # folders are kept only in a report dir
        terminalreporter.write_line(
            f"traces and reports of {len(settings.kept)} failing check(s) kept in {settings.shown(settings.report_dir)}"
        )
        for path in settings.kept:
            terminalreporter.write_line(f"  {settings.shown(path)}")
