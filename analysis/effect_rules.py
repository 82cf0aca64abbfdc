"""The choices behind Kang et al.'s §2.3 / Figure 4 numbers that the paper's text does not pin down.

One record, ``EffectRules``, holds every choice; ``python -m analysis metrics`` / ``graph`` / ``report``
set it from their options (``add_rule_arguments`` / ``rules_from_args``), and ``--preset kang2025``
sets all of them at once to what the authors' released analysis did (issue 15; their CR-version
notebook, bigai-nlco/ValueCausalGraph @ d78dff0). Our default is the paper's text.

| field | our default (the paper's text) | ``kang2025`` (the authors' released analysis) |
|---|---|---|
| ``baseline_role``: the role r0 that role prompts are compared with | ``r0`` (the empty role) | ``first``: the first named role of the test table, in file order |
| ``sae_role``: the role the SAE features steer | ``auto`` (r0 when the table has it under the features, else every role) | one named test role (``NAME``, required) |
| ``features``: the SAE features (steer_dim ids) that count | every config in the table | the kept features (10 of 24 per model: the Table 1 rows) |
| ``pc_rows``: the train rows PC learns from | ``steered`` (rows under steering configs: "101 roles x 25 features = 2,525 rows") | ``unsteered+features`` (unsteered rows + rows under a kept feature) |
| ``undirected``: what an undirected / bidirected PC edge means | ``orient`` (one direction, by the rule in ``analysis.causal``) | ``both`` (an edge in each direction; 2-cycles occur) |
| ``unexpected``: the values an "unexpected" change is counted over | ``non-descendants`` (every non-successor, ancestors included) | ``non-descendants`` |
| ``atol``: an orientation "changes" when ``abs(delta) > atol`` | 1e-9 | 0 (exactly ``delta != 0``) |

Role units are always the named roles other than the baseline (r0 is never a unit); ``unrelated``
counts unexpected changes only over values that are neither descendants nor ancestors of v.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace
from pathlib import Path

import pandas as pd

BASELINE_KEYWORDS = ("r0", "first")
SAE_ROLE_KEYWORDS = ("auto", "r0", "all")
PC_ROWS = ("steered", "unsteered+features", "all")
UNDIRECTED = ("orient", "both")
UNEXPECTED = ("non-descendants", "unrelated")
KANG2025_DATA = Path(__file__).resolve().parent / "data" / "kang2025"


@dataclass(frozen=True)
class EffectRules:
    """Every choice of the §2.3 metrics and of the PC graph they use (module docstring)."""

    baseline_role: str = "r0"
    sae_role: str | None = "auto"
    features: tuple[str, ...] | None = None
    pc_rows: str = "steered"
    undirected: str = "orient"
    unexpected: str = "non-descendants"
    atol: float = 1e-9
    preset: str | None = None

    def describe(self) -> str:
        feats = "all configs" if self.features is None else f"{len(self.features)} features"
        return (f"baseline role {self.baseline_role}, SAE role {self.sae_role}, {feats}, PC rows {self.pc_rows}, "
                f"undirected edges {self.undirected}, unexpected over {self.unexpected}, atol {self.atol:g}")


PAPER_TEXT = EffectRules()  # our default

PRESETS: dict[str, EffectRules] = {
    "kang2025": EffectRules(baseline_role="first", sae_role=None, pc_rows="unsteered+features", undirected="both",
                            unexpected="non-descendants", atol=0.0, preset="kang2025"),
}


def read_features(path: str | Path) -> tuple[str, ...]:
    """One feature id (steer_dim) per line; blank lines and ``#`` comments are skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--features file {path} does not exist; write one feature id per line "
                                f"(the Table 1 features ship as {KANG2025_DATA}/features_gemma.txt and "
                                "features_llama.txt).")
    ids = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    ids = [i for i in ids if i]
    if not ids:
        raise ValueError(f"--features file {path} lists no feature id; write one id per line, e.g. 1312.")
    return tuple(dict.fromkeys(ids))


def check_rules(rules: EffectRules) -> EffectRules:
    """One clear sentence per bad choice; the preset's required ``sae_role`` included."""
    if not rules.atol >= 0:
        raise ValueError(f"--atol={rules.atol} must be >= 0 (0 = a change is any difference).")
    for name, value, allowed in (("--pc-rows", rules.pc_rows, PC_ROWS), ("--undirected", rules.undirected, UNDIRECTED),
                                 ("--unexpected", rules.unexpected, UNEXPECTED)):
        if value not in allowed:
            raise ValueError(f"{name}={value!r} is not a known choice; use one of {list(allowed)}.")
    if rules.sae_role is None:
        raise ValueError(f"--preset {rules.preset} needs --sae-role NAME: the authors' analysis steers one named test "
                         "role with the features (for their released Gemma tables: 'Mary Holt').")
    if rules.pc_rows == "unsteered+features" and rules.features is None:
        raise ValueError("--pc-rows unsteered+features needs --features FILE (the kept features); "
                         f"the Table 1 features ship as {KANG2025_DATA}/features_gemma.txt and features_llama.txt.")
    return rules


def add_rule_arguments(parser: argparse.ArgumentParser, graph_only: bool = False) -> None:
    """The options that set ``EffectRules`` (each also set by ``--preset``; explicit options win)."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="set every choice below as the authors' released analysis did (kang2025: baseline "
                             "first, PC rows unsteered+features, undirected both, exact change); needs --features "
                             "and (for metrics) --sae-role NAME")
    parser.add_argument("--features", default=None, metavar="FILE",
                        help="one feature id (steer_dim) per line: restricts the SAE units and the PC rows")
    parser.add_argument("--pc-rows", default=None, choices=PC_ROWS,
                        help="rows PC learns from: steered (default: rows under steering configs, the paper's "
                             "2,525), unsteered+features (kang2025), all")
    parser.add_argument("--undirected", default=None, choices=UNDIRECTED,
                        help="undirected/bidirected PC edges: orient (default: one direction by our rule) or both "
                             "(kang2025: both directions)")
    if graph_only:
        return
    parser.add_argument("--baseline-role", default=None, metavar="{r0,first,NAME}",
                        help="role prompts are compared with: r0 (default, the empty role, the paper's text), "
                             "first (the table's first named role, kang2025) or a player_name")
    parser.add_argument("--sae-role", "--sae-roles", dest="sae_role", default=None, metavar="{auto,r0,all,NAME}",
                        help="role the SAE features steer: r0 (the paper's text), a player_name (kang2025), all "
                             "(every role vs itself unsteered) or auto (default: r0 when present, else all)")
    parser.add_argument("--atol", type=float, default=None,
                        help="an orientation changes when |delta| > atol (default 1e-9; kang2025: 0, exactly != 0)")
    parser.add_argument("--unexpected", default=None, choices=UNEXPECTED,
                        help="unexpected changes are counted over non-descendants (default and kang2025: every "
                             "value that is not a successor) or unrelated (neither successor nor ancestor)")


def rules_from_args(args: argparse.Namespace) -> EffectRules:
    """The preset (or our default), then every option given explicitly on top."""
    rules = PRESETS[args.preset] if getattr(args, "preset", None) else EffectRules()
    given = {f.name: getattr(args, f.name) for f in fields(EffectRules)
             if f.name not in ("features", "preset") and getattr(args, f.name, None) is not None}
    if given.get("baseline_role") == "":
        given["baseline_role"] = "r0"
    if getattr(args, "features", None):
        given["features"] = read_features(args.features)
    rules = replace(rules, **given)
    if rules.sae_role is None and not hasattr(args, "sae_role"):
        rules = replace(rules, sae_role="auto")  # graph-only commands do not need the SAE role
    return check_rules(rules)


def unsteered(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["steer_dim"].fillna("").astype(str) == ""]


def baseline_player(table: pd.DataFrame, baseline_role: str) -> str:
    """The player_name of the baseline role: "" for r0, the first named unsteered role for ``first``."""
    if baseline_role in ("r0", ""):
        return ""
    if baseline_role == "first":
        named = [p for p in unsteered(table)["player_name"] if p != ""]
        if not named:
            raise ValueError("--baseline-role first needs an unsteered row with a named role (player_name); the "
                             "table has only the empty role r0. Use --baseline-role r0.")
        return named[0]
    return baseline_role


def check_roles(table: pd.DataFrame, rules: EffectRules) -> None:
    """A named baseline / SAE role must be a player_name of the table (one sentence naming the ones it has)."""
    names = [p for p in dict.fromkeys(table["player_name"].astype(str)) if p]
    for option, value, keywords in (("--baseline-role", rules.baseline_role, BASELINE_KEYWORDS + ("",)),
                                    ("--sae-role", rules.sae_role, SAE_ROLE_KEYWORDS)):
        if value is not None and value not in keywords and value not in names:
            shown = ", ".join(repr(n) for n in names[:6]) + (", ..." if len(names) > 6 else "")
            raise ValueError(f"{option} {value!r} is not a role of the orientation table (player_name); use one of "
                             f"{list(keywords[:3])} or a role it has: {shown or 'none'}.")
