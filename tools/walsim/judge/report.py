"""``report.html``: one self-contained page per run, and ``index.html`` of a
directory of runs.

The verdict table, the workloads, three plots in the manner of Jepsen's (the
WAL position of every node over time, the replay lag of every standby, the
ledger's outcomes: acknowledged, failed, indeterminate, lost) and the
timeline of steps and events with their details as formatted JSON.  Plots
are PNGs embedded in the page (base64) and the page loads nothing else, so
the file can be mailed or attached to a CI job alone.  Built from the run
directory only, so ``walsim-cli report RUNDIR`` rebuilds it.  The HTML comes
from the Jinja2 templates in ``walsim/judge/templates/``.

Every plot draws a node in the same colour (:func:`node_colours`: the
scenario's nodes in declaration order), draws series that coincide so that
each stays visible (the first drawn is the widest, each later one narrower on
top of it), and shows the fault windows and disruptive steps in a strip above
the axes whose labels are put in lanes so that none overlaps another
(:func:`lanes`).
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walsim.core.errors import MissingData
from walsim.core.lsn import format_lsn
from walsim.judge.record import RunRecord
from walsim.judge.series import lag_series
from walsim.judge.verdict import Verdict

TEMPLATES = Path(__file__).resolve().parent / "templates"
RESULT_COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INFO": "#0969da", "ERROR": "#9a6700"}
#: matplotlib's tab10: distinguishable, and the colours users know from other plots
NODE_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")
FAULT_PALETTE = ("#f4a261", "#e76f51", "#2a9d8f", "#e9c46a", "#8ab17d", "#b5838d")
MARK_KINDS = ("kill", "stop", "start", "restart", "promote", "repoint", "rewind", "pause", "resume",
              "power_cut")

# figure geometry, inches (the page shows the PNGs at the window's width)
FIG_W = 13.0
AX_LEFT = 1.0
AX_RIGHT_ROOM = 1.7      # the legend, right of the axes
LANE_H = 0.22
TOP = 0.35
BOTTOM = 0.55
GAP = 0.06
DPI = 100
LABEL_SIZE = 7.5


def _matplotlib() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    # no tight bounding box: every plot keeps the same geometry, so that their
    # time axes line up on the page
    fig.savefig(buf, format="png", dpi=DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# ------------------------------------------------------------------ colours

def node_colours(record: RunRecord) -> dict[str, str]:
    """One colour per node for every plot of the run: the scenario's nodes in
    the order they are declared, then any other node seen in the samples."""
    names = list(record.scenario.nodes)
    try:
        seen = sorted({s["node"] for s in record.samples if s.get("node")})
    except MissingData:
        seen = []
    names += [n for n in seen if n not in names]
    return {n: NODE_PALETTE[i % len(NODE_PALETTE)] for i, n in enumerate(names)}


def _widths(n: int) -> list[float]:
    """Line widths of n series drawn in order: the first widest, the last 1.2,
    so that a series that coincides with a later one shows around it."""
    if n <= 1:
        return [1.6] * n
    return [1.2 + 2.4 * (n - 1 - i) / (n - 1) for i in range(n)]


# ------------------------------------------------------------------ lanes

@dataclass
class Label:
    """A fault window (start < end) or a disruptive step (start == end) in the strip."""

    start: float
    end: float
    text: str
    colour: str
    mark: bool = False
    lane: int = 0


def lanes(spans: list[tuple[float, float]], gap: float = 0.0) -> list[int]:
    """A lane for each ``(start, end)`` span such that spans in the same lane
    are at least ``gap`` apart; greedy in order of start (optimal for
    intervals: as many lanes as the most spans that overlap at one point)."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], spans[i][1]))
    ends: list[float] = []
    out = [0] * len(spans)
    for i in order:
        start, end = spans[i]
        for lane, last in enumerate(ends):
            if start >= last + gap:
                ends[lane] = end
                out[i] = lane
                break
        else:
            ends.append(end)
            out[i] = len(ends) - 1
    return out


def strip_labels(record: RunRecord) -> list[Label]:
    """The fault windows and the disruptive steps of the run."""
    out = []
    for i, w in enumerate(record.fault_windows()):
        text = f"{w['id']} ({w.get('kind') or 'fault'}{' on ' + str(w['target']) if w.get('target') else ''})"
        out.append(Label(float(w["start"]), float(w["end"]), text, FAULT_PALETTE[i % len(FAULT_PALETTE)]))
    for e in record.events:
        if e.get("type") == "step_start" and e.get("kind") in MARK_KINDS:
            text = f"{e['kind']} {e.get('node') or ''}".strip()
            out.append(Label(float(e["t"]), float(e["t"]), text, "#444444", mark=True))
    return out


def _end_time(record: RunRecord) -> float:
    ts = [float(e["t"]) for e in record.events if "t" in e]
    try:
        ts += [float(s["t"]) for s in record.samples if "t" in s]
    except MissingData:
        pass
    return max(ts, default=1.0) or 1.0


def _layout(fig: Any, ax: Any, record: RunRecord, main_h: float, title: str) -> Any:
    """Put the fault strip above ``ax`` (sized to its lanes), shade the fault
    windows and mark the disruptive steps on ``ax``; returns the strip's axes
    (None when the run had no fault and no disruptive step)."""
    end_t = _end_time(record)
    ax.set_xlim(0.0, end_t * 1.01)
    labels = strip_labels(record)
    for lab in labels:
        if lab.mark:
            ax.axvline(lab.start, color=lab.colour, lw=0.8, ls="--", zorder=1)
        else:
            ax.axvspan(lab.start, lab.end, color=lab.colour, alpha=0.16, lw=0, zorder=0)
    axw = FIG_W - AX_LEFT - AX_RIGHT_ROOM
    strip = None
    nlanes = 0
    if labels:
        # label widths in data units, from the renderer (fonts decide, not a guess)
        renderer = fig.canvas.get_renderer()
        x0, x1 = ax.get_xlim()
        per_px = (x1 - x0) / (axw * fig.dpi)
        pad = 6 * per_px
        spans = []
        for lab in labels:
            t = fig.text(0, 0, lab.text, fontsize=LABEL_SIZE)
            width = t.get_window_extent(renderer).width * per_px
            t.remove()
            start = lab.start + (7 * per_px if lab.mark else 0.0)  # clear of the mark's triangle
            end = max(lab.end, start + width + pad)
            if end > x1:  # the label would leave the axes: end it at the right edge
                start, end = x1 - (end - start), x1
            spans.append((start, end))
        for lab, lane in zip(labels, lanes(spans, gap=pad)):
            lab.lane = lane
        nlanes = max(lab.lane for lab in labels) + 1
        strip_positions = spans
    strip_h = nlanes * LANE_H + (0.08 if nlanes else 0.0)
    height = TOP + strip_h + (GAP if nlanes else 0.0) + main_h + BOTTOM
    fig.set_size_inches(FIG_W, height)
    ax.set_position([AX_LEFT / FIG_W, BOTTOM / height, axw / FIG_W, main_h / height])
    if nlanes:
        strip = fig.add_axes([AX_LEFT / FIG_W, (BOTTOM + main_h + GAP) / height, axw / FIG_W, strip_h / height],
                             sharex=ax)
        strip.set_ylim(nlanes, 0)
        strip.set_yticks([])
        strip.tick_params(axis="x", labelbottom=False, length=0)
        for side in ("top", "right", "left", "bottom"):
            strip.spines[side].set_visible(False)
        for lab, (start, _) in zip(labels, strip_positions):
            y = lab.lane + 0.5
            if lab.mark:
                strip.plot([lab.start], [y], marker="v", color=lab.colour, ms=4, clip_on=False)
                strip.axvline(lab.start, color=lab.colour, lw=0.8, ls="--")
            else:
                strip.barh(y, lab.end - lab.start, left=lab.start, height=0.78, color=lab.colour, alpha=0.45,
                           lw=0)
            strip.text(start, y, lab.text, fontsize=LABEL_SIZE, va="center", ha="left", color="#222",
                       clip_on=False, gid="walsim-label")
        strip.set_title(title, fontsize=10, loc="left")
    else:
        ax.set_title(title, fontsize=10, loc="left")
    return strip


def _new_figure(plt: Any, main_h: float) -> tuple[Any, Any]:
    fig = plt.figure(figsize=(FIG_W, main_h + TOP + BOTTOM), dpi=DPI)
    ax = fig.add_axes([AX_LEFT / FIG_W, 0.15, (FIG_W - AX_LEFT - AX_RIGHT_ROOM) / FIG_W, 0.7])
    return fig, ax


# ------------------------------------------------------------------ plots

def figure_lsn(record: RunRecord) -> Any | None:
    """WAL position of every node (primary: insert; standby: replay)."""
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
    colours = node_colours(record)
    base = min(v for pts in series.values() for _, v in pts)
    fig, ax = _new_figure(plt, 3.2)
    names = [n for n in colours if n in series]
    for node, width in zip(names, _widths(len(names))):
        pts = series[node]
        ax.plot([t for t, _ in pts], [(v - base) / 1048576 for _, v in pts], lw=width, color=colours[node],
                label=node, solid_capstyle="butt")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(f"MB of WAL past {format_lsn(base)}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _layout(fig, ax, record, 3.2, "WAL position per node (primary: insert, standby: replay)")
    return fig


def figure_lag(record: RunRecord) -> Any | None:
    """Replay lag of every standby, in kB behind the primary."""
    plt = _matplotlib()
    colours = node_colours(record)
    standbys = [n for n in colours if any(s.get("node") == n and s.get("role") == "standby"
                                           for s in record.samples)]
    drawn: list[tuple[str, list[Any]]] = []
    for node in standbys:
        try:
            pts = lag_series(record, node, "replay")
        except MissingData:
            continue
        if pts:
            drawn.append((node, pts))
    if not drawn:
        return None
    fig, ax = _new_figure(plt, 3.0)
    for (node, pts), width in zip(drawn, _widths(len(drawn))):
        ax.plot([p[0] for p in pts], [p[1] / 1024 for p in pts], lw=width, color=colours[node], label=node,
                solid_capstyle="butt")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("replay lag (kB behind primary)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _layout(fig, ax, record, 3.0, "Replay lag per standby")
    return fig


def _final_ledger_ids(record: RunRecord) -> set[int] | None:
    try:
        final = record.final
    except MissingData:
        return None
    ids = (final.get("nodes", {}).get(final.get("primary") or "", {}) or {}).get("ledger_ids")
    return set(int(x) for x in ids) if ids is not None else None


def figure_ledger(record: RunRecord) -> Any | None:
    """Ledger transactions by node and outcome; a node's name in its colour."""
    plt = _matplotlib()
    try:
        rows = [r for r in record.ledger if r.get("op") == "write"]
    except MissingData:
        return None
    if not rows:
        return None
    colours = node_colours(record)
    nodes = [n for n in colours if any((r.get("node") or "?") == n for r in rows)]
    nodes += sorted({r.get("node") or "?" for r in rows} - set(nodes))
    present = _final_ledger_ids(record)

    def klass(r: dict[str, Any]) -> str:
        if r.get("outcome") == "acked" and present is not None and int(r.get("id", -1)) not in present:
            return "acked, lost"  # acknowledged, but absent from the final primary
        return str(r.get("outcome"))

    main_h = max(1.4, 0.45 * len(nodes) + 0.6)
    fig, ax = _new_figure(plt, main_h)
    styles = {"acked": ("o", 3, 0.5), "failed": ("x", 18, 0.9), "indeterminate": ("D", 22, 1.0),
              "acked, lost": ("s", 10, 0.9)}
    outcome_colours = {"acked": "#1a7f37", "failed": "#cf222e", "indeterminate": "#9a6700",
                       "acked, lost": "#8250df"}
    for outcome, (marker, size, alpha) in styles.items():
        pts = [(r["t"], nodes.index(r.get("node") or "?")) for r in rows if klass(r) == outcome]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=size, marker=marker, alpha=alpha,
                       color=outcome_colours[outcome], label=f"{outcome} ({len(pts)})", zorder=3)
    ax.set_yticks(range(len(nodes)), nodes)
    for tick, node in zip(ax.get_yticklabels(), nodes):
        tick.set_color(colours.get(node, "#222"))
        tick.set_fontweight("bold")
    ax.set_ylim(-0.6, len(nodes) - 0.4)
    ax.set_xlabel("seconds since start")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _layout(fig, ax, record, main_h,
            "Ledger transactions by node and outcome (lost: acknowledged, absent from the final primary)")
    return fig


def plot_png(figure: Any | None) -> str | None:
    """A figure as base64 PNG (the figure is closed)."""
    if figure is None:
        return None
    plt = _matplotlib()
    try:
        return _png(figure)
    finally:
        plt.close(figure)


# ------------------------------------------------------------------ tables

def _workloads(record: RunRecord) -> list[dict[str, str]]:
    """One row per workload: what its clients saw."""
    try:
        rows = record.ledger
    except MissingData:
        return []
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
            text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            text += f"; lost {lost}" if lost is not None else ""
            out.append({"name": name, "kind": "ledger",
                        "nodes": ", ".join(dict.fromkeys(r.get("node") or "?" for r in mine)), "seen": text})
        elif "read" in ops:
            ok = sum(1 for r in mine if r.get("outcome") == "ok")
            errs: dict[str, int] = {}
            for r in mine:
                if r.get("outcome") == "failed":
                    errs[r.get("sqlstate") or "no SQLSTATE"] = errs.get(r.get("sqlstate") or "no SQLSTATE", 0) + 1
            err = ", ".join(f"{k} x{v}" for k, v in sorted(errs.items())) or "none"
            out.append({"name": name, "kind": "reader", "nodes": "",
                        "seen": f"{ok} reads, errors: {err} (40001: recovery conflict)"})
        elif "pgbench" in ops:
            ev = "; ".join(f"{r.get('event')} on {r.get('node')}"
                           + (f" (exit {r['returncode']})" if r.get("returncode") is not None else "")
                           for r in mine)
            out.append({"name": name, "kind": "pgbench", "nodes": "",
                        "seen": f"{ev}; its output is in pgbench-{name}.log"})
    return out


def _json_pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _json_short(value: Any, limit: int = 140) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _timeline(record: RunRecord) -> list[dict[str, Any]]:
    rows = []
    starts: dict[Any, dict[str, Any]] = {}
    for e in record.events:
        if e.get("type") == "step_start":
            starts[e.get("step")] = e
        elif e.get("type") == "step_end":
            s = starts.get(e.get("step"), {})
            detail = {k: v for k, v in (e.get("detail") or {}).items() if v not in (None, "", [], {})}
            rows.append({"start": f"{s.get('t', e['t']):.2f}", "end": f"{e['t']:.2f}", "id": e.get("id") or "",
                         "what": s.get("desc", e.get("kind")) or "", "ok": bool(e.get("ok")),
                         "error": e.get("error", "failed"), "event": False,
                         "short": _json_short(detail) if detail else "",
                         "pretty": _json_pretty(detail) if detail else ""})
        elif e.get("type") in ("fault_on", "fault_off", "promoted", "cluster_ready", "settle_start",
                               "settle_end", "run_end"):
            extra = {k: v for k, v in e.items() if k not in ("t", "wall", "type")}
            rows.append({"start": f"{e['t']:.2f}", "end": "", "id": e.get("id", ""), "what": e["type"],
                         "ok": True, "error": "", "event": True,
                         "short": _json_short(extra) if extra else "",
                         "pretty": _json_pretty(extra) if extra else ""})
    return rows


# ------------------------------------------------------------------ pages

def _environment() -> Any:
    import jinja2
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _write(path: Path, text: str) -> Path:
    """Write through a temporary file and a rename: a browser or another
    process never reads half a page."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def build_report(record: RunRecord, verdicts: list[Verdict] | None = None) -> Path:
    """Write ``report.html`` into the run directory; returns its path."""
    d = record.dir
    if verdicts is None:
        data = json.loads((d / "verdicts.json").read_text()) if (d / "verdicts.json").exists() else []
        verdicts = [Verdict(**v) for v in data]
    plots = []
    for fn, caption in ((figure_lsn, "WAL position per node"), (figure_lag, "Replay lag per standby"),
                        (figure_ledger, "Ledger transactions by node and outcome")):
        try:
            png = plot_png(fn(record))
        except MissingData:
            png = None
        if png:
            plots.append({"caption": caption, "png": png})
    try:
        timeline = _timeline(record)
    except MissingData:
        timeline = []
    try:
        colours = node_colours(record)
    except MissingData:
        colours = {}
    run = record.run
    page = _environment().get_template("report.html").render(
        title=record.scenario.name, description=record.scenario.description, run=run,
        versions=run.get("versions", {}), reproduce=run.get("reproduce", ""),
        verdicts=[{"v": v, "colour": RESULT_COLOURS.get(v.result, "#000"), "evidence": _json_pretty(v.evidence)}
                  for v in verdicts],
        workloads=_workloads(record), plots=plots, timeline=timeline, colours=colours,
        result_colours=RESULT_COLOURS, rundir=str(d.resolve()))
    return _write(d / "report.html", page)


# ------------------------------------------------------------------ index

INDEX_LOCK = ".index.lock"


def _run_row(d: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((d / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        verdicts = json.loads((d / "verdicts.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        verdicts = None
    counts = {r: 0 for r in ("PASS", "FAIL", "ERROR", "INFO")}
    for v in verdicts or []:
        if v.get("result") in counts:
            counts[v["result"]] += 1
    status = info.get("exit_status")
    return {"dir": d.name, "scenario": info.get("scenario") or d.name, "seed": info.get("seed"),
            "started": info.get("started") or "", "elapsed": info.get("elapsed_s"),
            "status": status, "counts": counts, "judged": verdicts is not None,
            "report": (d / "report.html").exists(), "reproduce": info.get("reproduce") or ""}


def runs_in(parent: Path) -> list[dict[str, Any]]:
    """Every run directory under ``parent`` (a ``run.json`` in it), newest first."""
    rows = [r for r in (_run_row(d) for d in parent.iterdir() if d.is_dir()) if r is not None]
    rows.sort(key=lambda r: (r["started"], r["dir"]), reverse=True)
    return rows


def build_index(parent: str | Path) -> Path:
    """Write ``index.html`` of a directory of runs (``walsim-runs/``): every run
    with its scenario, seed, verdict counts, date and status, linked to its
    report.  Concurrent writers (pytest -n) take turns on a lock file."""
    p = Path(parent)
    with open(p / INDEX_LOCK, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = runs_in(p)
        status_text = {0: "ok", 1: "failed", 2: "error", 130: "interrupted"}
        page = _environment().get_template("index.html").render(
            directory=str(p.resolve()), runs=rows, result_colours=RESULT_COLOURS, status_text=status_text)
        return _write(p / "index.html", page)

