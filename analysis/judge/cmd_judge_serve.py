"""`python -m analysis judge-serve --pretrained DIR --port P`: serve a HF model as an OpenAI-compatible
judge endpoint (see analysis/judge/serve.py)."""

from __future__ import annotations

import argparse
import os
import sys

HELP = "serve a HF causal LM (a folder or 'default') as an OpenAI-compatible judge endpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pretrained", required=True, help="HF model folder, or 'default'")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 = any free port (printed)")
    parser.add_argument("--model-name", default=None,
                        help="the model id clients must send (default: the folder name, or 'default')")
    parser.add_argument("--api-key-env", default=None, metavar="VAR",
                        help="require the key held in environment variable VAR (never pass a key itself)")
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds to wait before each completion (simulates a slow endpoint)")
    parser.add_argument("--fail-first", type=int, default=0, metavar="N",
                        help="answer the first N completion requests with HTTP 503 (simulates overload)")
    parser.add_argument("--max-body-bytes", type=int, default=None, metavar="N",
                        help="refuse request bodies over N bytes with HTTP 413, unread (default 1 MiB)")
    parser.add_argument("--max-tokens-limit", type=int, default=None, metavar="N",
                        help="refuse max_tokens over N with HTTP 400 (default 4096)")


def run(args: argparse.Namespace) -> int:
    from analysis.judge.serve import make_server

    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            print(f"error: --api-key-env {args.api_key_env} names an unset environment variable; "
                  "export it with the key clients must send.", file=sys.stderr)
            return 2
    from analysis.judge.serve import MAX_BODY_BYTES, MAX_TOKENS_LIMIT

    limits = {"max_body_bytes": MAX_BODY_BYTES if args.max_body_bytes is None else args.max_body_bytes,
              "max_tokens_limit": MAX_TOKENS_LIMIT if args.max_tokens_limit is None else args.max_tokens_limit}
    for name, value in limits.items():
        if value < 1:
            flag = "--" + name.replace("_", "-")
            print(f"error: {flag} {value} must be a positive integer; pass e.g. {flag} "
                  f"{MAX_BODY_BYTES if name == 'max_body_bytes' else MAX_TOKENS_LIMIT}.", file=sys.stderr)
            return 2
    try:
        server = make_server(args.pretrained, args.host, args.port, args.model_name, key, args.delay,
                             args.fail_first, **limits)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    print(f"serving model {server.model_name!r} at http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
