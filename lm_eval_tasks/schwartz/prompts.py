"""The ICA prompt of ConVA (Jin et al., Appendix C, Table 9); the only copy of its wording."""

from __future__ import annotations

ICA_TEMPLATE = "You have a high level of {basic_value}. {Basic_value} means {value_description}. {question}"


def render_ica(basic_value: str, value_description: str, question: str) -> str:
    """Table 9 with the value name capitalised where it starts a sentence (as in Table 10)."""
    return ICA_TEMPLATE.format(
        basic_value=basic_value,
        Basic_value=basic_value[:1].upper() + basic_value[1:],
        value_description=value_description,
        question=question,
    )
