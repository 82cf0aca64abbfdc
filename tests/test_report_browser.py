"""report.html in a real browser: a tiny real sweep (tiny random Llama, the loglikelihood questionnaire, r0 + 2
train roles, unsteered + `add` vectors at two strengths) -> ``analysis report`` -> headless Chromium, which must
show every image (none broken), log no console error and no page error; a full-page screenshot is saved under
the test's tmp dir (``report.png``).

Needs Chromium and Playwright's Python client (it drives the system Chromium; no browser download):
``apt-get install -y chromium && pip install ".[browser]"`` (Playwright), then
``python -m pytest -q -m slow tests/test_report_browser.py``. Without them the test is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import write_vector_sweep

HOW = ("needs headless Chromium and Playwright: `apt-get install -y chromium && pip install playwright` "
       "(or the `browser` extra), then "
       "`python -m pytest -q -m slow tests/test_report_browser.py`")


def _chromium() -> str:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.skip(f"no Chromium on PATH: this test {HOW}")


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tiny_llama_dir, tiny_task_dir, tmp_path):
    browser_path = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason=f"Playwright is not installed: this test {HOW}")
    from analysis.report import build_report
    from steering_models.sweep import run_sweep

    sweep = write_vector_sweep(tmp_path, tiny_llama_dir, tiny_task_dir, ["valuebench_ll_train"], n_configs=3, seed=0,
                               metadata={"num_roles": 3, "item_fraction": 0.1}, configs_per_pass=5)
    text = sweep.read_text().replace("strength: 6", "strength: [6, 24]")
    sweep.write_text(text)
    run_sweep(sweep, tmp_path / "sweep", progress=False)
    rep = build_report(sorted(str(p) for p in (tmp_path / "sweep" / "configs").iterdir()), tmp_path / "report",
                       n_boot=20, progress=False)
    page_path = tmp_path / "report" / "report.html"
    assert rep.summary is not None and rep.summary.configs[0] == "unsteered" and len(rep.summary.configs) == 5

    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
            order = page.evaluate("[document.querySelector('#summary') !== null, "
                                  "document.querySelector('#summary').compareDocumentPosition("
                                  "document.querySelector('.toc')) & Node.DOCUMENT_POSITION_FOLLOWING]")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
    assert len(images) >= 4, images  # graph, orientation bars, dose-response, SAE heatmap at least
    broken = [alt for alt, complete, width in images if not complete or width == 0]
    assert not broken, f"broken images: {broken}"
    assert order[0] and order[1], "the summary must come before the contents"
    assert "dose_response" in {p.stem for p in (tmp_path / "report" / "plots").glob("*.png")}
    assert shot.stat().st_size > 20_000
