"""judge-bench: agreement statistics against a hand computation, the labelled sets, and the command run
against a real `judge-serve` endpoint on a tiny model (resumable through the judge cache)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from judge_helpers import (
    MODEL_NAME,
    REPO,
    env_with_repo,
    kill_after_calls,
    save_dominant_model,
    start_server,
)

from analysis.judge.agreement_stats import agreement_stats
from analysis.judge.bench_sets import conva_csr, sample, split_of, valuebench_t1

MODELS = ("gpt-4-1106-preview", "gpt-3.5-turbo-1106", "llama-7b-chat", "llama-70b-chat", "mistral-7b-instruct",
          "mixtral-8x7b-instruct")


def test_kappa_and_alpha_equal_a_hand_computation():
    # confusion (gold rows, judge columns):  yes  no
    #                                   yes    4   1
    #                                   no     2   3      + one unscored "no" item
    gold = ["yes"] * 5 + ["no"] * 5 + ["no"]
    pred = ["yes"] * 4 + ["no"] + ["yes"] * 2 + ["no"] * 3 + [None]
    s = agreement_stats(gold, pred, ["yes", "no"], n_bootstrap=200, seed=1)
    # p_o = 7/10; gold yes 5/10, judge yes 6/10 -> p_e = .5*.6 + .5*.4 = .5; kappa = (.7-.5)/.5 = 0.4
    assert s.n == 11 and s.n_scored == 10 and s.accuracy == pytest.approx(0.7)
    assert s.kappa == pytest.approx(0.4)
    # Krippendorff (2 coders, nominal): coincidences o_yy = 8, o_nn = 6, o_yn = o_ny = 3; n_y = 11, n_n = 9,
    # n = 20: D_o = 3 + 3 = 6, D_e = 2 * 11 * 9 / 19; alpha = 1 - 6 / (198 / 19) = 1 - 114/198
    assert s.alpha == pytest.approx(1 - 114 / 198)
    assert s.confusion == {"yes": {"yes": 4, "no": 1, "(unscored)": 0}, "no": {"yes": 2, "no": 3, "(unscored)": 1}}
    assert s.kappa_ci.low <= s.kappa <= s.kappa_ci.high and s.kappa_ci.low < s.kappa_ci.high
    assert s.unscored_share == pytest.approx(1 / 11)
    again = agreement_stats(gold, pred, ["yes", "no"], n_bootstrap=200, seed=1)
    assert again.kappa_ci == s.kappa_ci  # seeded


def write_valuebench(path: Path, rows: list[tuple[str, list[tuple[str, int]]]]) -> Path:
    """A ValueBench rated-answers CSV: per question, (answer, rating) of the first models."""
    cols = ["question", "corresponding value"] + [f"{m}_{k}" for m in MODELS for k in ("answer", "rating")]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for question, answers in rows:
            row = {"question": question, "corresponding value": "Order"}
            for m, (answer, rating) in zip(MODELS, answers, strict=False):
                row[f"{m}_answer"], row[f"{m}_rating"] = answer, rating
            w.writerow(row)
    return path


def eval_questions(n: int) -> list[str]:
    """n questions that fall in the eval split."""
    out, i = [], 0
    while len(out) < n:
        q = f"Should I keep habit number {i}?"
        if split_of(q) == "eval":
            out.append(q)
        i += 1
    return out


def test_valuebench_gold_mapping_splits_and_stratified_sample(tmp_path):
    qs = [f"Should I do thing {i}?" for i in range(60)]
    path = write_valuebench(tmp_path / "vb.csv", [(q, [("Yes.", 9), ("No.", 1), ("Maybe.", 5), ("Sure.", 7),
                                                        ("Nah.", 3), ("Hmm.", 4)]) for q in qs])
    bench = valuebench_t1(path)
    golds = {it.item_id.split(":")[2]: it.gold for it in bench.items if it.item_id.startswith("valuebench:0:")}
    assert golds == {MODELS[0]: "yes", MODELS[1]: "no", MODELS[2]: "unsure", MODELS[3]: "yes", MODELS[4]: "no",
                     MODELS[5]: "unsure"}  # >= 7 yes, <= 3 no, else unsure
    fit_q = {it.fields["question"] for it in bench.items if it.split == "fit"}
    eval_q = {it.fields["question"] for it in bench.items if it.split == "eval"}
    assert fit_q and eval_q and not fit_q & eval_q  # held out by question
    s = sample(bench, 30, seed=3)
    assert [sum(it.gold == lab for it in s) for lab in ("yes", "no", "unsure")] == [10, 10, 10]
    assert {it.split for it in s} == {"eval"}
    assert [it.item_id for it in sample(bench, 30, seed=3)] == [it.item_id for it in s]
    assert [it.item_id for it in sample(bench, 30, seed=4)] != [it.item_id for it in s]


def test_conva_csr_set_reads_replies_beside_labels_and_names_missing_ones(tmp_path):
    path = tmp_path / "csr.csv"
    path.write_text("value,doc,question,Base,Base reply,CAA,CAA reply\n"
                    "power,0,Should I lead?,0,I would let others lead.,1,I would take charge.\n"
                    "power,1,Should I rule?,,,1,Yes: power matters.\n")
    bench = conva_csr(path)
    got = sorted((it.meta["method"], it.meta["doc"], it.gold, it.fields["answer"]) for it in bench.items)
    assert got == [("Base", 0, False, "I would let others lead."), ("CAA", 0, True, "I would take charge."),
                   ("CAA", 1, True, "Yes: power matters.")]
    assert bench.items[0].fields["basic_value"] == "power" and "status" in bench.items[0].fields["value_description"]
    labels_only = tmp_path / "labels.csv"
    labels_only.write_text("value,doc,Base,CAA\npower,0,0,1\n")
    with pytest.raises(ValueError) as e:
        conva_csr(labels_only)
    assert "'Base reply'" in str(e.value) and "valuebench-t1" in str(e.value) and str(e.value).count(". ") == 0


def test_conva_csr_without_replies_fails_in_one_sentence(tmp_path):
    labels_only = tmp_path / "labels.csv"
    labels_only.write_text("value,doc,Base,CAA\npower,0,0,1\n")
    r = subprocess.run([sys.executable, "-m", "analysis", "judge-bench", "--set", "conva-csr", "--data",
                        str(labels_only), "--out", str(tmp_path / "x")],
                       cwd=REPO, env=env_with_repo(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not the replies they label" in r.stderr


def test_conva_fr_set_pairs_each_reply_with_its_shuffled_words(tmp_path):
    from analysis.judge.bench_sets import conva_fr

    path = tmp_path / "csr.csv"
    path.write_text("value,doc,question,Base,Base reply,CAA,CAA reply\n"
                    "power,0,Should I lead?,0,I would let others lead.,1,I would let others lead.\n"
                    "power,1,Should I rule?,,,1,Yes: power matters to me.\n"
                    "power,2,Should I rule now?,1,Too short,,\n")
    bench = conva_fr(path)
    got = [(it.gold, it.fields["answer"]) for it in bench.items]
    # one pair per distinct reply of 4+ words; the shuffled copy has the same words in another order
    assert [g for g, _ in got] == [True, False, True, False]
    assert got[0][1] == "I would let others lead." and got[2][1] == "Yes: power matters to me."
    for (_, fluent), (_, salad) in zip(got[::2], got[1::2], strict=True):
        assert salad != fluent and sorted(salad.split()) == sorted(fluent.split())
    assert bench.items[0].split == bench.items[1].split == split_of("Should I lead?")
    assert conva_fr(path).items == bench.items  # seeded


@pytest.fixture(scope="module")
def yes_server(tiny_llama_dir, tmp_path_factory):
    """judge-serve on a tiny model that always answers "yes" (one token), 0.2 s per completion."""
    model = save_dominant_model(tiny_llama_dir, tmp_path_factory.mktemp("yes") / "m", "yes")
    srv = start_server(model, extra_args=("--delay", "0.2"))
    yield srv
    srv.stop()


def bench_cmd(data: Path, out: Path, n: int) -> list[str]:
    return [sys.executable, "-m", "analysis", "judge-bench", "--set", "valuebench-t1", "--data", str(data),
            "--n", str(n), "--seed", "0", "--bootstrap", "50", "--out", str(out)]


def test_judge_bench_against_an_endpoint_metrics_and_resume(yes_server, tmp_path, monkeypatch):
    qs = eval_questions(4)
    # per question: gold yes, no, unsure (ratings 9, 1, 5): 12 eval items, 4 of each
    data = write_valuebench(tmp_path / "vb.csv", [(q, [(f"yes-ish {q}", 9), (f"no-ish {q}", 1),
                                                       (f"unsure-ish {q}", 5)]) for q in qs])
    env = env_with_repo({"VALUE_JUDGE_BASE_URL": yes_server.base_url, "VALUE_JUDGE_MODEL": MODEL_NAME,
                         "VALUE_JUDGE_MAX_TOKENS": "1", "VALUE_JUDGE_CONCURRENCY": "1",
                         "VALUE_JUDGE_CACHE": str(tmp_path / "c.sqlite"),
                         "VALUE_STEERING_CACHE": str(tmp_path / "vsc")})
    out = tmp_path / "bench"
    before = yes_server.completions()
    kill_after_calls(yes_server, bench_cmd(data, out, 12), env, 4)
    time.sleep(0.5)  # a request in flight at the kill may still finish server-side
    mid = yes_server.completions()
    from analysis.cli import main

    for k, v in env.items():  # the rerun in this process (its start-up is the slow part of a subprocess)
        if k.startswith(("VALUE_JUDGE_", "VALUE_STEERING_")):
            monkeypatch.setenv(k, v)
    assert main(bench_cmd(data, out, 12)[3:]) == 0
    # every item asked once in all: the rerun asked only what the killed run had not stored
    assert yes_server.completions() - before <= 12 + 1
    cached = sum(json.loads(line)["cached"] for line in (out / "verdicts.jsonl").read_text().splitlines())
    assert yes_server.completions() - mid == 12 - cached and cached >= 3
    res = json.loads((out / "judge_bench.json").read_text())
    # the judge says "yes" to all: accuracy 4/12, kappa 0 (a constant rater), alpha by hand below
    assert res["n"] == 12 and res["n_scored"] == 12 and res["accuracy"] == pytest.approx(4 / 12)
    assert res["kappa"] == pytest.approx(0.0)
    # coincidences: o_yy = 8, o_yn = o_ny = 4, o_yu = o_uy = 4; n_y = 16, n_n = 4, n_u = 4, n = 24
    # D_o = 16; D_e = (2*16*4 + 2*16*4 + 2*4*4) / 23 = 288/23; alpha = 1 - 16*23/288
    assert res["alpha"] == pytest.approx(1 - 16 * 23 / 288)
    assert res["confusion"]["no"]["yes"] == 4 and res["confusion"]["yes"]["yes"] == 4
    assert res["judge_id"] == f"openai:{MODEL_NAME}@127.0.0.1:{yes_server.port}"
    assert res["verdicts_per_second"] > 0 and res["yes_no_subset"]["n"] == 8
    for key in ("judge_id", "set", "n", "n_scored", "accuracy", "kappa", "alpha", "verdicts_per_second", "confusion"):
        assert key in res
    assert "| all | 12 | 12 | 0.333" in (out / "judge_bench.md").read_text()
    # filed for the tables: the newest measurement of this judge
    from analysis.judge import measured

    filed = list((tmp_path / "vsc" / "judge-bench").rglob("*.json"))
    assert len(filed) == 1 and json.loads(filed[0].read_text())["kappa"] == pytest.approx(0.0)
    # a third run asks nothing
    again = yes_server.completions()
    assert main(bench_cmd(data, out, 12)[3:]) == 0
    assert yes_server.completions() == again
    assert measured.SET_OF_TEMPLATE["answer_judgment"] == "valuebench-t1"
