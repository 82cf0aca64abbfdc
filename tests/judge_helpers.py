"""Start the real `python -m analysis judge-serve` on 127.0.0.1 in a subprocess (tests of the judge).

Why not llama-cpp-python's or vLLM's server: PyPI ships llama-cpp-python as source only (a C++ build of
many minutes on CI's 2 cores) and vLLM needs a GPU. `judge-serve` is a real HTTP server speaking the
OpenAI chat-completions API, driven by the official `openai` client, so the client path under test is
the one used against OpenAI, vLLM, llama.cpp or Ollama; it also counts calls, which the cache tests need.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL_NAME = "tiny-judge"


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    key: str | None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as r:
            return json.loads(r.read())

    def completions(self) -> int:
        return int(self.stats()["completions"])

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def env_with_repo(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VALUE_JUDGE_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def start_server(model_dir: Path, key: str | None = None, key_env: str = "TEST_JUDGE_SERVER_KEY",
                 timeout: float = 120.0, extra_args: tuple[str, ...] = ()) -> Server:
    cmd = [sys.executable, "-m", "analysis", "judge-serve", "--pretrained", str(model_dir),
           "--port", "0", "--model-name", MODEL_NAME, *extra_args]
    extra = {}
    if key:
        cmd += ["--api-key-env", key_env]
        extra[key_env] = key
    proc = subprocess.Popen(cmd, cwd=REPO, env=env_with_repo(extra), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline, seen = time.time() + timeout, []
    while time.time() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if line.startswith("serving model"):
            port = int(line.rsplit(":", 1)[1].split("/")[0])
            return Server(proc, port, key)
    proc.kill()
    raise RuntimeError("judge-serve did not start:\n" + "".join(seen))


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_dominant_model(src: Path, out: Path, word: str, margin: float = 10.0) -> Path:
    """A copy of the tiny model in ``src`` whose next token is always ``word``'s first token, by ``margin``
    x ~8 nats over every other token, whatever the input (a judge that "answers" ``word``).

    How: the residual stream's dimension 0 is a constant 100 (every token embedding holds it, and no
    attention or MLP output writes it), the final norm keeps only that dimension, and the output row of
    the word's token is the only one that reads it.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(src))
    target = tok(word, add_special_tokens=False)["input_ids"][0]
    model = AutoModelForCausalLM.from_pretrained(str(src), use_safetensors=True)
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 100.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[target, 0] = margin
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def kill_after_calls(server: Server, cmd: list[str], env: dict[str, str], calls: int, timeout: float = 120.0) -> None:
    """Run ``cmd`` and SIGKILL it once ``server`` has answered ``calls`` more completions; it must not have
    finished by then."""
    before = server.completions()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while server.completions() - before < calls and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert proc.returncode != 0, "the client finished before it could be killed"


class HostileServer:
    """A real HTTP endpoint on 127.0.0.1 that answers chat completions the way a broken proxy or server
    does: each POST takes the next body of ``script`` (then ``default`` for the rest) — ``"html"`` (HTTP
    200, an HTML page), ``"truncated"`` (HTTP 200, JSON cut off), ``"schema"`` (HTTP 200, JSON that is
    not a chat completion), ``"empty"`` (a completion with empty text), ``"drop"`` (the connection closed
    without an answer) or any other string (a valid completion with that text)."""

    def __init__(self, script: list[str], default: str = "Yes") -> None:
        import http.server

        self.script, self.default, self.posts = list(script), default, 0
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    mode = outer.script[outer.posts] if outer.posts < len(outer.script) else outer.default
                    outer.posts += 1
                if mode == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                ctype, body = "application/json", outer.body(mode)
                if mode == "html":
                    ctype = "text/html"
                self.send_response(200)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def body(mode: str) -> bytes:
        if mode == "html":
            return b"<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>"
        if mode == "schema":
            return b'{"error": null, "result": "ok"}'
        text = "" if mode == "empty" else mode
        full = json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": MODEL_NAME,
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": text}}]}).encode()
        return full[: len(full) // 2] if mode == "truncated" else full

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
