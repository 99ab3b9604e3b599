"""The HTML index of an exploration's output directory: failures first, each linking to its reports.

Written from the directory's files alone (``explore.json``, ``runs.jsonl``,
``failures/*/shrink.jsonl``), so that :mod:`walsim.explore.merge` writes the
index of several shards with the same code.  Links are relative: the
directory can be moved or published as a CI artifact.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

ORDER = {"FAIL": 0, "ERROR": 1, "PASS": 2}
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:80em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;
vertical-align:top}th{background:#eee}.FAIL{color:#b00;font-weight:bold}.ERROR{color:#a60;font-weight:bold}
.PASS{color:#070}code{background:#f4f4f4;padding:0 .2em}.box{border:2px solid #b00;padding:.5em 1em;margin:1em 0}"""


def read_runs(out: Path) -> list[dict[str, Any]]:
    runs = []
    try:
        lines = (out / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            runs.append(json.loads(line))
        except ValueError:
            continue
    return runs


def _e(x: Any) -> str:
    return html.escape(str(x))


def _link(base: Path, target: str | Path | None, text: str, root: Path) -> str:
    """A relative link from the index in ``base`` to ``target`` (relative to ``root``), if it exists."""
    if not target:
        return _e(text)
    full = root / target
    if not full.exists():
        return _e(text)
    return f'<a href="{_e(os.path.relpath(full, base))}">{_e(text)}</a>'


def _run_rows(runs: list[dict[str, Any]], base: Path, root_of: Any) -> list[str]:
    rows = []
    for r in sorted(runs, key=lambda r: (ORDER.get(r.get("result"), 3), r.get("seed", 0))):
        root = root_of(r)
        rundir = r.get("rundir", "")
        report = f"{rundir}/report.html"
        link = _link(base, report, "report", root) if (root / report).exists() else \
            _link(base, rundir, "run directory", root)
        what = ", ".join(r.get("failed") or []) or (r.get("harness_error") or "")
        rows.append(f'<tr><td>{_e(r.get("seed"))}</td><td class="{_e(r.get("result"))}">{_e(r.get("result"))}</td>'
                    f'<td>{_e(what)}</td><td>{_e(", ".join(r.get("events") or []) or "-")}</td>'
                    f'<td>{_e(r.get("wall_s"))}</td><td>{_e(r.get("overhead_s"))}</td>'
                    f'<td>{_link(base, f"{rundir}/schedule.toml", "schedule", root)}</td><td>{link}</td></tr>')
    return rows


def _failure_html(f: dict[str, Any], base: Path, root: Path) -> str:
    parts = [f'<div class="box"><h3>{_e(", ".join(f.get("signature") or []))} FAILED</h3>',
             f'<p>seeds: {_e(", ".join(str(s) for s in f.get("seeds", [])))} '
             f'(first: {_link(base, f.get("report"), "report of seed " + str(f.get("first_seed")), root)})</p>']
    if f.get("dir"):
        d = f["dir"]
        parts.append(f'<p>minimal schedule: <b>{_e(f.get("minimal_describe") or "no faults")}</b>, failing in '
                     f'{_e(f.get("rate"))} runs; {_link(base, f"{d}/minimal.toml", "minimal.toml", root)}, '
                     f'{_link(base, f.get("report"), "its report", root) if f.get("report") else ""} '
                     f'{_link(base, f"{d}/verdicts.json", "verdicts.json", root)}, '
                     f'{_link(base, f"{d}/shrink.jsonl", "shrink history", root)}</p>')
        parts.append(f'<p>reproduce: <code>{_e(f.get("reproduce", ""))}</code></p>')
        for v in f.get("verdicts") or []:
            if v.get("result") == "FAIL":
                parts.append(f'<p class="FAIL">{_e(v.get("name"))}: {_e(v.get("summary"))}</p>')
        history = []
        try:
            for line in (root / d / "shrink.jsonl").read_text().splitlines():
                history.append(json.loads(line))
        except (OSError, ValueError):
            pass
        if history:
            parts.append("<table><tr><th>#</th><th>candidate</th><th>failed runs</th><th>kept</th></tr>")
            for a in history:
                parts.append(f'<tr><td>{_e(a.get("attempt"))}</td><td>{_e(a.get("change"))}</td>'
                             f'<td>{_e(a.get("failures"))}/{_e(a.get("runs"))}</td>'
                             f'<td>{"yes" if a.get("accepted") else "no"}</td></tr>')
            parts.append("</table>")
        parts.append(f'<p>shrinking stopped: {_e(f.get("stopped"))} after {_e(f.get("attempts"))} candidate(s)</p>')
    elif f.get("shrink"):
        parts.append(f"<p>{_e(f['shrink'])}</p>")
    parts.append("</div>")
    return "\n".join(parts)


def render(title: str, summary: list[str], failures: list[tuple[dict[str, Any], Path]],
           runs: list[dict[str, Any]], base: Path, root_of: Any) -> str:
    body = [f"<!doctype html><html><head><meta charset=utf-8><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>"]
    body += [f"<p>{line}</p>" for line in summary]
    body.append(f"<h2>Failures ({len(failures)})</h2>")
    if not failures:
        body.append("<p>No run failed.</p>")
    for f, root in failures:
        body.append(_failure_html(f, base, root))
    body.append(f"<h2>Runs ({len(runs)})</h2><table><tr><th>seed</th><th>result</th><th>failed / error</th>"
                "<th>faults</th><th>wall s</th><th>overhead s</th><th>schedule</th><th>report</th></tr>")
    body += _run_rows(runs, base, root_of)
    body.append("</table></body></html>")
    return "\n".join(body) + "\n"


def write(out: Path) -> Path:
    """``index.html`` of one exploration directory."""
    try:
        info = json.loads((out / "explore.json").read_text())
    except (OSError, ValueError):
        info = {}
    runs = read_runs(out)
    summary = [f"scenario <code>{_e(info.get('scenario'))}</code> ({_e(info.get('file'))}), seeds "
               f"{_e(info.get('seeds'))}{', shard ' + _e(info['shard']) if info.get('shard') else ''}, "
               f"{_e(info.get('jobs'))} job(s)",
               f"{len(runs)} runs: {sum(r.get('result') == 'FAIL' for r in runs)} failed, "
               f"{sum(r.get('result') == 'ERROR' for r in runs)} ended in ERROR; "
               f"{_e(info.get('runs_per_hour'))} runs/hour over {_e(info.get('elapsed_s'))} s; "
               f"exit status {_e(info.get('exit_status'))}" + (" (interrupted)" if info.get("interrupted") else "")]
    failures = [(f, out) for f in info.get("failures") or []]
    text = render(f"walsim explore: {info.get('scenario', out.name)}", summary, failures, runs, out,
                  lambda r: out)
    path = out / "index.html"
    path.write_text(text, encoding="utf-8")
    return path
