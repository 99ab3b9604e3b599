"""What ``walsim-cli check`` catches before a run (issue 19, item 8): each problem
an error or a warning naming its key, no second false error after a real one,
no message saying "got None"; and the run-time check of an absolute ``at_lsn``
already behind the primary."""

from __future__ import annotations

from typing import Any

import pytest

from test_scenario_loader import CASES, HEAD, LINK, NODES, assert_issue, issues_of

from walsim.api import parse_scenario
from walsim.core.errors import HarnessError, ScenarioError, StepFailed
from walsim.faults.net import NetLayer

SYNC = HEAD.replace('"async"', '"sync"')
THREE = NODES + '[nodes.pg3]\nrole = "standby"\nupstream = "pg1"\n'


def test_streaming_verdict_on_the_primary_is_an_error() -> None:
    assert_issue(HEAD + NODES + '[[verdicts]]\ncheck = "streaming"\nnode = "pg1"\n', "verdicts[0].node",
                 "pg1 is the primary and no step makes it a standby")


def test_streaming_verdict_on_a_rewound_old_primary_is_fine() -> None:
    parse_scenario(HEAD + NODES + '[[steps]]\ndo = "kill"\nnode = "pg1"\n[[steps]]\ndo = "promote"\nnode = "pg2"\n'
                   '[[steps]]\ndo = "rewind"\nnode = "pg1"\nsource = "pg2"\n'
                   '[[verdicts]]\ncheck = "streaming"\nnode = "pg1"\nupstream = "pg2"\n')


def test_inherited_standby_names_naming_the_promoted_standby_is_a_warning() -> None:
    text = (SYNC + '[settings]\nsynchronous_standby_names = "FIRST 1 (pg2)"\n' + THREE
            + '[[steps]]\ndo = "promote"\nnode = "pg2"\n')
    sc = parse_scenario(text, "case.toml")
    assert [(w.path, w.message) for w in sc.warnings] == [(
        "settings.synchronous_standby_names",
        "'FIRST 1 (pg2)' names pg2 itself: once pg2 is promoted it waits for 1 synchronous standby(s) among "
        "none and every commit on it blocks (inherited by pg2: give nodes.pg2.settings its own "
        "synchronous_standby_names, e.g. the standbys that will follow it)")]
    # its own setting fixes it; naming another standby too is enough
    fixed = text.replace('upstream = "pg1"\n[nodes.pg3]',
                         'upstream = "pg1"\nsettings = { synchronous_standby_names = "pg3" }\n[nodes.pg3]', 1)
    assert parse_scenario(fixed).warnings == []
    both = text.replace('"FIRST 1 (pg2)"', '"FIRST 1 (pg2, pg3)"')
    assert parse_scenario(both).warnings == []
    # not promoted: harmless
    assert parse_scenario(text.replace('[[steps]]\ndo = "promote"\nnode = "pg2"\n', '')).warnings == []


def test_standby_names_emptied_by_a_node_override_names_the_override() -> None:
    text = (SYNC + '[settings]\nsynchronous_standby_names = "FIRST 1 (pg2)"\n'
            + NODES.replace('role = "primary"', 'role = "primary"\nsettings = { synchronous_standby_names = "" }'))
    assert issues_of(text) == [(
        "nodes.pg1.settings.synchronous_standby_names",
        "durability = \"sync\" promises that an acknowledged commit survives the loss of the primary, but "
        "nodes.pg1.settings sets synchronous_standby_names = \"\", emptying [settings]' 'FIRST 1 (pg2)' on the "
        "primary pg1 (remove the override or name standbys in it)")]


def test_a_link_to_an_unknown_node_is_one_error() -> None:
    found = issues_of(HEAD + NODES + 'via = "l2"\n[links.l2]\nto = "pg7"\n')
    assert found == [("links.l2.to", "unknown node 'pg7' (declared: pg1, pg2)")]


@pytest.mark.parametrize("text", [c[1] for c in CASES] + [
    HEAD + NODES + '[[verdicts]]\nid = "x"\n',
    HEAD + NODES + '[workloads.w]\nclients = 2\n',
    HEAD + NODES + '[[steps]]\nheal = "all"\n[[steps]]\nwait = "role"\nnode = "pg1"\n',
], ids=[c[0] for c in CASES] + ["verdict-without-check", "workload-without-kind", "misc"])
def test_no_message_says_got_none(text: str) -> None:
    try:
        parse_scenario(text, "case.toml")
    except ScenarioError as exc:
        for issue in exc.issues:
            assert "got None" not in issue.message, str(issue)


class _Node:
    def __init__(self, lsn: int) -> None:
        self._lsn = lsn

    def lsn(self, kind: str) -> int:
        return self._lsn


class _Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def event(self, type_: str, **fields: Any) -> None:
        self.seen.append((type_, fields))


class _Ctx:
    primary = "pg1"

    def __init__(self) -> None:
        self.events = _Events()

    def node(self, name: str) -> _Node:
        return _Node(0x5000000)


class _Netd:
    def __init__(self) -> None:
        self.added: list[str] = []

    def add_fault(self, rid: str, **kw: Any) -> dict[str, Any]:
        self.added.append(rid)
        return {"id": rid}

    def del_fault(self, rid: str) -> None:
        pass


def _fault_step(kind: str, extra: str):
    sc = parse_scenario(HEAD + NODES.replace('upstream = "pg1"', 'upstream = "pg1"\nvia = "l2"') + LINK
                        + f'[[steps]]\nid = "f"\nfault = "{kind}"\nlink = "l2"\n{extra}')
    return sc.steps[0]


def test_absolute_at_lsn_behind_the_primary_at_install_time() -> None:
    ctx = _Ctx()
    layer = NetLayer(ctx)  # type: ignore[arg-type]
    layer.netd = _Netd()  # type: ignore[assignment]
    with pytest.raises(HarnessError) as info:
        layer.apply(_fault_step("corrupt", 'at_lsn = "0/3000000"\n'))
    assert str(info.value).startswith("steps[0].at_lsn: 0/3000000 is already behind pg1's WAL insert position "
                                      "0/5000000 when the fault is installed: the corruption would never fire")
    assert layer.netd.added == []  # type: ignore[attr-defined]
    detail = layer.apply(_fault_step("stall", 'at_lsn = "0/3000000"\n'))
    assert detail["warning"].endswith("the fault fires at once")
    assert ctx.events.seen[0][0] == "warning"
    assert layer.apply(_fault_step("corrupt", 'at_lsn = "0/6000000"\n'))["at_lsn"] == "0/6000000"


def test_sql_expecting_a_sqlstate_that_gets_none_says_so() -> None:
    import psycopg

    from walsim.run.steps import _run_sql

    class Conn:
        def execute(self, *a: Any, **k: Any) -> Any:
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        def close(self) -> None:
            pass

    class Failing:
        def connect(self) -> Conn:
            return Conn()

    class Ctx:
        def node(self, name: str) -> Failing:
            return Failing()

        def on_abort(self, hook: Any) -> None:
            pass

        def fail(self, step: Any, message: str) -> None:
            raise StepFailed(message)

    sc = parse_scenario(HEAD + NODES + '[[steps]]\ndo = "sql"\nnode = "pg1"\nquery = "INSERT"\nexpect_error = "25006"\n')
    with pytest.raises(StepFailed) as info:
        _run_sql(Ctx(), sc.steps[0])  # type: ignore[arg-type]
    assert str(info.value) == ("expected SQLSTATE 25006, got an error without a SQLSTATE: server closed the "
                               "connection unexpectedly")
