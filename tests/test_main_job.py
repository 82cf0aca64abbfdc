"""examples/main_job.sh (README command 1) end to end on a tiny random Llama and a tiny TopK SAE (the script's
PRETRAINED / SAE / LAYER settings), at a size that takes ~1-2 minutes: one sweep, then the report, the printed
summary, summary.json and report.html. The embedded default model runs the same script (`bash
examples/main_job.sh`; bench/RESULTS.md has its figures)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def tiny_sae_dir(tmp_path) -> Path:
    import torch
    from sae_lens import TopKSAE, TopKSAEConfig

    torch.manual_seed(2)
    sae = TopKSAE(TopKSAEConfig(d_in=64, d_sae=48, k=6))
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(64, 48))
        sae.W_dec.copy_(torch.nn.functional.normalize(torch.randn(48, 64), dim=1))  # unit rows, as the shipped SAE
    sae.cfg.metadata.hook_name = "blocks.1.hook_resid_post"
    sae.save_model(tmp_path / "sae")
    return tmp_path / "sae"


@pytest.mark.slow
def test_main_job_script_on_a_tiny_model(tiny_llama_dir, tiny_sae_dir, tmp_path):
    out = tmp_path / "job"
    env = {**os.environ, "OUT": str(out), "PRETRAINED": str(tiny_llama_dir), "SAE": str(tiny_sae_dir), "LAYER": "1",
           "FEATURES": "3, 7", "STRENGTH": "4, 32", "ROLES": "4", "ITEM_FRACTION": "0.1", "BOOTSTRAP": "20",
           "PLUS": " no", "MINUS": " your", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(REPO / "examples" / "main_job.sh")], env=env, cwd=tmp_path, text=True,
                          capture_output=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout
    configs = ["unsteered", "sae-f3-s4", "sae-f3-s32", "sae-f7-s4", "sae-f7-s32", "vec-no-your-x4", "vec-no-your-x32"]
    # the summary and where everything went
    assert re.search(r"^7 configs x 4 roles \(28 orientation rows\) in \d+ s; orientations: mean soft item score",
                     printed, re.M), printed
    assert "Figure 4 (Kang et al.)" in printed and re.search(r"^causal value graph", printed, re.M)
    assert printed.rstrip().splitlines()[-1] == (f"Results: {out}  (sweep: {out}/sweep; summary: {out}/summary.json; "
                                                 f"report: {out}/report/report.html)")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["configs"] == configs and summary["roles"] == ["r0", "r1", "r2", "r3"]
    assert summary["wall_seconds"] > 0 and summary["score"] == "soft" and summary["atol"] == 0.1
    assert set(summary["figure4"]) == {"role", "sae"} and set(summary["figure4"]["sae"]) >= {"expected", "unexpected"}
    assert summary["pc_edges"] is None or summary["pc_edges"] >= 0
    assert (out / "sae_features.txt").read_text().split() == configs[1:5]
    page = (out / "report" / "report.html").read_text()
    assert "<section id='summary'>" in page and "id='plot-dose_response'" in page  # two strengths per direction
    # a quiet console: no lm-eval per-subtask warning, no per-subtask request bars (they have no description)
    assert "Custom kwargs" not in proc.stderr
    assert not re.search(r"(^|\r)\s*100%\|", proc.stderr), proc.stderr[-2000:]
    # a rerun resumes: every config is already done, the sweep computes nothing
    again = subprocess.run(["bash", str(REPO / "examples" / "main_job.sh")], env=env, cwd=tmp_path, text=True,
                           capture_output=True, timeout=600)
    assert again.returncode == 0 and "7/7 configs done" in again.stdout + again.stderr
