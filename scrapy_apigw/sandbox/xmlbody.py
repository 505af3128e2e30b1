"""XML bodies for clients that do not ask for JSON (MusicBrainz and Last.fm default to XML)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

__all__ = ["ET", "from_json", "serialize"]


def serialize(root: ET.Element) -> bytes:
    """``<?xml ...?>`` declaration plus *root*, UTF-8."""
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode("utf-8")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def from_json(tag: str, value: Any) -> ET.Element:
    """Render a Last.fm-style JSON value as XML.

    Rules (the inverse of Last.fm's own XML-to-JSON mapping): ``"#text"`` is the element text
    and the other scalar keys of that object become attributes; ``"@attr"`` becomes attributes;
    a list repeats the element named by its key.
    """
    element = ET.Element(tag)
    if isinstance(value, Mapping):
        has_text = "#text" in value
        for key, item in value.items():
            if key == "#text":
                element.text = _text(item)
            elif key == "@attr" and isinstance(item, Mapping):
                for name, attr in item.items():
                    element.set(name, _text(attr))
            elif has_text and not isinstance(item, Mapping | list):
                element.set(key, _text(item))
            elif isinstance(item, list):
                for entry in item:
                    element.append(from_json(key, entry))
            else:
                element.append(from_json(key, item))
    else:
        element.text = _text(value)
    return element
