"""walsim's pytest plugin: scenario files as tests, and fixtures for clusters,
network faults and disk faults.

Installed walsim (``make install``, ``pip install``, the Debian package)
registers it through the ``pytest11`` entry point ``walsim``, so a project
writes no glue::

    pytest --walsim-scenarios scenarios/ --junitxml=results.xml

collects every ``*.toml`` file of ``scenarios/`` as one test item that runs
the scenario and fails when a verdict is FAIL or ERROR (the verdict table,
the report's path and the command that reproduces the run in the failure
text; the report path, run directory, seed and reproduce command as JUnit
properties).  Options (also in the ``[pytest]`` ini section as
``walsim_scenarios``, ``walsim_seed``, ``walsim_out``):

``--walsim-scenarios DIR|FILE``
    a directory of scenario files, or one file (repeatable);
``--walsim-seed N``
    run every scenario with this root seed instead of its own;
``--walsim-out DIR``
    the parent of the run directories (default ``walsim-runs`` in the
    directory pytest was started from), with ``index.html`` listing them.

``pytest -n N`` (pytest-xdist) is safe: run directories are created
atomically, nodes and netd links take ports from the shared allocator, and
``index.html`` is rewritten under a lock.

Fixtures (documented in ``docs/pytest.md``): ``cluster`` and
``cluster_factory`` (:mod:`walsim.pg.testing`), ``netd`` and ``netd_factory``
(a running walsim-netd), ``disk_faults`` (the disk fault layer under a node),
``walsim_seed``.  Every server, daemon and rule a fixture set up is torn down
when the test ends, whether it passed, failed or was interrupted; the logs of
a failed test are kept and their path printed.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from walsim.api import load_scenario, run_scenario
from walsim.core.errors import ScenarioError
from walsim.run.engine import new_rundir
from walsim.sim.disk import DiskFaults
from walsim.sim.netd import Netd

# cluster, cluster_factory, pg_bin, port_allocator, walsim_run_dir, --walsim-workdir, --walsim-keep
pytest_plugins = ["walsim.pg.testing"]

_SCENARIOS_KEY = pytest.StashKey[list[Path]]()
_OUT_KEY = pytest.StashKey[Path]()
_SEED_KEY = pytest.StashKey["int | None"]()


def _seed(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise pytest.UsageError(f"--walsim-seed {text!r}: not an integer") from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("walsim", "walsim PostgreSQL clusters")
    group.addoption("--walsim-scenarios", action="append", default=[], metavar="DIR",
                    help="collect every *.toml scenario file of DIR (or the file DIR) as a test; repeatable")
    group.addoption("--walsim-seed", default=None, metavar="N",
                    help="root seed of every scenario run (default: each scenario's own seed)")
    group.addoption("--walsim-out", default=None, metavar="DIR",
                    help="where run directories go (default: walsim-runs in the invocation directory)")
    parser.addini("walsim_scenarios", "scenario directories or files collected as tests", type="paths",
                  default=[])
    parser.addini("walsim_seed", "root seed of every scenario run", default="")
    parser.addini("walsim_out", "where scenario run directories go", default="")


def _option_or_ini(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"--walsim-{name}")
    if value:
        return str(value)
    ini = config.getini(f"walsim_{name}")
    return str(ini) if ini else None


def pytest_configure(config: pytest.Config) -> None:
    invocation = Path(config.invocation_params.dir)
    given = [invocation / p for p in config.getoption("--walsim-scenarios")]
    given += [Path(p) for p in config.getini("walsim_scenarios")]  # relative to the ini file
    scenarios: list[Path] = []
    for p in given:
        p = p.resolve()
        if not p.exists():
            raise pytest.UsageError(f"--walsim-scenarios {p}: no such file or directory")
        if p.is_file() and p.suffix != ".toml":
            raise pytest.UsageError(f"--walsim-scenarios {p}: not a .toml scenario file")
        if p.is_dir() and not any(p.glob("*.toml")):
            raise pytest.UsageError(f"--walsim-scenarios {p}: no *.toml scenario file in this directory")
        scenarios.append(p)
    config.stash[_SCENARIOS_KEY] = scenarios
    seed = _option_or_ini(config, "seed")
    config.stash[_SEED_KEY] = _seed(seed) if seed is not None else None
    config.addinivalue_line("markers", "pg: starts real PostgreSQL servers (walsim)")
    out = _option_or_ini(config, "out")
    config.stash[_OUT_KEY] = (invocation / out).resolve() if out else invocation / "walsim-runs"
    # Make sure the scenario files are visited by collection even when they
    # lie outside the paths given on the command line.
    if not hasattr(config, "args"):  # --help, --version
        return
    args = [Path(a.split("::")[0]).resolve() for a in config.args]
    for p in scenarios:
        if not any(p == a or a in p.parents for a in args):
            config.args.append(str(p))


def _wanted(config: pytest.Config, path: Path) -> bool:
    p = path.resolve()
    for s in config.stash.get(_SCENARIOS_KEY, []):
        if p == s or (s.is_dir() and p.parent == s):
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".toml" and _wanted(parent.config, file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """A scenario file: one item, named after the scenario."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            raise self.CollectError(f"invalid scenario file {self.path}:\n{exc}") from None
        yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)


class ScenarioFailed(Exception):
    """A scenario run whose exit status is not 0 (its text is the failure report)."""


class ScenarioItem(pytest.Item):
    """Runs one scenario; passes when every verdict is PASS or INFO."""

    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.add_marker(pytest.mark.pg)

    def runtest(self) -> None:
        seed = self.config.stash.get(_SEED_KEY, None)
        out = self.config.stash[_OUT_KEY]
        rundir = new_rundir(out, self.scenario.name, self.scenario.seed if seed is None else seed)
        self.user_properties += [("walsim_rundir", str(rundir)), ("walsim_report", str(rundir / "report.html"))]
        result = run_scenario(self.scenario, seed=seed, out=out, rundir=rundir, argv_file=str(self.path))
        self.user_properties += [("walsim_seed", str(result.seed)), ("walsim_reproduce", result.reproduce),
                                 ("walsim_exit_status", str(result.exit_status))]
        table = "\n".join(f"  {v.result:<5} {v.name}: {v.summary}" for v in result.verdicts)
        self.add_report_section("call", "walsim verdicts", f"{table}\nreport: {rundir / 'report.html'}")
        if not result.verdicts:
            raise ScenarioFailed(f"{self.scenario.name}: the scenario declares no verdict, which proves nothing\n"
                                 f"report: {rundir / 'report.html'}")
        if result.exit_status != 0:
            raise ScenarioFailed(
                f"{self.scenario.name} (seed {result.seed}): exit status {result.exit_status}\n{table}\n"
                f"report: {rundir / 'report.html'}\nreproduce with: {result.reproduce}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario {self.scenario.name}"


# ------------------------------------------------------------------ fixtures

@pytest.fixture
def walsim_seed(request: pytest.FixtureRequest) -> int:
    """``--walsim-seed`` (or ``walsim_seed`` in the ini file), else 0: the seed
    that fixtures hand to walsim-netd and the disk layer."""
    value = request.config.stash.get(_SEED_KEY, None)
    return 0 if value is None else int(value)


def _failed(item: pytest.Item) -> bool:
    """Did the test's setup or call fail (or was it interrupted)?  Reports are
    recorded by :mod:`walsim.pg.testing`'s report hook."""
    setup = getattr(item, "_walsim_report_setup", None)
    call = getattr(item, "_walsim_report_call", None)
    if setup is not None and setup.failed:
        return True
    if call is None:
        return setup is not None and setup.passed
    return bool(call.failed)


@pytest.fixture
def netd_factory(request: pytest.FixtureRequest, walsim_run_dir: Path,
                 walsim_seed: int) -> Iterator[Callable[..., Netd]]:
    """``netd_factory(**kwargs)`` starts a walsim-netd (keyword arguments of
    :meth:`walsim.sim.netd.Netd.start`; ``seed`` defaults to ``walsim_seed``).
    Every daemon is stopped when the test ends; for a failed test its log and
    trace are kept and their path printed."""
    started: list[Netd] = []

    def make(**kwargs: Any) -> Netd:
        kwargs.setdefault("seed", walsim_seed)
        workdir = Path(f"{walsim_run_dir}/netd-{os.getpid()}-{len(started)}-{_short(request.node.name)}")
        if len(str(workdir / "netd.sock")) > 100:  # sun_path holds 108 bytes: a short directory instead
            workdir = Path(tempfile.mkdtemp(prefix="walsim-netd-"))
        n = Netd.start(workdir, die_with_parent=True, **kwargs)
        started.append(n)
        return n

    try:
        yield make
    finally:
        failed = _failed(request.node)
        for n in started:
            n.stop()
            if failed:
                print(f"walsim: walsim-netd log and trace of the failed test kept in {n.workdir}", file=sys.stderr)
                request.node.user_properties.append(("walsim_netd", str(n.workdir)))
            else:
                shutil.rmtree(n.workdir, ignore_errors=True)


def _short(name: str) -> str:
    # the control socket path must fit in sun_path (108 bytes)
    return "".join(c if c.isalnum() else "-" for c in name)[:24]


@pytest.fixture
def netd(netd_factory: Callable[..., Netd]) -> Netd:
    """A running walsim-netd (seed ``walsim_seed``), stopped when the test ends::

        host, port = netd.add_link("pg2", primary.host, primary.port)
        standby = cluster.create_standby("pg2", primary, via=(host, port))
        netd.add_fault("cut", link="pg2", kind="stall", dir="down")
    """
    return netd_factory()


@pytest.fixture
def disk_faults(request: pytest.FixtureRequest, cluster_factory: Callable[..., Any],
                walsim_seed: int) -> Iterator[Callable[..., DiskFaults]]:
    """``disk_faults(node, journal=False, strict_dirs=False, seed=walsim_seed)``
    loads the disk fault layer into ``node`` (before its first start, or
    restart it) and returns its :class:`walsim.sim.disk.DiskFaults`.  When the
    test ends every rule is removed, before the clusters are stopped (so that a
    failing fsync rule does not turn the shutdown into a PANIC)."""
    loaded: list[DiskFaults] = []

    def load(node: Any, **kwargs: Any) -> DiskFaults:
        kwargs.setdefault("seed", walsim_seed)
        disk = DiskFaults.load(node, **kwargs)
        loaded.append(disk)
        return disk

    try:
        yield load
    finally:
        for disk in loaded:
            try:
                disk.clear()
            except Exception as exc:  # noqa: BLE001 - the node may be gone; the cluster teardown follows
                print(f"walsim: could not clear the disk rules of {disk.node.name}: {exc}", file=sys.stderr)
