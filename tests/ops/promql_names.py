"""The metric names and label names a PromQL expression uses (enough of PromQL for the
dashboards and rules of ``monitoring/``; no full parser)."""

from __future__ import annotations

import re

#: PromQL words that are not metric names (keywords, aggregation modifiers, set operators).
KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_WORD = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """``(metric names, label names)`` used by *expr*.

    Label names are those in ``{...}`` matchers and in ``by``/``without``/``on``/
    ``ignoring``/``group_*`` clauses. A word followed by ``(`` is a function; a number, a
    duration or a keyword is skipped.
    """
    labels: set[str] = set()
    text = expr
    for body in _MATCHERS.findall(_STRING.sub('""', text)):
        labels.update(_MATCHER_LABEL.findall(body))
    text = _STRING.sub('""', text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    for _keyword, body in _GROUPING.findall(text):
        labels.update(name.strip() for name in body.split(",") if name.strip())
    text = _GROUPING.sub(" ", text)
    metrics: set[str] = set()
    for word, call in _WORD.findall(text):
        if call or word.lower() in KEYWORDS:
            continue
        metrics.add(word)
    return metrics, labels
