"""Writing tables: CSV + markdown (+ an HTML fragment), one place for number formatting."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd


def fmt(x: object, digits: int = 3) -> str:
    if isinstance(x, float):
        if x != x:  # NaN
            return "NaN"
        return f"{x:.{digits}f}"
    return "" if x is None else str(x)


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    shown = df.copy()
    for c in shown.columns:
        shown[c] = [fmt(x, digits) for x in shown[c]]
    return shown.to_markdown(index=False, disable_numparse=True)


def to_html(df: pd.DataFrame, digits: int = 3, title: str | None = None) -> str:
    shown = df.copy()
    for c in shown.columns:
        shown[c] = [fmt(x, digits) for x in shown[c]]
    head = f"<h3>{html.escape(title)}</h3>\n" if title else ""
    return head + shown.to_html(index=False, escape=True, border=0, classes="tbl")


def write_table(df: pd.DataFrame, out: Path, name: str, digits: int = 3) -> dict[str, Path]:
    """Write ``out/name.csv`` (full precision) and ``out/name.md``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    csv, md = out / f"{name}.csv", out / f"{name}.md"
    df.to_csv(csv, index=False)
    md.write_text(to_markdown(df, digits) + "\n")
    return {"csv": csv, "md": md}


PAGE_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}
table.tbl{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}
table.tbl th,table.tbl td{border:1px solid #ccc;padding:3px 7px;text-align:right}
table.tbl th{background:#f2f2f2} img{max-width:100%} .note{color:#555;font-size:13px}
.lede{font-size:15px;color:#333} .intro{color:#245;font-size:14px;margin:0.2em 0 0.6em}
.skipped{color:#7a4b00;font-size:14px;margin:0.4em 0} td.skipped{text-align:left}
#summary{border:1px solid #c9d6e3;background:#f7fafc;padding:0.5em 1.2em 1em;margin:1em 0 2em}
#summary .figures{display:flex;flex-wrap:wrap;gap:1em} #summary .fig{flex:1 1 600px} #summary .fig.wide{flex-basis:100%}
.shift{white-space:nowrap;margin-right:0.8em} .headline{font-size:15px}
"""


def html_page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{PAGE_CSS}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")
