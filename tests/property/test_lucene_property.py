"""Property: the MusicBrainz query of any text is valid Lucene and finds that very text.

The client builds ``field:"<escaped phrase>"`` queries (``scrapy_apigw.core.lucene``); the
sandbox's strict parser (``scrapy_apigw.sandbox.lucene``) answers 400 to what the real search
server cannot parse. For any text, Lucene specials ``+ - && || ! ( ) { } [ ] ^ " ~ * ? : \\ /``,
whitespace, controls and unicode included, the query must parse into the phrase it was built
from and match a recording whose field holds exactly that text (PROVIDERS.md section 2).
"""

from __future__ import annotations

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from scrapy_apigw.core.lucene import DEFAULT_MAX_LENGTH, build_query
from scrapy_apigw.sandbox.lucene import And, SearchDoc, Term, parse, score
from scrapy_apigw.sandbox.text import fold, tokens

#: Examples per property (each takes well under a millisecond).
EXAMPLES = 1000

# Any text, text dense in what Lucene treats specially, and text around the length limit.
SPECIALS = '+-&|!(){}[]^"~*?:\\/ '
short_text = st.one_of(
    st.text(), st.text(alphabet=st.sampled_from(SPECIALS + "aZ9é坂\t\u3000"), max_size=60)
)
lucene_text = st.one_of(
    short_text,
    st.text(alphabet=st.sampled_from("ab "), min_size=DEFAULT_MAX_LENGTH - 5, max_size=260),
)


def recording(fields: dict[str, str]) -> SearchDoc:
    """A recording whose *fields* hold exactly the given strings (as the sandbox indexes them)."""
    return SearchDoc(
        text={name: [tokens(value)] for name, value in fields.items()},
        raw={name: [fold(value)] for name, value in fields.items()},
        ids={},
    )


def findable(text: str) -> bool:
    """Whether the search analyser keeps anything of *text* (Lucene finds nothing otherwise),
    and its first word fits in a query (a longer one is cut, and a cut word is another word)."""
    words = text.split()
    return bool(fold(text)) and len(words[0]) <= DEFAULT_MAX_LENGTH


@settings(max_examples=EXAMPLES, database=None)
@given(st.sampled_from(["recording", "artist"]), lucene_text)
def test_the_query_of_any_text_is_accepted_and_holds_the_text(field: str, text: str) -> None:
    query = build_query([(field, text)])
    if not text.strip():
        assert query == ""  # nothing to search for: the field is left out
        return
    term = parse(query)
    assert isinstance(term, Term) and term.field == field and term.phrase
    collapsed = " ".join(text.split())
    assert collapsed.startswith(term.text) and 0 < len(term.text) <= DEFAULT_MAX_LENGTH
    if len(collapsed) <= DEFAULT_MAX_LENGTH:
        assert term.text == collapsed


@settings(max_examples=EXAMPLES, database=None)
@given(lucene_text)
@example("0 " + "0" * DEFAULT_MAX_LENGTH)  # the cut fell inside the last word (see test_lucene)
def test_the_query_of_any_text_finds_a_recording_holding_it(text: str) -> None:
    assume(findable(text))
    tree = parse(build_query([("recording", text)]))
    found = score(tree, recording({"recording": text}))
    collapsed = " ".join(text.split())
    if len(collapsed) <= DEFAULT_MAX_LENGTH:
        assert found == 1.0
    else:
        # A long text is searched by its first whole words: the phrase is part of the title.
        assert isinstance(tree, Term)
        assume(tokens(tree.text))  # a phrase of punctuation only is compared whole: not found
        assert found > 0


def fits(text: str) -> bool:
    """Whether *text* is searched whole (a longer one is searched by its first words)."""
    return len(" ".join(text.split())) <= DEFAULT_MAX_LENGTH


@settings(max_examples=EXAMPLES, database=None)
@given(short_text, short_text)
# A long artist is searched by its first words: found, but not an exact match (CI, 2026-12-02).
@example("0", "0" * DEFAULT_MAX_LENGTH + " 0")
def test_a_title_and_artist_query_finds_the_recording_with_both(title: str, artist: str) -> None:
    assume(findable(title) and findable(artist))
    tree = parse(build_query([("recording", title), ("artist", artist)]))
    found = score(tree, recording({"recording": title, "artist": artist}))
    if fits(title) and fits(artist):
        assert found == 1.0
    else:
        terms = tree.children if isinstance(tree, And) else (tree,)
        assume(all(isinstance(t, Term) and tokens(t.text) for t in terms))  # see above
        assert found > 0
