"""The openai-client judge against a real OpenAI-compatible server (`python -m analysis judge-serve`
serving a tiny random Llama on 127.0.0.1, started here): calls are counted at the server."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from judge_helpers import MODEL_NAME, env_with_repo, free_port, kill_after_calls, start_server

from lm_eval_tasks.judge import JudgeError, build_judge
from lm_eval_tasks.judge.settings import load_settings

KEY = "sk-test-7f3a9c-SECRET-do-not-log"


@pytest.fixture(scope="module")
def server(tiny_llama_dir):
    srv = start_server(tiny_llama_dir, key=KEY)
    yield srv
    srv.stop()


def judge_for(server, cache: Path, **overrides: str):
    env = {"VALUE_JUDGE_BASE_URL": server.base_url, "VALUE_JUDGE_MODEL": MODEL_NAME,
           "VALUE_JUDGE_API_KEY": KEY, "VALUE_JUDGE_CACHE": str(cache), "VALUE_JUDGE_MAX_TOKENS": "8",
           "VALUE_JUDGE_MAX_RETRIES": "0", "VALUE_JUDGE_CONCURRENCY": "4"}
    env.update(overrides)
    return build_judge(load_settings(env))


def answers(n: int, tag: str) -> list[dict[str, str]]:
    return [{"answer": f"{tag} reply number {i}"} for i in range(n)]


def test_second_run_makes_zero_calls(server, tmp_path):
    before = server.completions()
    first = judge_for(server, tmp_path / "c.sqlite").judge_many("fluency", answers(5, "zero"))
    assert server.completions() - before == 5
    assert not any(v.cached for v in first)
    again = judge_for(server, tmp_path / "c.sqlite").judge_many("fluency", answers(5, "zero"))
    assert server.completions() - before == 5  # nothing asked the second time
    assert all(v.cached for v in again)
    assert [v.raw for v in again] == [v.raw for v in first]
    assert again[0].judge_id == f"openai:{MODEL_NAME}@127.0.0.1:{server.port}"
    assert again[0].template_version == "conva-t13/v1"


def test_no_cache_asks_again(server, tmp_path):
    j = judge_for(server, tmp_path / "c.sqlite")
    j.judge_many("fluency", answers(2, "nocache"))
    before = server.completions()
    judge_for(server, tmp_path / "c.sqlite", VALUE_JUDGE_NO_CACHE="1").judge_many(
        "fluency", answers(2, "nocache"))
    assert server.completions() - before == 2


def test_duplicate_prompts_are_asked_once(server, tmp_path):
    before = server.completions()
    vs = judge_for(server, tmp_path / "c.sqlite").judge_many("fluency", answers(1, "dup") * 3)
    assert server.completions() - before == 1 and len({v.raw for v in vs}) == 1


def test_unparseable_reply_is_unscored_with_raw_kept(server, tmp_path):
    (v,) = judge_for(server, tmp_path / "c.sqlite").judge_many("csr", [{
        "basic_value": "power", "value_description": "social status", "question": "Q?",
        "answer": "A."}])
    # a random-weight model writes no "Yes"/"No": unscored, the text kept
    assert v.parsed is None and v.raw != "" and not v.scored


def settled_completions(server, quiet: float = 1.0) -> int:
    last, since = server.completions(), time.time()
    while time.time() - since < quiet:
        time.sleep(0.1)
        now = server.completions()
        if now != last:
            last, since = now, time.time()
    return last


def test_killed_run_resumes(server, tmp_path):
    n, cache = 10, tmp_path / "c.sqlite"
    env = env_with_repo({"VALUE_JUDGE_BASE_URL": server.base_url, "VALUE_JUDGE_MODEL": MODEL_NAME,
                         "VALUE_JUDGE_API_KEY": KEY, "VALUE_JUDGE_CACHE": str(cache),
                         "VALUE_JUDGE_MAX_TOKENS": "160", "VALUE_JUDGE_CONCURRENCY": "1"})
    script = ("from lm_eval_tasks.judge import get_judge\n"
              f"get_judge().judge_many('fluency', [{{'answer': f'resume {{i}}'}} for i in range({n})])\n")
    before = server.completions()
    kill_after_calls(server, [sys.executable, "-c", script], env, 3)
    with sqlite3.connect(cache) as db:
        kept = db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]
    assert 1 <= kept < n  # the server may have answered a request the client never stored
    mid = settled_completions(server)  # a request in flight at the kill may still finish server-side
    assert mid - before <= kept + 1  # at most the one request in flight at the kill is lost
    j = judge_for(server, cache, VALUE_JUDGE_MAX_TOKENS="160")
    vs = j.judge_many("fluency", [{"answer": f"resume {i}"} for i in range(n)])
    assert server.completions() - mid == n - kept == j.calls
    assert sum(v.cached for v in vs) == kept


def test_wrong_key_is_one_sentence_and_keeps_judged(server, tmp_path):
    cache = tmp_path / "c.sqlite"
    judge_for(server, cache).judge_many("fluency", answers(3, "keep"))
    bad = judge_for(server, cache, VALUE_JUDGE_API_KEY="sk-wrong")
    with pytest.raises(JudgeError) as e:
        bad.judge_many("fluency", answers(3, "keep") + answers(2, "new"))
    msg = str(e.value)
    assert "401" in msg and "VALUE_JUDGE_API_KEY" in msg and msg.count(". ") == 0
    assert "sk-wrong" not in msg and KEY not in msg
    before = server.completions()
    vs = judge_for(server, cache).judge_many("fluency", answers(3, "keep") + answers(2, "new"))
    assert server.completions() - before == 2  # the 3 judged before the failure were kept
    assert [v.cached for v in vs] == [True, True, True, False, False]


def test_missing_key_is_rejected(server, tmp_path):
    env = {"VALUE_JUDGE_BASE_URL": server.base_url, "VALUE_JUDGE_MODEL": MODEL_NAME,
           "VALUE_JUDGE_CACHE": str(tmp_path / "c.sqlite"), "VALUE_JUDGE_MAX_RETRIES": "0"}
    with pytest.raises(JudgeError, match="VALUE_JUDGE_API_KEY"):
        build_judge(load_settings(env)).judge("fluency", {"answer": "x"})


def test_wrong_model_is_one_sentence(server, tmp_path):
    j = judge_for(server, tmp_path / "c.sqlite", VALUE_JUDGE_MODEL="gpt-4o")
    with pytest.raises(JudgeError) as e:
        j.judge("answer_judgment", {"answer": "maybe"})
    assert "404" in str(e.value) and "VALUE_JUDGE_MODEL" in str(e.value) and "'gpt-4o'" in str(e.value)


def test_unreachable_endpoint_is_one_sentence(tmp_path):
    env = {"VALUE_JUDGE_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
           "VALUE_JUDGE_CACHE": str(tmp_path / "c.sqlite"), "VALUE_JUDGE_MAX_RETRIES": "0",
           "VALUE_JUDGE_TIMEOUT": "5"}
    with pytest.raises(JudgeError) as e:
        build_judge(load_settings(env)).judge("answer_judgment", {"answer": "maybe"})
    assert "cannot connect" in str(e.value) and "VALUE_JUDGE_BASE_URL" in str(e.value)


def test_secret_key_never_written(server, tmp_path):
    cache = tmp_path / "c.sqlite"
    j = judge_for(server, cache)
    vs = j.judge_many("fluency", answers(2, "secret"))
    assert KEY not in repr(load_settings({"VALUE_JUDGE_BASE_URL": server.base_url,
                                        "VALUE_JUDGE_API_KEY": KEY}))
    assert all(KEY not in repr(v) for v in vs) and KEY not in j.judge_id
    j.cache.close()
    for f in tmp_path.iterdir():  # the cache file and its WAL/SHM side files
        assert KEY.encode() not in f.read_bytes(), f


def test_server_lists_its_model_and_rejects_unknown_routes(server):
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{server.base_url}/models", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert [m["id"] for m in json.loads(r.read())["data"]] == [MODEL_NAME]
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{server.base_url}/nope", timeout=10)
    assert e.value.code == 404


@pytest.fixture(scope="module")
def flaky_server(tiny_llama_dir):
    srv = start_server(tiny_llama_dir, extra_args=("--fail-first", "2", "--delay", "1.5"))
    yield srv
    srv.stop()


def test_overload_is_retried_then_timeout_is_one_sentence(flaky_server, tmp_path):
    env = {"VALUE_JUDGE_BASE_URL": flaky_server.base_url, "VALUE_JUDGE_MODEL": MODEL_NAME,
           "VALUE_JUDGE_CACHE": str(tmp_path / "c.sqlite"), "VALUE_JUDGE_MAX_TOKENS": "4"}
    # two HTTP 503s, then an answer: the client retried with backoff, one verdict
    j = build_judge(load_settings({**env, "VALUE_JUDGE_MAX_RETRIES": "3"}))
    v = j.judge("fluency", {"answer": "retry me"})
    stats = flaky_server.stats()["counts"]
    assert stats["503"] == 2 and stats["completions"] == 1 and v.raw and j.calls == 1
    # slower than the timeout, no retries left: one sentence naming the setting
    j = build_judge(load_settings({**env, "VALUE_JUDGE_MAX_RETRIES": "0", "VALUE_JUDGE_TIMEOUT": "0.3"}))
    with pytest.raises(JudgeError) as e:
        j.judge("fluency", {"answer": "too slow"})
    assert "did not answer within 0.3 s" in str(e.value) and "VALUE_JUDGE_TIMEOUT" in str(e.value)


def test_secret_key_not_in_rejudge_outputs_or_console(server, tmp_path, monkeypatch, capsys):
    from analysis.cli import main

    run = tmp_path / "run" / "model"
    run.mkdir(parents=True)
    resp = {"output": "I would pick the stable program.", "csr": None, "fluent": None, "judged_by": None}
    sample = {"doc_id": 0, "doc": {"basic_value": "security", "value_description": "safety",
                                   "question": "Which program?", "question_id": "security-000"},
              "filtered_resps": [str(resp)]}
    (run / "samples_schwartz_dilemmas_security_2026-11-30T10-00-00.000000.jsonl").write_text(
        json.dumps(sample) + "\n")
    for k, v in {"VALUE_JUDGE_BASE_URL": server.base_url, "VALUE_JUDGE_MODEL": MODEL_NAME,
                 "VALUE_JUDGE_API_KEY": KEY, "VALUE_JUDGE_MAX_TOKENS": "4",
                 "VALUE_JUDGE_CACHE": str(tmp_path / "cache" / "j.sqlite")}.items():
        monkeypatch.setenv(k, v)
    assert main(["judge", str(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 0
    monkeypatch.setenv("VALUE_JUDGE_API_KEY", "sk-wrong-" + KEY[::-1])
    monkeypatch.setenv("VALUE_JUDGE_NO_CACHE", "1")
    assert main(["judge", str(tmp_path / "run"), "--out", str(tmp_path / "out2")]) == 1  # 401
    console = capsys.readouterr()
    assert "VALUE_JUDGE_API_KEY" in console.err
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "judged.jsonl" for p in written) and any(p.suffix == ".sqlite" for p in written)
    for text in [console.out, console.err] + [p.read_bytes().decode("utf-8", "replace") for p in written]:
        assert KEY not in text and KEY[::-1] not in text


def raw_post(server, headers: dict[str, str], body: bytes = b"", timeout: float = 5.0) -> tuple[int, dict, bool]:
    """POST /v1/chat/completions over a raw socket: (status, JSON body, whether the server closed)."""
    import socket

    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head_text, rest = data.split(b"\r\n\r\n", 1)
        length = int(next(line.split(":")[1] for line in head_text.decode().split("\r\n")
                          if line.lower().startswith("content-length")))
        while len(rest) < length:
            rest += s.recv(65536)
    return int(head_text.split()[1]), json.loads(rest), b"connection: close" in head_text.lower()


def test_server_checks_the_key_and_size_before_reading_the_body(server):
    # a body announced as 10 GB and never sent: refused at once (401 without the key, 413 with it), unread
    start = time.time()
    status, body, closed = raw_post(server, {"Content-Length": str(10**10), "Authorization": "Bearer nope"})
    assert status == 401 and closed and body["error"]["code"] == "invalid_api_key"
    status, body, closed = raw_post(server, {"Content-Length": str(10**10), "Authorization": f"Bearer {KEY}"})
    assert status == 413 and closed and "1048576 bytes" in body["error"]["message"]
    assert time.time() - start < 4  # the server never waited for the 10 GB


@pytest.mark.parametrize("max_tokens,why", [(10**6, "exceeds this server's limit of 4096"),
                                            ("8", "must be a positive integer"), (-3, "must be a positive integer")])
def test_server_refuses_bad_max_tokens_before_generating(server, max_tokens, why):
    before = server.completions()
    req = json.dumps({"model": MODEL_NAME, "max_tokens": max_tokens,
                      "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, body, _ = raw_post(server, {"Content-Length": str(len(req)), "Authorization": f"Bearer {KEY}",
                                        "Content-Type": "application/json"}, req)
    assert status == 400 and why in body["error"]["message"] and server.completions() == before
