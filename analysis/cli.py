"""`python -m analysis SUBCOMMAND ...`: one argparse tree; each subcommand lives in its own module.

Every module ``analysis/cmd_<name>.py`` (and ``analysis/judge/cmd_<name>.py``) is a subcommand: it
defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``; the subcommand's
name is ``<name>`` with ``_`` written as ``-``. Modules are imported only when listed or run.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

_PACKAGES = ("analysis", "analysis.judge")


def subcommands() -> dict[str, str]:
    """subcommand name -> module name, for every ``cmd_*`` module of the analysis packages."""
    found: dict[str, str] = {}
    root = Path(__file__).resolve().parent
    for package in _PACKAGES:
        folder = root.joinpath(*package.split(".")[1:])
        for info in pkgutil.iter_modules([str(folder)]):
            if info.name.startswith("cmd_"):
                found[info.name[4:].replace("_", "-")] = f"{package}.{info.name}"
    return dict(sorted(found.items()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name, module_name in subcommands().items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        p.set_defaults(_module=module_name)
        module.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(importlib.import_module(args._module).run(args) or 0)
