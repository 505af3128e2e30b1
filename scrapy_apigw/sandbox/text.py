"""Text folding and tokenising shared by every matcher of the sandbox.

The real services match case- and accent-insensitively on words (Spotify finds "Röyksopp" for
``artist:royksopp``; MusicBrainz's search analyser folds diacritics), so every comparison in the
sandbox goes through :func:`fold` and :func:`tokens`. Both are pure and cached.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["JOIN_WORDS", "artist_tokens", "ascii_spelling", "fold", "phrase_in", "tokens"]

# Letters NFKD does not decompose into a base letter plus a combining mark.
_SPECIAL_LETTERS = str.maketrans(
    {"ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "ß": "ss", "đ": "d", "Đ": "d", "ł": "l", "Ł": "l"}
)
_WORD = re.compile(r"[^\W_]+")

#: Words that join artist credits ("A feat. B", "A x B", "A vs. B") and carry no identity.
JOIN_WORDS = frozenset({"feat", "ft", "featuring", "and", "x", "vs", "with", "pres", "presents"})


@lru_cache(maxsize=16384)
def fold(text: str) -> str:
    """Return *text* case-folded, without diacritics, whitespace collapsed.

    >>> fold("  Röyksopp  ")
    'royksopp'
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL_LETTERS))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


@lru_cache(maxsize=16384)
def tokens(text: str) -> tuple[str, ...]:
    """Split folded *text* into words (letters and digits only; punctuation separates).

    >>> tokens("Strobe (Radio Edit)")
    ('strobe', 'radio', 'edit')
    """
    return tuple(_WORD.findall(fold(text)))


@lru_cache(maxsize=16384)
def artist_tokens(text: str) -> frozenset[str]:
    """Words of an artist credit without joining words (``feat``, ``x``, ``vs``...)."""
    return frozenset(tokens(text)) - JOIN_WORDS


def phrase_in(needle: tuple[str, ...], haystack: tuple[str, ...]) -> bool:
    """True when *needle* occurs as a contiguous run of words in *haystack*."""
    n = len(needle)
    if n == 0:
        return False
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


# Scientific-style transliteration of Russian Cyrillic as tracklists write it ("Мумий Тролль"
# -> "Mumiy Troll"); letters not listed are kept.
_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "yo", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
}  # fmt: skip
_TRANSLIT = str.maketrans(
    {**_CYRILLIC, **{k.upper(): v.capitalize() for k, v in _CYRILLIC.items()},
     "Λ": "A", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "ß": "ss", "đ": "d", "Đ": "D",
     "ł": "l", "Ł": "L"}
)  # fmt: skip


@lru_cache(maxsize=4096)
def ascii_spelling(text: str) -> str:
    """*text* as an ASCII keyboard writes it: accents dropped, Cyrillic transliterated, case kept.

    >>> ascii_spelling("Sigur Rós"), ascii_spelling("Мумий Тролль")
    ('Sigur Ros', 'Mumiy Troll')
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    return "".join(c for c in decomposed if not unicodedata.combining(c))
