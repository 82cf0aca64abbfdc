"""A small OpenAI-compatible HTTP server for a HF causal LM (stdlib ``http.server`` + transformers).

Routes: ``GET /v1/models``, ``POST /v1/chat/completions`` (greedy; ``max_tokens`` honoured; other
sampling options ignored), ``GET /stats`` (requests counted per route, completions served).
An unknown ``model`` gets HTTP 404 (``model_not_found``), as OpenAI answers. With an API key (read
from the environment variable named by ``--api-key-env``, never from the command line) a request
without ``Authorization: Bearer <key>`` gets HTTP 401. ``--delay`` adds seconds before each
completion and ``--fail-first N`` answers the first N completion requests with HTTP 503 (to test
clients against a slow or overloaded endpoint). Run: ``python -m analysis judge-serve``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lm_eval_tasks.judge.local_model import LocalGenerator, resolve_local_model


class JudgeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], generator: LocalGenerator, model_name: str,
                 api_key: str | None = None, delay: float = 0.0, fail_first: int = 0,
                 default_max_tokens: int = 256) -> None:
        super().__init__(address, _Handler)
        self.fail_first = fail_first
        self.generator = generator
        self.model_name = model_name
        self.api_key = api_key
        self.delay = delay
        self.default_max_tokens = default_max_tokens
        self.counts: Counter[str] = Counter()
        self.count_lock = threading.Lock()

    def count(self, what: str) -> None:
        with self.count_lock:
            self.counts[what] += 1


def _error(message: str, kind: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    server: JudgeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet; /stats has the counts
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        key = self.server.api_key
        if not key or self.headers.get("Authorization", "") == f"Bearer {key}":
            return True
        self._send(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        return False

    def _overloaded(self) -> bool:
        """The first ``fail_first`` completion requests get HTTP 503 (retry after 10 ms)."""
        with self.server.count_lock:
            failing = self.server.counts["503"] < self.server.fail_first
            if failing:
                self.server.counts["503"] += 1
        if failing:
            data = json.dumps(_error("The server is overloaded.", "server_error", "overloaded")).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("retry-after-ms", "10")
            self.end_headers()
            self.wfile.write(data)
        return failing

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0].rstrip("/")
        self.server.count(f"GET {path}")
        if path == "/stats":
            with self.server.count_lock:
                counts = dict(self.server.counts)
            self._send(200, {"counts": counts, "completions": counts.get("completions", 0)})
        elif path == "/v1/models":
            if self._authorized():
                self._send(200, {"object": "list", "data": [
                    {"id": self.server.model_name, "object": "model", "created": 0, "owned_by": "local"}
                ]})
        else:
            self._send(404, _error(f"no route GET {path}", "invalid_request_error", "not_found"))

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        self.server.count(f"POST {path}")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path != "/v1/chat/completions":
            self._send(404, _error(f"no route POST {path}", "invalid_request_error", "not_found"))
            return
        if not self._authorized():
            return
        try:
            req = json.loads(body or b"{}")
            messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in req["messages"]]
        except (ValueError, KeyError, TypeError):
            self._send(400, _error("body must be JSON with 'messages': [{role, content}, ...]",
                                   "invalid_request_error", "invalid_body"))
            return
        model = req.get("model")
        if model != self.server.model_name:
            self._send(404, _error(f"The model `{model}` does not exist.", "invalid_request_error",
                                   "model_not_found"))
            return
        if self._overloaded():
            return
        max_tokens = int(req.get("max_tokens") or req.get("max_completion_tokens")
                         or self.server.default_max_tokens)
        if self.server.delay:
            time.sleep(self.server.delay)
        text, n_prompt, n_new = self.server.generator.chat(messages, max_tokens)
        self.server.count("completions")
        self._send(200, {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "length" if n_new >= max_tokens else "stop"}],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_new,
                      "total_tokens": n_prompt + n_new},
        })


def make_server(pretrained: str, host: str, port: int, model_name: str | None = None,
                api_key: str | None = None, delay: float = 0.0, fail_first: int = 0) -> JudgeServer:
    gen = LocalGenerator(resolve_local_model(pretrained))
    return JudgeServer((host, port), gen, model_name or gen.name, api_key=api_key, delay=delay,
                       fail_first=fail_first)
