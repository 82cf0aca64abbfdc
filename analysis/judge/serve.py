"""A small OpenAI-compatible HTTP server for a HF causal LM (stdlib ``http.server`` + transformers).

Routes: ``GET /v1/models``, ``POST /v1/chat/completions`` (greedy; ``max_tokens`` honoured; other
sampling options ignored), ``GET /stats`` (requests counted per route, completions served).
An unknown ``model`` gets HTTP 404 (``model_not_found``), as OpenAI answers. With an API key (read
from the environment variable named by ``--api-key-env``, never from the command line) a request
without ``Authorization: Bearer <key>`` gets HTTP 401. ``--delay`` adds seconds before each
completion and ``--fail-first N`` answers the first N completion requests with HTTP 503 (to test
clients against a slow or overloaded endpoint). Run: ``python -m analysis judge-serve``.

Hostile clients: the route and the key are checked before the body is read (a request without the
key never gets its body read, and the connection is closed); a body over ``--max-body-bytes`` (1 MiB)
gets HTTP 413 unread, and ``max_tokens`` above ``--max-tokens-limit`` (4096) or not a positive
integer gets HTTP 400 before any generation.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lm_eval_tasks.judge.local_model import LocalGenerator, resolve_local_model

MAX_BODY_BYTES = 1 << 20  # a judge prompt is a few KB; Template 5 with 17 values is ~10 KB
MAX_TOKENS_LIMIT = 4096


class JudgeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], generator: LocalGenerator, model_name: str,
                 api_key: str | None = None, delay: float = 0.0, fail_first: int = 0,
                 default_max_tokens: int = 256, max_body_bytes: int = MAX_BODY_BYTES,
                 max_tokens_limit: int = MAX_TOKENS_LIMIT) -> None:
        super().__init__(address, _Handler)
        self.max_body_bytes = max_body_bytes
        self.max_tokens_limit = max_tokens_limit
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

    def _send(self, status: int, body: dict[str, Any], close: bool = False) -> None:
        """``close``: the request's body was not read, so the connection cannot carry another request."""
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self, close: bool = False) -> bool:
        key = self.server.api_key
        sent = self.headers.get("Authorization", "")
        if not key or hmac.compare_digest(sent.encode(), f"Bearer {key}".encode()):
            return True
        self._send(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
                   close=close)
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
        # route, key and size first: nothing of the body is read for a request that will be refused
        if path != "/v1/chat/completions":
            self._send(404, _error(f"no route POST {path}", "invalid_request_error", "not_found"), close=True)
            return
        if not self._authorized(close=True):
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send(400, _error("Content-Length must be a non-negative integer.", "invalid_request_error",
                                   "invalid_body"), close=True)
            return
        if length > self.server.max_body_bytes:
            self.server.count("413")
            self._send(413, _error(f"the body ({length} bytes) exceeds this server's limit of "
                                   f"{self.server.max_body_bytes} bytes.", "invalid_request_error",
                                   "body_too_large"), close=True)
            return
        body = self.rfile.read(length) if length else b""
        try:
            req = json.loads(body or b"{}")
            messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in req["messages"]]
        except (ValueError, KeyError, TypeError):
            self._send(400, _error("body must be JSON with 'messages': [{role, content}, ...]",
                                   "invalid_request_error", "invalid_body"))
            return
        if not isinstance(req, dict):
            self._send(400, _error("body must be a JSON object.", "invalid_request_error", "invalid_body"))
            return
        max_tokens = req.get("max_tokens") or req.get("max_completion_tokens") or self.server.default_max_tokens
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            self._send(400, _error(f"max_tokens={max_tokens!r} must be a positive integer.",
                                   "invalid_request_error", "invalid_value"))
            return
        if max_tokens > self.server.max_tokens_limit:
            self._send(400, _error(f"max_tokens={max_tokens} exceeds this server's limit of "
                                   f"{self.server.max_tokens_limit}.", "invalid_request_error", "invalid_value"))
            return
        model = req.get("model")
        if model != self.server.model_name:
            self._send(404, _error(f"The model `{model}` does not exist.", "invalid_request_error",
                                   "model_not_found"))
            return
        if self._overloaded():
            return
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
                api_key: str | None = None, delay: float = 0.0, fail_first: int = 0,
                max_body_bytes: int = MAX_BODY_BYTES, max_tokens_limit: int = MAX_TOKENS_LIMIT) -> JudgeServer:
    gen = LocalGenerator(resolve_local_model(pretrained))
    return JudgeServer((host, port), gen, model_name or gen.name, api_key=api_key, delay=delay,
                       fail_first=fail_first, max_body_bytes=max_body_bytes, max_tokens_limit=max_tokens_limit)
