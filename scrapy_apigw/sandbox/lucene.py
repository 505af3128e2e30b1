"""A small Lucene query parser and matcher for the MusicBrainz recording search.

MusicBrainz's ``/ws/2/recording?query=`` takes Lucene syntax (PROVIDERS.md section 2): fields
(``recording:``, ``artist:``, ``isrc:``...), quoted phrases, ``AND``/``OR``/``NOT`` in upper case,
parentheses, and backslash escapes for the specials ``+ - && || ! ( ) { } [ ] ^ " ~ * ? : \\ /``.
A query the real search server cannot parse is answered with HTTP 400.

Grammar accepted here::

    query    := or_expr EOF
    or_expr  := and_expr ((OR | ||)? and_expr)*      # juxtaposition means OR (Lucene default)
    and_expr := not_expr ((AND | &&) not_expr)*
    not_expr := NOT not_expr | primary
    primary  := "(" or_expr ")" | FIELD ":" (TERM | PHRASE | "(" or_expr ")") | TERM | PHRASE

- A PHRASE is ``"..."``; inside it ``\\x`` stands for ``x`` (so ``\\"`` and ``\\\\``).
- A bare TERM is a run of characters ended by whitespace, ``(``, ``)`` or ``:``; ``\\x``
  escapes any character, including a space (``We\\ Are``).

Rejected as syntax errors (raise :class:`LuceneSyntaxError`): an unescaped special character
inside a bare term (``! ^ ~ * ? / [ ] { } + - "`` or ``&&``/``||`` glued to a word), a dangling
backslash, unbalanced quotes or parentheses, an empty group, a missing operand, a blank query.

Deliberately stricter than Lucene: real Lucene reads ``-term``/``+term`` as prohibit/require,
``foo*`` and ``fo?`` as wildcards, ``foo~`` as fuzzy, ``foo^2`` as a boost and ``/re/`` as a
regular expression, and accepts ``-`` or ``+`` inside a word. A client that does not escape
these gets *wrong results* from MusicBrainz instead of an error; the sandbox rejects them so the
bug shows. Range queries (``[a TO b]``) are not supported. Escaped queries are always accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

from scrapy_apigw.sandbox.text import fold, phrase_in, tokens

__all__ = [
    "And",
    "LuceneSyntaxError",
    "Node",
    "Not",
    "Or",
    "SearchDoc",
    "Term",
    "escape",
    "parse",
    "score",
]

SPECIALS = frozenset('+-!(){}[]^"~*?:\\/')
_BARE_FORBIDDEN = frozenset('!{}[]^"~*?/+-')
_OPERATORS = {"AND": "AND", "OR": "OR", "NOT": "NOT", "&&": "AND", "||": "OR"}


class LuceneSyntaxError(ValueError):
    """The query is not valid Lucene syntax; the message says where."""


@dataclass(frozen=True)
class Term:
    """A word or phrase, with the field it applies to (``None``: the default fields)."""

    field: str | None
    text: str
    phrase: bool = False


@dataclass(frozen=True)
class And:
    """Every child must match."""

    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """At least one child must match; more matches score higher."""

    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The child must not match."""

    child: Node


Node = Union[Term, And, Or, Not]  # noqa: UP007 (runtime alias; mypy and py3.10 both accept it)


@dataclass(frozen=True)
class _Token:
    kind: str  # LPAREN RPAREN AND OR NOT FIELD TERM PHRASE
    text: str
    pos: int


def escape(text: str) -> str:
    """Backslash-escape every Lucene special in *text* (as musicbrainzngs does)."""
    return "".join("\\" + c if c in SPECIALS or c in "&|" else c for c in text)


def _tokenize(query: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append(_Token("LPAREN" if c == "(" else "RPAREN", c, i))
            i += 1
        elif c == '"':
            i = _read_phrase(query, i, out)
        elif query.startswith(("&&", "||"), i):
            out.append(_Token(_OPERATORS[query[i : i + 2]], query[i : i + 2], i))
            i += 2
        else:
            i = _read_word(query, i, out)
    return out


def _read_phrase(query: str, start: int, out: list[_Token]) -> int:
    buf: list[str] = []
    j = start + 1
    while j < len(query):
        ch = query[j]
        if ch == "\\":
            if j + 1 >= len(query):
                raise LuceneSyntaxError(f"dangling backslash at {j}")
            buf.append(query[j + 1])
            j += 2
        elif ch == '"':
            out.append(_Token("PHRASE", "".join(buf), start))
            return j + 1
        else:
            buf.append(ch)
            j += 1
    raise LuceneSyntaxError(f"unbalanced quote opened at {start}")


def _read_word(query: str, start: int, out: list[_Token]) -> int:
    buf: list[str] = []
    escaped = False
    j = start
    while j < len(query):
        ch = query[j]
        if ch == "\\":
            if j + 1 >= len(query):
                raise LuceneSyntaxError(f"dangling backslash at {j}")
            buf.append(query[j + 1])
            escaped = True
            j += 2
            continue
        if ch.isspace() or ch in "():":
            break
        if ch in _BARE_FORBIDDEN:
            raise LuceneSyntaxError(f"unescaped {ch!r} at {j}")
        if query.startswith(("&&", "||"), j):
            raise LuceneSyntaxError(f"unescaped {query[j : j + 2]!r} at {j}")
        buf.append(ch)
        j += 1
    word = "".join(buf)
    if j < len(query) and query[j] == ":":
        if not word:
            raise LuceneSyntaxError(f"unexpected ':' at {j}")
        out.append(_Token("FIELD", word, start))
        return j + 1
    if not escaped and word in _OPERATORS:
        out.append(_Token(_OPERATORS[word], word, start))
    else:
        out.append(_Token("TERM", word, start))
    return j


class _Parser:
    def __init__(self, tokens_: list[_Token]) -> None:
        self._tokens = tokens_
        self._pos = 0

    def _peek(self) -> _Token | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _next(self) -> _Token | None:
        token = self._peek()
        self._pos += 1
        return token

    def parse(self) -> Node:
        node = self._or(None)
        extra = self._peek()
        if extra is not None:
            raise LuceneSyntaxError(f"unexpected {extra.text!r} at {extra.pos}")
        return node

    def _or(self, field: str | None) -> Node:
        items = [self._and(field)]
        while True:
            token = self._peek()
            if token is None or token.kind == "RPAREN":
                break
            if token.kind == "OR":
                self._next()
            items.append(self._and(field))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self, field: str | None) -> Node:
        items = [self._not(field)]
        while (token := self._peek()) is not None and token.kind == "AND":
            self._next()
            items.append(self._not(field))
        return items[0] if len(items) == 1 else And(tuple(items))

    def _not(self, field: str | None) -> Node:
        token = self._peek()
        if token is not None and token.kind == "NOT":
            self._next()
            return Not(self._not(field))
        return self._primary(field)

    def _primary(self, field: str | None) -> Node:
        token = self._next()
        if token is None:
            raise LuceneSyntaxError("unexpected end of query")
        if token.kind == "LPAREN":
            return self._group(field, token)
        if token.kind == "FIELD":
            value = self._next()
            if value is None:
                raise LuceneSyntaxError(f"field {token.text!r} has no value")
            if value.kind == "LPAREN":
                return self._group(token.text, value)
            if value.kind in ("TERM", "PHRASE"):
                return Term(token.text, value.text, value.kind == "PHRASE")
            raise LuceneSyntaxError(f"unexpected {value.text!r} at {value.pos}")
        if token.kind in ("TERM", "PHRASE"):
            return Term(field, token.text, token.kind == "PHRASE")
        raise LuceneSyntaxError(f"unexpected {token.text!r} at {token.pos}")

    def _group(self, field: str | None, opening: _Token) -> Node:
        if (token := self._peek()) is not None and token.kind == "RPAREN":
            raise LuceneSyntaxError(f"empty group at {opening.pos}")
        node = self._or(field)
        closing = self._next()
        if closing is None or closing.kind != "RPAREN":
            raise LuceneSyntaxError(f"unbalanced parenthesis opened at {opening.pos}")
        return node


def parse(query: str) -> Node:
    """Parse a Lucene *query* into a tree of :class:`Term`, :class:`And`, :class:`Or`, :class:`Not`.

    Raises:
        LuceneSyntaxError: the query is blank or not valid (see the module docstring).
    """
    if not query.strip():
        raise LuceneSyntaxError("blank query")
    found = _tokenize(query)
    depth = 0
    for token in found:
        depth += {"LPAREN": 1, "RPAREN": -1}.get(token.kind, 0)
        if depth < 0:
            raise LuceneSyntaxError(f"unbalanced ')' at {token.pos}")
    if depth:
        raise LuceneSyntaxError("unbalanced '('")
    return _Parser(found).parse()


@dataclass(frozen=True)
class SearchDoc:
    """What one recording offers to the matcher.

    Attributes:
        text: per field name, the values as word tuples (``recording``, ``artist``...).
        raw: per field name, the folded whole values (for punctuation-only names like "!!!").
        ids: per identifier field name (``isrc``, ``rid``, ``arid``...), folded identifiers.
        default_fields: fields searched by a term without a field.
    """

    text: Mapping[str, Sequence[tuple[str, ...]]]
    raw: Mapping[str, Sequence[str]]
    ids: Mapping[str, Sequence[str]]
    default_fields: tuple[str, ...] = ("recording", "artist")


def _term_score(term: Term, doc: SearchDoc) -> float:
    fields = (term.field,) if term.field is not None else doc.default_fields
    best = 0.0
    wanted_id = fold(term.text)
    words = tokens(term.text)
    for name in fields:
        if name in doc.ids:
            if wanted_id in doc.ids[name]:
                return 1.0
            continue
        if not words:  # nothing but punctuation: compare whole values
            if wanted_id and wanted_id in doc.raw.get(name, ()):
                return 1.0
            continue
        for value in doc.text.get(name, ()):
            if value == words:
                return 1.0
            if phrase_in(words, value):
                best = max(best, 0.5 + 0.5 * len(words) / len(value))
    return best


def score(node: Node, doc: SearchDoc) -> float:
    """How well *doc* matches *node*: 0 = no match, 1 = every term matches exactly."""
    if isinstance(node, Term):
        return _term_score(node, doc)
    if isinstance(node, Not):
        return 0.0 if score(node.child, doc) > 0 else 1.0
    if isinstance(node, And):
        parts = [score(child, doc) for child in node.children]
        return 0.0 if min(parts) == 0 else sum(parts) / len(parts)
    parts = [score(child, doc) for child in node.children]
    return sum(parts) / len(parts)
