"""The report's plots and pages: one colour per node in every plot, no series
hidden under another, fault and step labels that never overlap, details as
JSON, and index.html listing every run.  Figures are rendered (Agg) and
measured, so a regression shows as pixels or boxes, not as code review."""

from __future__ import annotations

import html
import itertools
import json
import re
from pathlib import Path

import numpy as np
from records import base_events, base_final, base_samples, make_run, sample, write

from walsim.api import open_run
from walsim.judge.report import (NODE_PALETTE, build_index, build_report, figure_lag, figure_ledger, figure_lsn,
                                 lanes, node_colours, plot_png)
from walsim.judge.verdict import Verdict

VERDICTS = '[[verdicts]]\ncheck = "no_acked_loss"\n'


def _colours_of(fig) -> dict[str, str]:
    import matplotlib.colors as mc
    out = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                out[line.get_label()] = mc.to_hex(line.get_color())
    return out


def _run(tmp_path: Path, events=None, samples=None) -> Path:
    ledger = [write(1, 2.0, "acked"), write(2, 4.5, "acked"), write(3, 4.9, "indeterminate"),
              write(4, 6.5, "acked", node="pg2")]
    return make_run(tmp_path, VERDICTS, events=events or base_events(), samples=samples or base_samples(),
                    ledger=ledger, final=base_final([1, 4]))


def test_one_colour_per_node_in_every_plot(tmp_path: Path) -> None:
    rec = open_run(_run(tmp_path))
    colours = node_colours(rec)
    assert colours == {"pg1": NODE_PALETTE[0], "pg2": NODE_PALETTE[1], "pg3": NODE_PALETTE[2]}
    lsn, lag = figure_lsn(rec), figure_lag(rec)
    assert _colours_of(lsn) == colours
    assert _colours_of(lag) == {"pg2": colours["pg2"], "pg3": colours["pg3"]}  # standbys only, same colours
    ledger = figure_ledger(rec)
    import matplotlib.colors as mc
    ticks = {t.get_text(): mc.to_hex(t.get_color()) for t in ledger.axes[0].get_yticklabels()}
    assert ticks == {"pg1": colours["pg1"], "pg2": colours["pg2"]}
    for f in (lsn, lag, ledger):
        plot_png(f)


def _pixels(fig, ax, colour: str) -> int:
    """Pixels of exactly ``colour`` (give or take antialiasing) inside the axes
    (the legend, outside them, does not count)."""
    import matplotlib.colors as mc
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(int)
    box = ax.get_window_extent()
    h = rgba.shape[0]
    inside = rgba[int(h - box.y1):int(h - box.y0), int(box.x0):int(box.x1)]
    target = np.array([round(c * 255) for c in mc.to_rgb(colour)])
    return int((np.abs(inside - target).sum(axis=2) <= 6).sum())


def test_a_series_equal_to_another_stays_visible(tmp_path: Path) -> None:
    """pg1 (primary insert) and pg3 (replay) identical at every sample: both
    must still be drawn where they coincide."""
    samples = []
    for i in range(40):
        t = 1.0 + i * 0.1
        samples.append(sample(t, "pg1", "primary", 0x3000000 + i * 0x4000))
        samples.append(sample(t, "pg2", "standby", 0x3000000 + i * 0x1000))
        samples.append(sample(t, "pg3", "standby", 0x3000000 + i * 0x4000))
    events = [{"t": 0.0, "type": "run_start"}, {"t": 5.0, "type": "run_end"}]
    fig = figure_lsn(open_run(_run(tmp_path, events=events, samples=samples)))
    colours = node_colours(open_run(tmp_path / "run"))
    ax = next(a for a in fig.axes if a.get_lines() and a.get_legend() is not None)
    counts = {n: _pixels(fig, ax, c) for n, c in colours.items()}
    assert all(v > 300 for v in counts.values()), counts
    plot_png(fig)


def test_lanes_put_overlapping_spans_apart() -> None:
    assert lanes([(0, 2), (1, 3), (2.5, 4), (5, 6)]) == [0, 1, 0, 0]
    assert lanes([(0, 1)] * 4) == [0, 1, 2, 3]
    assert lanes([(0, 1), (1.05, 2)], gap=0.1) == [0, 1]
    spans = [(0, 5), (1, 2), (1.5, 3), (2.5, 6), (4, 4.5)]
    got = lanes(spans)
    for (a, la), (b, lb) in itertools.combinations(zip(spans, got), 2):
        if la == lb:
            assert a[1] <= b[0] or b[1] <= a[0]
    assert max(got) + 1 == 3  # the most spans over one point


def _crowded_events() -> list[dict]:
    ev = [{"t": 0.0, "type": "run_start"}, {"t": 1.0, "type": "cluster_ready"}]
    for i in range(6):  # six faults installed at the same instant
        ev.append({"t": 2.0, "type": "fault_on", "id": f"fault-number-{i}", "kind": "delay", "target": "l2"})
    for i in range(6):
        ev.append({"t": 4.0 + 0.01 * i, "type": "fault_off", "id": f"fault-number-{i}", "kind": "delay"})
    for i, (kind, node) in enumerate([("kill", "pg1"), ("promote", "pg2"), ("repoint", "pg3"), ("start", "pg1")]):
        ev.append({"t": 5.0 + 0.02 * i, "type": "step_start", "id": f"s{i}", "kind": kind, "node": node, "step": i})
        ev.append({"t": 5.0 + 0.02 * i + 0.01, "type": "step_end", "id": f"s{i}", "kind": kind, "step": i,
                   "ok": True})
    ev.append({"t": 8.0, "type": "run_end"})
    return ev


def test_fault_and_step_labels_do_not_overlap(tmp_path: Path) -> None:
    rec = open_run(_run(tmp_path, events=_crowded_events()))
    for make in (figure_lsn, figure_lag, figure_ledger):
        fig = make(rec)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        texts = [t for ax in fig.axes for t in ax.texts if t.get_gid() == "walsim-label"]
        assert len(texts) == 10  # six faults, four steps
        boxes = [t.get_window_extent(renderer) for t in texts]
        for (ta, a), (tb, b) in itertools.combinations(zip(texts, boxes), 2):
            assert not a.overlaps(b), f"{ta.get_text()!r} overlaps {tb.get_text()!r}"
        width, height = fig.canvas.get_width_height()
        for t, b in zip(texts, boxes):
            assert 0 <= b.x0 and b.x1 <= width and 0 <= b.y0 and b.y1 <= height, f"{t.get_text()!r} leaves the image"
        plot_png(fig)


def test_timeline_details_are_json(tmp_path: Path) -> None:
    events = base_events()
    events[4]["detail"] = {"netd": {"active": True, "fires": 0}, "none": None}  # step_end of c1
    d = _run(tmp_path, events=events)
    page = build_report(open_run(d), [Verdict("x", "no_acked_loss", "PASS", "ok", {"flag": True})]).read_text()
    pres = [html.unescape(p) for p in re.findall(r"<pre>(.*?)</pre>", page, re.S)]
    parsed = [json.loads(p) for p in pres]  # every detail and evidence block is JSON
    assert {"netd": {"active": True, "fires": 0}} in parsed and {"flag": True} in parsed
    assert "True" not in "".join(pres)
    assert "max-width" not in page and "figure img { width: 100%" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from the network


def test_index_lists_every_run(tmp_path: Path) -> None:
    parent = tmp_path / "walsim-runs"
    parent.mkdir()
    a = _run(parent)
    a = a.rename(parent / "synthetic-20260101-000000-seed1")
    (a / "run.json").write_text(json.dumps({"scenario": "synthetic", "seed": 1, "started": "2026-01-01T00:00:00Z",
                                            "exit_status": 1, "elapsed_s": 9.5, "reproduce": "walsim-cli run x"}))
    build_report(open_run(a), [Verdict("x", "no_acked_loss", "FAIL", "lost", {}),
                               Verdict("y", "converge", "PASS", "ok", {})])
    (a / "verdicts.json").write_text(json.dumps([{"name": "x", "check": "c", "result": "FAIL", "summary": "",
                                                  "evidence": {}},
                                                 {"name": "y", "check": "c", "result": "PASS", "summary": "",
                                                  "evidence": {}}]))
    b = parent / "other-20260102-000000-seed7"
    b.mkdir()
    (b / "run.json").write_text(json.dumps({"scenario": "other", "seed": 7, "started": "2026-01-02T00:00:00Z"}))
    (parent / "not-a-run").mkdir()
    page = build_index(parent).read_text()
    rows = re.findall(r"<tr>\s*<td class=\"num\">(.*?)</td>\s*<td class=\"name\">(.*?)</td>", page)
    assert rows == [("2026-01-02T00:00:00Z", "other"), ("2026-01-01T00:00:00Z", "synthetic")]  # newest first
    assert 'href="synthetic-20260101-000000-seed1/report.html"' in page
    assert "other-20260102-000000-seed7 (no report)" in page and "not judged" in page
    assert "failed (1)" in page and "not-a-run" not in page
    assert '<a href="../index.html">all runs</a>' in (a / "report.html").read_text()
