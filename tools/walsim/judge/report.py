"""``report.html``: one self-contained page per run.

The verdict table, the timeline of steps and faults, and three plots in the
manner of Jepsen's: the WAL position of every node over time, the replay lag
of every standby, and the ledger's outcomes (acknowledged, failed,
indeterminate) over time, each with the fault windows shaded and the
disruptive steps (kill, stop, promote...) marked.  Plots are PNGs embedded in
the page (base64), so the file can be mailed or attached to a CI job alone.
Built from the run directory only, so ``walsim-cli report RUNDIR`` rebuilds it.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from walsim.core.errors import MissingData
from walsim.core.lsn import format_lsn
from walsim.judge.record import RunRecord
from walsim.judge.series import lag_series
from walsim.judge.verdict import Verdict

_COLORS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INFO": "#0969da", "ERROR": "#9a6700"}
_MARK_KINDS = ("kill", "stop", "start", "restart", "promote", "repoint", "rewind", "pause", "resume",
               "power_cut")


def _matplotlib():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _decorate(ax: Any, record: RunRecord) -> None:
    """Shade fault windows and mark disruptive steps on one axis."""
    palette = ["#f4a261", "#e76f51", "#2a9d8f", "#e9c46a", "#8ab17d", "#b5838d"]
    for i, w in enumerate(record.fault_windows()):
        ax.axvspan(w["start"], w["end"], color=palette[i % len(palette)], alpha=0.18, lw=0)
        # labels of faults installed together would overlap: step them down
        ax.text(w["start"], 0.98 - 0.08 * (i % 4), f" {w['id']}", transform=ax.get_xaxis_transform(),
                fontsize=7, va="top", ha="left", color="#555")
    for e in record.events:
        if e.get("type") == "step_start" and e.get("kind") in _MARK_KINDS:
            ax.axvline(e["t"], color="#444", lw=0.8, ls="--")
            ax.text(e["t"], 0.02, f" {e['kind']} {e.get('node') or ''}", rotation=90,
                    transform=ax.get_xaxis_transform(), fontsize=7, va="bottom", color="#444")


def plot_lsn(record: RunRecord) -> str | None:
    plt = _matplotlib()
    series: dict[str, list[tuple[float, int]]] = {}
    for smp in record.samples:
        if not smp.get("node") or not smp.get("up"):
            continue
        x = smp.get("insert_lsn") if smp.get("role") == "primary" else smp.get("replay_lsn")
        if x is not None:
            series.setdefault(smp["node"], []).append((smp["t"], int(x)))
    if not series:
        return None
    base = min(v for pts in series.values() for _, v in pts)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for node, pts in sorted(series.items()):
        ax.plot([t for t, _ in pts], [(v - base) / 1048576 for _, v in pts], lw=1.2, label=node)
    _decorate(ax, record)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(f"MB of WAL past {format_lsn(base)}")
    ax.set_title("WAL position per node (primary: insert, standby: replay)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # clear of the fault labels
    ax.grid(alpha=0.3)
    out = _png(fig)
    plt.close(fig)
    return out


def plot_lag(record: RunRecord) -> str | None:
    plt = _matplotlib()
    standbys = sorted({smp["node"] for smp in record.samples
                       if smp.get("node") and smp.get("role") == "standby"})
    if not standbys:
        return None
    fig, ax = plt.subplots(figsize=(9, 3.2))
    drawn = False
    for node in standbys:
        try:
            pts = lag_series(record, node, "replay")
        except MissingData:
            continue
        if pts:
            drawn = True
            ax.plot([p[0] for p in pts], [p[1] / 1024 for p in pts], lw=1.2, label=node)
    if not drawn:
        plt.close(fig)
        return None
    _decorate(ax, record)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("replay lag (kB behind primary)")
    ax.set_title("Replay lag per standby", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    out = _png(fig)
    plt.close(fig)
    return out


def _final_ledger_ids(record: RunRecord) -> set[int] | None:
    try:
        final = record.final
    except MissingData:
        return None
    ids = (final.get("nodes", {}).get(final.get("primary") or "", {}) or {}).get("ledger_ids")
    return set(int(x) for x in ids) if ids is not None else None


def plot_ledger(record: RunRecord) -> str | None:
    plt = _matplotlib()
    try:
        rows = [r for r in record.ledger if r.get("op") == "write"]
    except MissingData:
        return None
    if not rows:
        return None
    nodes = sorted({r.get("node") or "?" for r in rows})
    present = _final_ledger_ids(record)
    for r in rows:
        if r.get("outcome") == "acked" and present is not None and int(r.get("id", -1)) not in present:
            # acknowledged, but absent from the final primary: lost
            r["_class"] = "acked, lost"
        else:
            r["_class"] = r.get("outcome")
    fig, ax = plt.subplots(figsize=(9, 2.6))
    styles = {"acked": ("o", 3, 0.5), "failed": ("x", 18, 0.9), "indeterminate": ("D", 22, 1.0),
              "acked, lost": ("s", 10, 0.9)}
    colors = {"acked": "#1a7f37", "failed": "#cf222e", "indeterminate": "#9a6700", "acked, lost": "#8250df"}
    for outcome, (marker, size, alpha) in styles.items():
        pts = [(r["t"], nodes.index(r.get("node") or "?")) for r in rows if r.get("_class") == outcome]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=size, marker=marker, alpha=alpha,
                       color=colors[outcome], label=f"{outcome} ({len(pts)})")
    _decorate(ax, record)
    ax.set_yticks(range(len(nodes)), nodes)
    ax.set_ylim(-0.6, len(nodes) - 0.4)
    ax.set_xlabel("seconds since start")
    ax.set_title("Ledger transactions by node and outcome (lost: acknowledged, absent from the final primary)",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, axis="x")
    out = _png(fig)
    plt.close(fig)
    return out


def _workload_rows(record: RunRecord) -> str:
    """One row per workload: what its clients saw."""
    try:
        rows = record.ledger
    except MissingData:
        return ""
    present = _final_ledger_ids(record)
    out = []
    names = list(dict.fromkeys(r.get("workload") for r in rows if r.get("workload")))
    for name in names:
        mine = [r for r in rows if r.get("workload") == name]
        ops = {r.get("op") for r in mine}
        if "write" in ops:
            mine = [r for r in mine if r.get("op") == "write"]  # not the clients' session lines
            counts: dict[str, int] = {}
            for r in mine:
                counts[r.get("outcome", "?")] = counts.get(r.get("outcome", "?"), 0) + 1
            lost = (sum(1 for r in mine if r.get("outcome") == "acked" and int(r["id"]) not in present)
                    if present is not None else None)
            nodes = ", ".join(dict.fromkeys(r.get("node") or "?" for r in mine))
            text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            text += f"; lost {lost}" if lost is not None else ""
            out.append(f"<tr><td>{_esc(name)}</td><td>ledger</td><td>{_esc(nodes)}</td><td>{_esc(text)}</td></tr>")
        elif "read" in ops:
            ok = sum(1 for r in mine if r.get("outcome") == "ok")
            errs: dict[str, int] = {}
            for r in mine:
                if r.get("outcome") == "failed":
                    errs[r.get("sqlstate") or "no SQLSTATE"] = errs.get(r.get("sqlstate") or "no SQLSTATE", 0) + 1
            err = ", ".join(f"{k} x{v}" for k, v in sorted(errs.items())) or "none"
            out.append(f"<tr><td>{_esc(name)}</td><td>reader</td><td></td>"
                       f"<td>{ok} reads, errors: {_esc(err)} (40001: recovery conflict)</td></tr>")
        elif "pgbench" in ops:
            ev = "; ".join(f"{r.get('event')} on {r.get('node')}"
                           + (f" (exit {r['returncode']})" if r.get("returncode") is not None else "")
                           for r in mine)
            out.append(f"<tr><td>{_esc(name)}</td><td>pgbench</td><td></td><td>{_esc(ev)}; its output is "
                       f"in pgbench-{_esc(name)}.log</td></tr>")
    return "\n".join(out)


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _timeline_rows(record: RunRecord) -> str:
    rows = []
    starts = {}
    for e in record.events:
        if e.get("type") == "step_start":
            starts[e.get("step")] = e
        elif e.get("type") == "step_end":
            s = starts.get(e.get("step"), {})
            status = "ok" if e.get("ok") else f"<b style='color:{_COLORS['FAIL']}'>{_esc(e.get('error', 'failed'))}</b>"
            detail = e.get("detail") or {}
            detail_txt = ", ".join(f"{k}={v}" for k, v in detail.items() if v not in (None, "", [], {}))
            rows.append(f"<tr><td>{s.get('t', e['t']):.2f}</td><td>{e['t']:.2f}</td>"
                        f"<td>{_esc(e.get('id'))}</td><td>{_esc(s.get('desc', e.get('kind')))}</td>"
                        f"<td>{status}</td><td class=d>{_esc(detail_txt[:300])}</td></tr>")
        elif e.get("type") in ("fault_on", "fault_off", "promoted", "cluster_ready", "settle_start",
                               "settle_end", "run_end"):
            extra = {k: v for k, v in e.items() if k not in ("t", "wall", "type")}
            rows.append(f"<tr class=ev><td>{e['t']:.2f}</td><td></td><td>{_esc(e.get('id', ''))}</td>"
                        f"<td>{_esc(e['type'])}</td><td></td><td class=d>{_esc(json.dumps(extra)[:300])}</td></tr>")
    return "\n".join(rows)


def build_report(record: RunRecord, verdicts: list[Verdict] | None = None) -> Path:
    """Write ``report.html`` into the run directory; returns its path."""
    d = record.dir
    if verdicts is None:
        data = json.loads((d / "verdicts.json").read_text()) if (d / "verdicts.json").exists() else []
        verdicts = [Verdict(**v) for v in data]
    run = record.run
    title, desc = record.scenario.name, record.scenario.description
    vrows = "\n".join(
        f"<tr><td>{_esc(v.name)}</td><td>{_esc(v.check)}</td>"
        f"<td><b style='color:{_COLORS.get(v.result, '#000')}'>{v.result}</b></td>"
        f"<td>{_esc(v.summary)}<br><small>judged at: {_esc(v.judged_at)}</small></td>"
        f"<td class=d><details><summary>evidence</summary>"
        f"<pre>{_esc(json.dumps(v.evidence, indent=1, default=str)[:4000])}</pre></details></td></tr>"
        for v in verdicts)
    plots = []
    for fn, caption in ((plot_lsn, "WAL position"), (plot_lag, "Replay lag"), (plot_ledger, "Ledger")):
        try:
            png = fn(record)
        except MissingData:
            png = None
        if png:
            plots.append(f"<figure><img alt='{caption}' src='data:image/png;base64,{png}'></figure>")
    try:
        timeline = _timeline_rows(record)
    except MissingData:
        timeline = "<tr><td colspan=6>no events recorded</td></tr>"
    workloads = _workload_rows(record)
    repro = run.get("reproduce", "")
    versions = run.get("versions", {})
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>walsim: {_esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; color: #222 }}
table {{ border-collapse: collapse; width: 100%; font-size: 13px }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top }}
tr.ev td {{ color: #666 }}
td.d {{ font-family: monospace; font-size: 11px }}
code, pre {{ background: #f6f8fa; padding: 2px 4px }}
figure {{ margin: 1em 0 }}
</style></head><body>
<h1>{_esc(title)}</h1>
<p>{_esc(desc)}</p>
<p>seed <b>{_esc(run.get('seed', '?'))}</b> · durability <b>{_esc(run.get('durability', '?'))}</b>
 · started {_esc(run.get('started', '?'))} · {_esc(run.get('elapsed_s', '?'))} s
 · walsim {_esc(versions.get('walsim', '?'))} · {_esc(versions.get('postgresql', '?'))}</p>
<p>reproduce with: <code>{_esc(repro)}</code></p>
{f"<p style='color:{_COLORS['FAIL']}'><b>step failure:</b> {_esc(run['step_error'])}</p>" if run.get('step_error') else ''}
{f"<p style='color:{_COLORS['ERROR']}'><b>harness error:</b> {_esc(run['harness_error'])}</p>" if run.get('harness_error') else ''}
<h2>Verdicts</h2>
<table><tr><th>verdict</th><th>check</th><th>result</th><th>summary</th><th></th></tr>
{vrows or '<tr><td colspan=5>no verdicts</td></tr>'}
</table>
{"<h2>Workloads</h2><table><tr><th>workload</th><th>kind</th><th>nodes</th><th>what the clients saw</th></tr>" + workloads + "</table>" if workloads else ""}
<h2>Plots</h2>
<p>Shaded: fault windows. Dashed lines: kill, stop, promote and other disruptive steps.</p>
{''.join(plots) or '<p>no samples recorded</p>'}
<h2>Timeline</h2>
<table><tr><th>start s</th><th>end s</th><th>id</th><th>what</th><th>result</th><th>detail</th></tr>
{timeline}
</table>
<h2>Files</h2>
<p>In <code>{_esc(d.resolve())}</code>: scenario.toml, run.json, events.jsonl, samples.jsonl,
ledger.jsonl, final.json, faults/, nodes/ (logs and configs), verdicts.json.</p>
</body></html>
"""
    out = d / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
