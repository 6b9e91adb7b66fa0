"""The tag rules of :mod:`tagspark.tags` in plain Python, for one post at a time
(``tagspark suggest`` answers without starting Spark). A test holds the two to the same
results on the same strings.
"""

from __future__ import annotations

import re
import unicodedata

HASHES = "#\uff03"
# White space as Java's regex \s and Unicode's Z category (space, line and paragraph
# separators) define it, spelled out: trimming a set of characters is several times cheaper
# than a regular expression, and normalising runs on every tag of the corpus.
SPACE = (
    " \t\n\x0b\x0c\r\u00a0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
# Separators of a tag list written as words (Java's \s is ASCII white space only).
LIST_SEPARATORS = r"[\s,;\"'{}\[\]]+"
_SEPARATORS = re.compile(r"[ \t\n\x0b\x0c\r,;\"'{}\[\]]+")
_ENDS = re.compile(rf"^{_SEPARATORS.pattern}|{_SEPARATORS.pattern}$")
_LEADING = set(SPACE) | set(HASHES)


def _is_word(char: str) -> bool:
    return char == "_" or unicodedata.category(char)[0] in "LMN"


def _starts_tag(text: str, i: int) -> bool:
    """A ``#`` at ``i`` that is not glued to a word or an ``&`` before it and has a word
    character after it."""
    before_ok = i == 0 or not (_is_word(text[i - 1]) or text[i - 1] == "&")
    return text[i] in HASHES and before_ok and i + 1 < len(text) and _is_word(text[i + 1])


def extract_hashtags(text: str) -> list[str]:
    """The hashtags of a caption, in order, raw (:func:`tagspark.tags.extract_hashtags`).

    >>> extract_hashtags("C# and ##pasta at #Roma#food, &#39; #")
    ['pasta', 'Roma', 'food']
    """
    found, i = [], 0
    while i < len(text):
        if not _starts_tag(text, i):
            i += 1
            continue
        # a chain #a#b: each # followed by a word character starts the next tag
        while i < len(text) and text[i] in HASHES and i + 1 < len(text) and _is_word(text[i + 1]):
            start = i = i + 1
            while i < len(text) and _is_word(text[i]):
                i += 1
            found.append(text[start:i])
    return found


def has_hashtag(text: str) -> bool:
    return any(_starts_tag(text, i) for i in range(len(text)))


def parse_tag_text(text: str) -> list[str]:
    """A tag list written as text (:func:`tagspark.tags.parse_tag_text`): hashtags when it
    holds one, else words split on white space, commas and semicolons.

    >>> parse_tag_text("{espresso, Grinder}")
    ['espresso', 'Grinder']
    """
    if has_hashtag(text):
        return extract_hashtags(text)
    return _SEPARATORS.split(_ENDS.sub("", text))


def normalise_tag(tag: str) -> str:
    """Trim white space, strip leading ``#`` and lower-case
    (:func:`tagspark.tags.normalise_tag`)."""
    trimmed = tag.strip(SPACE)
    if trimmed[:1] in HASHES and trimmed:
        i = 0
        while i < len(trimmed) and (
            trimmed[i] in _LEADING or unicodedata.category(trimmed[i])[0] == "Z"
        ):
            i += 1
        trimmed = trimmed[i:]
    return trimmed.lower()


def normalise_tags(tags: list[str], max_tags: int) -> list[str]:
    """Each tag normalised, empty ones dropped, repeats removed keeping the first, the first
    ``max_tags`` kept.

    >>> normalise_tags([" #Food", "food", "", "Café"], 30)
    ['food', 'café']
    """
    seen: dict[str, None] = {}
    for tag in tags:
        if tag is not None and (clean := normalise_tag(tag)):
            seen.setdefault(clean)
    return list(seen)[:max_tags]
