"""The verifier that recognises refused credentials in a later crawl without storing them."""

from __future__ import annotations

from scrapy_apigw.secrets import Secret, credentials_verifier, verifies

KEY = {"api_key": Secret("0123456789abcdef0123456789abcdef")}


def test_the_verifier_recognises_the_same_credentials_only():
    verifier = credentials_verifier("lastfm", KEY)
    assert verifies(verifier, "lastfm", {"api_key": Secret("0123456789abcdef0123456789abcdef")})
    assert not verifies(verifier, "lastfm", {"api_key": Secret("0123456789abcdef0123456789abcdee")})
    assert not verifies(verifier, "discogs", KEY)
    assert not verifies(verifier, "lastfm", {})


def test_the_verifier_holds_neither_the_secret_nor_a_repeatable_hash_of_it():
    first, second = credentials_verifier("lastfm", KEY), credentials_verifier("lastfm", KEY)
    assert "0123456789abcdef" not in first
    assert first != second  # a random salt per verifier
    assert first.startswith("pbkdf2-sha256$100000$")
    assert len(first.split("$")[2]) == 32  # 16 bytes of salt, hex


def test_a_known_salt_gives_a_known_verifier():
    salt = bytes(range(16))
    verifier = credentials_verifier("lastfm", KEY, salt=salt)
    assert verifier.split("$")[2] == "000102030405060708090a0b0c0d0e0f"
    assert verifier == credentials_verifier("lastfm", KEY, salt=salt)


def test_anything_that_is_not_a_verifier_verifies_nothing():
    for junk in (None, 5, "", "pbkdf2-sha256$x$00$00", "md5$1$00$00", "pbkdf2-sha256$1$zz$00"):
        assert not verifies(junk, "lastfm", KEY)
