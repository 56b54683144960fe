"""HTML and Markdown reports: self-contained, escaped, reproducible; and drawn in a real browser.

The browser check needs Debian's Chromium (``apt-get install -y chromium chromium-driver``); it is
skipped, saying so, only when no Chromium binary exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from compare_fakes import fake_candidates, fake_comparison, fake_report
from steelyard.cli.main import run
from steelyard.comparison.config import Constraints
from steelyard.models.loading import LoadConfig
from steelyard.models.tasks import InputSpec
from steelyard.profiling.profile import ProfileConfig
from steelyard.reporting.html import render_html, render_markdown, report_document, write_report
from steelyard.store import open_store
from steelyard.store.record import record_comparison, record_profile
from steelyard.units import Seconds

LIMITS = Constraints(max_latency=Seconds(0.05), min_accuracy=0.85)


def measured_comparison():
    """The fake comparison with measured local timings (latency distributions to draw)."""
    from compare_fakes import ENV, HARDWARE, fake_config
    from steelyard.comparison.compare import assemble
    from steelyard.profiling.latency import summarize

    cands = fake_candidates(measured=True)
    for i, c in enumerate(cands):
        c.interleaved = summarize([0.001 * (i + 1) * (1 + 0.01 * k) for k in range(10)], batch_size=1, warmup=0,
                                  threads=4, timer="interleaved perf_counter")
    return assemble([c.model for c in cands], cands, list(HARDWARE), fake_config(LIMITS), ENV, threads=4)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    """A two-part report: the comparison and a measured profile, written to disk."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    doc = report_document([("comparison", measured_comparison(), 7),
                           ("profile", fake_report("tiny", 10_000_000, 2.0, 40e6, measured_ms=8.0), 3)])
    write_report(doc, html=path)
    return path


def _figure_specs(html: str) -> list[dict]:
    blocks = re.findall(r'<script type="application/json" id="fig-\d+-data">(.*?)</script>', html, flags=re.S)
    return [json.loads(b) for b in blocks]


def test_report_is_self_contained(report_html):
    html = report_html.read_text(encoding="utf-8")
    import plotly.offline

    library = plotly.offline.get_plotlyjs()
    assert library in html  # the library itself, inline
    assert not re.search(r'<script[^>]+src=', html) and not re.search(r'<link[^>]+href=', html)
    ours = html.replace(library, "")
    assert "http://" not in ours and "https://" not in ours  # nothing else is fetched either
    specs = _figure_specs(html)
    expected = int(re.search(r'data-plots-expected="(\d+)"', html).group(1))
    assert expected == len(specs) >= 8
    assert all(spec["data"] for spec in specs)  # every chart has data embedded
    titles = " ".join(spec["layout"]["title"]["text"] for spec in specs)
    for fragment in ("Pareto front", "Per-layer FLOPs", "Latency per batch", "Throughput sweep", "Lifetime cost",
                     "Memory", "Latency per hardware"):
        assert fragment in titles
    for fragment in ("Recommendation: base @ a100-80gb", "Candidates × hardware", "Accessibility", "Environment",
                     "Reproduce", "steelyard compare models/tiny models/base models/huge", "Profile: tiny"):
        assert fragment in html


def test_pareto_chart_marks_front_and_choice():
    comp = fake_comparison(LIMITS)
    doc = report_document([("comparison", comp, None)])
    pareto = next(f.spec for s in doc.parts[0].sections for f in s.figures if "Pareto" in f.title)
    traces = {t["name"]: t for t in pareto["data"]}
    assert set(comp.hardware) <= set(traces)
    assert traces["recommended: base @ a100-80gb"]["x"] == [pytest.approx(2.2)]  # ms
    t4 = traces["t4"]
    assert t4["text"] == ["tiny", "base", "huge"]
    assert t4["marker"]["symbol"] == ["circle", "circle", "x-open"]  # huge does not fit a T4
    assert traces["laptop-cpu"]["marker"]["symbol"] == ["circle-open", "circle-open", "x-open"]
    # the staircase joins the front of the two drawn axes (latency, accuracy): tiny, base, huge on the A100
    stairs = traces["front on these two axes"]
    assert stairs["x"] == [pytest.approx(0.2), pytest.approx(2.2), pytest.approx(100)]
    assert stairs["y"] == [0.82, 0.90, 0.93] and stairs["line"]["shape"] == "hv"


def test_text_is_escaped():
    report = fake_report("<script>alert(1)</script>", 10_000_000, 2.0, 40e6)
    html = render_html(report_document([("profile", report, None)]))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("evil", ["<script>alert(1)</script>", '<img src=x onerror="alert(1)">',
                                  "![x](http://tracker.example/p.png)"])
def test_names_and_labels_cannot_inject_html_into_markdown_or_html(evil):
    doc = report_document([("profile", fake_report(evil, 10_000_000, 2.0, 40e6), None)])
    md, page = render_markdown(doc), render_html(doc)
    prose = re.sub(r"(?ms)^(`{3,})[a-z]*\n.*?^\1$", "", md)  # fenced code shows its text verbatim: safe
    assert evil not in prose and "<script" not in prose and "<img" not in prose and "](http" not in prose
    if "<" in evil:  # HTML: shown as text; the chart JSON keeps it as data with <\/ escaped
        assert evil not in page and "&lt;" in page


def test_markdown_export():
    md = render_markdown(report_document([("comparison", fake_comparison(LIMITS), 5)]))
    assert md.startswith("# steelyard — Comparison: tiny vs base vs huge")
    assert "### Recommendation: base @ a100-80gb" in md
    assert "| model | hardware | accuracy (95% CI) |" in md
    assert "```sh\nsteelyard compare models/tiny" in md
    assert "*Chart: Pareto front (interactive in the HTML report).*" in md


def test_report_command_for_stored_profile_and_comparison(tmp_path, capsys):
    report = fake_report("tiny", 10_000_000, 2.0, 40e6, measured_ms=8.0)
    load = LoadConfig(inputs=InputSpec(batch_size=1, seq_len=128))
    profile_id, _ = record_profile(report, [load, ProfileConfig(hardware=("local", "t4"), runs=10, threads=2)])
    comparison_id, _ = record_comparison(fake_comparison(LIMITS))
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    assert run(["report", str(profile_id), str(comparison_id), "--html", str(html), "--markdown", str(md)]) == 0
    assert f"wrote {html}" in capsys.readouterr().out
    text = md.read_text()
    assert "## Profile: tiny" in text and "## Comparison: tiny vs base vs huge" in text
    assert "steelyard profile tiny --batch-size 1 --seq-len 128 --hardware local,t4 --runs 10 --warmup 3 --threads 2" \
        in text
    assert f"_run {profile_id} · text-classification" in text
    assert html.read_text().count('class="plot"') == len(_figure_specs(html.read_text()))


def test_report_without_a_file_option_writes_report_html_here(tmp_path, capsys, monkeypatch):
    profile_id, _ = record_profile(fake_report("tiny", 10_000_000, 2.0, 40e6), [LoadConfig()])
    monkeypatch.chdir(tmp_path)
    assert run(["report", str(profile_id)]) == 0
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert f"wrote {tmp_path / 'report.html'}" in capsys.readouterr().out


def test_report_of_a_kind_without_builder_is_generic(tmp_path):
    store = open_store()
    run_id = store.save_run("experiment", "tiny", config={"recipe": ["prune 30%"], "command": "steelyard x"},
                            environment={"cpu_model": "Test CPU", "threads": 2}, payload={"speedup": 1.4},
                            metrics={"speedup": (1.4, None), "latency_s": (0.004, "s")})
    md = tmp_path / "g.md"
    assert run(["report", str(run_id), "--markdown", str(md)]) == 0
    text = md.read_text()
    assert "## Experiment: tiny" in text and "| speedup | 1.4 |" in text and "steelyard x" in text
    assert '"prune 30%"' in text


# -- the browser check ---------------------------------------------------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--virtual-time-budget=20000"]


def chromium_binary() -> str | None:
    for name in (os.environ.get("STEELYARD_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


needs_chromium = pytest.mark.skipif(
    chromium_binary() is None,
    reason="no Chromium binary found (install it with: apt-get install -y chromium chromium-driver)",
)


def chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chrome-profile-{len(list(tmp_path.iterdir()))}"
    cmd = [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           *extra, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def console_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line and ("Uncaught" in line or "Error" in line or "error" in line)]


@needs_chromium
def test_browser_draws_every_chart_without_console_errors(report_html, tmp_path):
    html = report_html.read_text(encoding="utf-8")
    expected = int(re.search(r'data-plots-expected="(\d+)"', html).group(1))
    done = chromium(report_html, tmp_path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert f'data-plots-rendered="{expected}"' in dom, re.findall(r"data-plots-[a-z]+=\"[^\"]*\"", dom)
    assert 'data-plots-done="true"' in dom
    assert 'data-js-errors="0"' in dom
    assert dom.count('class="main-svg"') >= expected  # plotly drew an SVG per chart
    assert len(re.findall(r'class="point"', dom)) > 20  # markers and bars are in the SVGs, not empty axes
    assert console_problems(done.stderr) == []


@needs_chromium
def test_browser_screenshot_is_not_blank(report_html, tmp_path):
    shot = tmp_path / "report.png"
    done = chromium(report_html, tmp_path, "--window-size=1400,2400", f"--screenshot={shot}")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    Image = pytest.importorskip("PIL.Image", reason="Pillow reads the screenshot")
    with Image.open(shot) as im:
        colours = im.convert("RGB").resize((350, 600)).getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 200  # text, tables and coloured charts, not one flat colour


@needs_chromium
def test_browser_check_catches_a_broken_page(tmp_path):
    """Negative control: the same checks flag a report whose script fails."""
    page = tmp_path / "broken.html"
    page.write_text(render_html(report_document([("comparison", fake_comparison(LIMITS), None)]))
                    .replace("Plotly.newPlot(", "Plotly.noSuchFunction("), encoding="utf-8")
    done = chromium(page, tmp_path, "--dump-dom")
    assert 'data-plots-rendered="0"' in done.stdout
    assert 'data-js-errors="0"' not in done.stdout
    assert console_problems(done.stderr)
