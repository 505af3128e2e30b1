"""What a genre implies for generated records: tempo, years, tags, Discogs styles and labels.

The catalog names a genre per track ("tech house", "trance"...). Everything the sandbox invents
for a track (audio features, release year, Last.fm tags, Discogs styles, label) is drawn from the
profile of that genre, so the records look plausible together. Unknown genres use ``electronic``.
"""

from __future__ import annotations

from dataclasses import dataclass

from scrapy_apigw.sandbox.text import fold

__all__ = ["LABELS", "GenreProfile", "Label", "profile_for"]


@dataclass(frozen=True)
class Label:
    """A record label as Discogs lists it: name, catalog-number prefix and separator."""

    name: str
    prefix: str
    separator: str = ""


LABELS: dict[str, Label] = {
    label.name: label
    for label in (
        Label("Defected", "DFTD"),
        Label("Toolroom", "TOOL", " "),
        Label("Drumcode", "DC"),
        Label("Kompakt", "KOM", " "),
        Label("Cocoon Recordings", "COR12"),
        Label("Afterlife", "AL"),
        Label("Innervisions", "IV"),
        Label("Anjunabeats", "ANJ"),
        Label("Anjunadeep", "ANJDEE"),
        Label("Armada Music", "ARMA"),
        Label("Black Hole Recordings", "BH", " "),
        Label("Perfecto", "PERF"),
        Label("Hospital Records", "NHS"),
        Label("RAM Records", "RAMM"),
        Label("Metalheadz", "METH"),
        Label("Hyperdub", "HDB"),
        Label("OWSLA", "OWS"),
        Label("Tempa", "TEMPA"),
        Label("Warp Records", "WAP"),
        Label("Ninja Tune", "ZEN"),
        Label("XL Recordings", "XLS"),
        Label("Mute", "MUTE", " "),
        Label("Erased Tapes", "ERATP"),
        Label("Ed Banger Records", "ED", " "),
        Label("Roulé", "ROULE"),
        Label("Virgin", "VS"),
        Label("Skint", "SKINT"),
        Label("Wall Of Sound", "WALLT"),
        Label("Spinnin' Records", "SP", "-"),
        Label("Ultra", "UL"),
        Label("STMPD RCRDS", "STMPD"),
        Label("Positiva", "12TIV", "-"),
        Label("Ministry Of Sound", "MOS"),
        Label("Strictly Rhythm", "SR"),
        Label("Columbia", "COL"),
        Label("Parlophone", "R"),
        Label("Interscope Records", "INT"),
        Label("Atlantic", "AT"),
        Label("Polydor", "POL"),
        Label("Astralwerks", "ASW"),
        Label("Ostgut Ton", "O-TON"),
        Label("Running Back", "RB"),
        Label("Big Life", "BLR"),
        Label("ZYX Music", "ZYX"),
        Label("Relentless Records", "RELT"),
    )
}


@dataclass(frozen=True)
class GenreProfile:
    """Ranges and vocabularies used to invent the records of one genre.

    Attributes:
        tempo: BPM range of the audio features.
        years: release-year range (inclusive).
        tags: Last.fm tags, the most representative first.
        genres: Discogs ``genres``.
        styles: Discogs ``styles`` to pick from.
        labels: label names (keys of :data:`LABELS`).
        energy, danceability, acousticness, instrumentalness: audio-feature ranges (0..1).
        length: duration range in seconds of the original version.
    """

    tempo: tuple[float, float]
    years: tuple[int, int]
    tags: tuple[str, ...]
    genres: tuple[str, ...]
    styles: tuple[str, ...]
    labels: tuple[str, ...]
    energy: tuple[float, float] = (0.6, 0.95)
    danceability: tuple[float, float] = (0.55, 0.9)
    acousticness: tuple[float, float] = (0.0005, 0.08)
    instrumentalness: tuple[float, float] = (0.2, 0.9)
    length: tuple[int, int] = (300, 450)


_ELECTRONIC = ("Electronic",)
_POP = ("Electronic", "Pop")
_CLUB_LABELS = ("Defected", "Toolroom", "Positiva", "Ministry Of Sound", "Strictly Rhythm")

PROFILES: dict[str, GenreProfile] = {
    "house": GenreProfile(
        (118, 126),
        (1988, 2023),
        ("house", "dance", "electronic", "club", "deep house"),
        _ELECTRONIC,
        ("House", "Deep House", "Vocal"),
        _CLUB_LABELS,
    ),
    "deep house": GenreProfile(
        (118, 124),
        (1990, 2023),
        ("deep house", "house", "electronic", "chillout", "dance"),
        _ELECTRONIC,
        ("Deep House", "House"),
        ("Defected", "Innervisions", "Positiva", "Kompakt"),
        energy=(0.45, 0.8),
    ),
    "tech house": GenreProfile(
        (124, 128),
        (2008, 2024),
        ("tech house", "house", "electronic", "techno", "club"),
        _ELECTRONIC,
        ("Tech House",),
        ("Toolroom", "Defected", "Drumcode"),
    ),
    "progressive house": GenreProfile(
        (126, 129),
        (1996, 2022),
        ("progressive house", "house", "electronic", "edm", "trance"),
        _ELECTRONIC,
        ("Progressive House",),
        ("Armada Music", "Anjunadeep", "Virgin", "Ultra"),
    ),
    "melodic house": GenreProfile(
        (118, 124),
        (2012, 2024),
        ("melodic house", "deep house", "electronic", "chillout"),
        _ELECTRONIC,
        ("Progressive House", "Deep House"),
        ("Anjunadeep", "Kompakt", "Afterlife"),
        energy=(0.45, 0.8),
    ),
    "melodic techno": GenreProfile(
        (120, 126),
        (2010, 2024),
        ("melodic techno", "techno", "electronic", "minimal"),
        _ELECTRONIC,
        ("Techno", "Progressive House"),
        ("Afterlife", "Kompakt", "Cocoon Recordings"),
    ),
    "techno": GenreProfile(
        (125, 140),
        (1987, 2024),
        ("techno", "electronic", "minimal", "detroit techno"),
        _ELECTRONIC,
        ("Techno", "Minimal"),
        ("Drumcode", "Ostgut Ton", "Cocoon Recordings", "Mute"),
        energy=(0.7, 0.98),
    ),
    "minimal techno": GenreProfile(
        (122, 128),
        (2002, 2014),
        ("minimal", "techno", "electronic", "minimal techno"),
        _ELECTRONIC,
        ("Minimal", "Tech House"),
        ("Kompakt", "Cocoon Recordings"),
    ),
    "trance": GenreProfile(
        (132, 140),
        (1993, 2014),
        ("trance", "electronic", "uplifting trance", "dance", "edm"),
        _ELECTRONIC,
        ("Trance", "Progressive Trance"),
        ("Armada Music", "Black Hole Recordings", "Perfecto", "Anjunabeats"),
    ),
    "eurodance": GenreProfile(
        (126, 140),
        (1990, 2000),
        ("eurodance", "dance", "90s", "pop", "electronic"),
        _POP,
        ("Euro House", "Eurodance"),
        ("ZYX Music", "Polydor", "Positiva", "Big Life"),
        energy=(0.75, 0.98),
        instrumentalness=(0.0, 0.1),
        length=(210, 270),
    ),
    "french house": GenreProfile(
        (118, 126),
        (1995, 2008),
        ("french house", "house", "electronic", "dance", "disco"),
        _ELECTRONIC,
        ("French House", "Disco"),
        ("Roulé", "Virgin", "Ed Banger Records"),
    ),
    "electro": GenreProfile(
        (120, 130),
        (2003, 2012),
        ("electro", "electro house", "electronic", "french"),
        _ELECTRONIC,
        ("Electro", "Electro House"),
        ("Ed Banger Records", "Kompakt", "Virgin"),
    ),
    "electro house": GenreProfile(
        (126, 130),
        (2004, 2016),
        ("electro house", "house", "electronic", "edm", "dance"),
        _ELECTRONIC,
        ("Electro House",),
        ("Ultra", "Spinnin' Records", "OWSLA", "Positiva"),
    ),
    "big room": GenreProfile(
        (126, 130),
        (2012, 2018),
        ("big room", "edm", "electro house", "dance", "electronic"),
        _ELECTRONIC,
        ("Electro House", "Progressive House"),
        ("Spinnin' Records", "STMPD RCRDS"),
    ),
    "edm": GenreProfile(
        (124, 130),
        (2009, 2022),
        ("edm", "dance", "electronic", "pop", "house"),
        _POP,
        ("Electro House", "Progressive House"),
        ("Ultra", "Spinnin' Records", "Positiva"),
        instrumentalness=(0.0, 0.05),
        length=(190, 260),
    ),
    "tropical house": GenreProfile(
        (100, 112),
        (2014, 2019),
        ("tropical house", "deep house", "pop", "chill", "electronic"),
        _POP,
        ("Deep House",),
        ("Ultra", "Columbia", "Positiva"),
        energy=(0.5, 0.75),
        instrumentalness=(0.0, 0.05),
        length=(190, 240),
    ),
    "future bass": GenreProfile(
        (70, 160),
        (2014, 2020),
        ("future bass", "electronic", "chillout", "indie"),
        _ELECTRONIC,
        ("Future Bass",),
        ("Ninja Tune", "Columbia", "OWSLA"),
        instrumentalness=(0.0, 0.2),
        length=(200, 270),
    ),
    "dance-pop": GenreProfile(
        (110, 128),
        (1998, 2023),
        ("dance", "pop", "dance-pop", "electronic", "female vocalists"),
        _POP,
        ("Dance-pop", "Synth-pop"),
        ("Columbia", "Parlophone", "Interscope Records", "Atlantic"),
        instrumentalness=(0.0, 0.02),
        length=(190, 250),
    ),
    "synth-pop": GenreProfile(
        (100, 130),
        (1978, 2022),
        ("synthpop", "80s", "new wave", "electronic", "pop"),
        _POP,
        ("Synth-pop", "New Wave"),
        ("Mute", "Parlophone", "Virgin", "Columbia"),
        instrumentalness=(0.0, 0.1),
        length=(200, 300),
    ),
    "pop": GenreProfile(
        (95, 128),
        (1975, 2023),
        ("pop", "rock", "classic rock", "80s", "dance"),
        ("Rock", "Pop"),
        ("Pop Rock", "Synth-pop"),
        ("Columbia", "Virgin", "Polydor"),
        instrumentalness=(0.0, 0.02),
        length=(200, 300),
    ),
    "disco": GenreProfile(
        (112, 122),
        (1975, 2023),
        ("disco", "funk", "dance", "70s", "soul"),
        ("Electronic", "Funk / Soul"),
        ("Disco", "Nu-Disco"),
        ("Columbia", "Virgin", "Running Back"),
        instrumentalness=(0.0, 0.3),
    ),
    "nu-disco": GenreProfile(
        (110, 124),
        (2008, 2023),
        ("nu disco", "disco", "electronic", "house", "cosmic disco"),
        _ELECTRONIC,
        ("Nu-Disco", "Disco"),
        ("Running Back", "Defected", "Toolroom"),
    ),
    "big beat": GenreProfile(
        (125, 140),
        (1994, 2004),
        ("big beat", "electronic", "breakbeat", "90s", "dance"),
        _ELECTRONIC,
        ("Big Beat", "Breakbeat"),
        ("Skint", "Wall Of Sound", "XL Recordings", "Virgin"),
        energy=(0.75, 0.98),
    ),
    "breakbeat": GenreProfile(
        (130, 140),
        (1990, 2005),
        ("breakbeat", "rave", "electronic", "90s", "hardcore"),
        _ELECTRONIC,
        ("Breakbeat", "Hardcore"),
        ("XL Recordings", "Skint"),
    ),
    "drum and bass": GenreProfile(
        (170, 176),
        (1994, 2022),
        ("drum and bass", "dnb", "electronic", "liquid funk", "jungle"),
        _ELECTRONIC,
        ("Drum n Bass", "Jungle"),
        ("Hospital Records", "RAM Records", "Metalheadz"),
        energy=(0.8, 0.99),
    ),
    "dubstep": GenreProfile(
        (138, 142),
        (2005, 2016),
        ("dubstep", "electronic", "bass", "brostep", "uk bass"),
        _ELECTRONIC,
        ("Dubstep",),
        ("OWSLA", "Tempa", "Hyperdub", "Relentless Records"),
        energy=(0.8, 0.99),
    ),
    "uk garage": GenreProfile(
        (128, 136),
        (1997, 2016),
        ("uk garage", "garage", "2-step", "electronic", "house"),
        _ELECTRONIC,
        ("UK Garage", "Speed Garage"),
        ("Relentless Records", "Ministry Of Sound", "Positiva"),
    ),
    "indie dance": GenreProfile(
        (110, 128),
        (2003, 2016),
        ("indie dance", "electronic", "indie", "dance-punk", "electro"),
        ("Electronic", "Rock"),
        ("Indie Rock", "Electro", "Disco"),
        ("XL Recordings", "Polydor", "Virgin"),
    ),
    "electronica": GenreProfile(
        (90, 130),
        (1977, 2023),
        ("electronica", "electronic", "idm", "chillout", "experimental"),
        _ELECTRONIC,
        ("IDM", "Downtempo", "Leftfield"),
        ("Warp Records", "Ninja Tune", "XL Recordings"),
        energy=(0.3, 0.8),
    ),
    "downtempo": GenreProfile(
        (80, 110),
        (1995, 2020),
        ("downtempo", "chillout", "trip-hop", "electronic", "lounge"),
        _ELECTRONIC,
        ("Downtempo", "Trip Hop"),
        ("Ninja Tune", "Astralwerks", "Warp Records"),
        energy=(0.25, 0.6),
        danceability=(0.4, 0.7),
        acousticness=(0.05, 0.5),
    ),
    "trip hop": GenreProfile(
        (80, 100),
        (1991, 2003),
        ("trip-hop", "trip hop", "electronic", "downtempo", "bristol"),
        _ELECTRONIC,
        ("Trip Hop", "Downtempo"),
        ("Virgin", "Ninja Tune", "Mute"),
        energy=(0.3, 0.6),
        danceability=(0.4, 0.7),
        acousticness=(0.05, 0.5),
    ),
    "ambient": GenreProfile(
        (60, 110),
        (1978, 2023),
        ("ambient", "electronic", "modern classical", "chillout", "calm"),
        ("Electronic", "Classical"),
        ("Ambient", "Modern Classical"),
        ("Erased Tapes", "Warp Records"),
        energy=(0.05, 0.35),
        danceability=(0.1, 0.4),
        acousticness=(0.4, 0.99),
        length=(180, 420),
    ),
    "synthwave": GenreProfile(
        (85, 118),
        (2008, 2020),
        ("synthwave", "electronic", "retro", "80s", "outrun"),
        _ELECTRONIC,
        ("Synthwave", "Synth-pop"),
        ("Virgin", "Ed Banger Records"),
    ),
    "moombahton": GenreProfile(
        (95, 110),
        (2012, 2018),
        ("moombahton", "electronic", "dance", "pop", "edm"),
        _POP,
        ("Moombahton",),
        ("Columbia", "Interscope Records"),
        instrumentalness=(0.0, 0.05),
        length=(170, 230),
    ),
    "afro house": GenreProfile(
        (118, 124),
        (2012, 2024),
        ("afro house", "house", "deep house", "electronic", "afro"),
        _ELECTRONIC,
        ("Afro House", "Deep House"),
        ("Innervisions", "Defected"),
    ),
    "electronic": GenreProfile(
        (100, 130),
        (1990, 2023),
        ("electronic", "dance", "electronica"),
        _ELECTRONIC,
        ("House", "Electro"),
        ("Warp Records", "Ninja Tune", "Defected"),
    ),
}


def profile_for(genre: str | None) -> GenreProfile:
    """Return the profile of *genre* (folded), or the ``electronic`` profile if unknown."""
    return PROFILES.get(fold(genre or ""), PROFILES["electronic"])
