"""Transcript normalisation for forced alignment: the words an aligner can look up and pronounce.

Why a separate normaliser: an aligner needs one token per spoken word, in the spelling a pronouncing
dictionary uses. Transcripts carry punctuation, IEMOCAP's bracketed noise markers (``[LAUGHTER]``,
``[BREATHING]``), hyphenated compounds, times (``5:30``), years, ordinals and other digit strings,
none of which a dictionary lists. The original transcript is kept elsewhere (the manifest); this
only decides what the aligner is asked to find in the audio.

Rules, in order:

* Unicode is folded (NFKC, typographic quotes and dashes to ASCII, accents stripped: ``café`` -> ``cafe``).
* Markers in square, angle or curly brackets are removed: they name non-speech events, not words.
* Numbers become words the way they are usually read aloud: ``5:30`` -> five thirty, ``5:05`` -> five
  oh five, ``5:00`` -> five o'clock, ``1990`` -> nineteen ninety, ``2005`` -> two thousand five,
  ``3rd`` -> third, ``2.5`` -> two point five, ``1,000`` -> one thousand, ``90s`` -> nineties, ``$5.50`` ->
  five dollars fifty cents, ``50%`` -> fifty percent, ``007`` -> zero zero seven.
* Hyphens, slashes, periods and other punctuation separate words; apostrophes inside a word stay
  (``don't``, ``it's``) and quote marks around words go.
* Letters of other scripts are kept (a word nobody can pronounce must be reported, not dropped
  silently, since its audio is still there); anything else that is not a letter is removed.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import inflect

# Non-speech markers: [LAUGHTER], [BREATHING], <noise>, {cough}. Non-greedy, no nesting.
_MARKER = re.compile(r"\[[^\]]*\]|<[^>]*>|\{[^}]*\}")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_MONEY = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)")
_PERCENT = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s?%")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_DECADE = re.compile(r"\b(\d{2}|\d{4})'?s\b")
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_GROUPED = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")

_ASCII_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "`": "'",
        "\u00b4": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "&": " and ",
        "+": " plus ",
        "@": " at ",
    }
)


@lru_cache(maxsize=1)
def _engine() -> inflect.engine:
    """``inflect`` is imported on first use: it takes ~2 s to import, and most transcripts have no digits."""
    import inflect

    return inflect.engine()


def _cardinal(number: int) -> str:
    """American reading: no "and" (one hundred twenty three)."""
    return str(_engine().number_to_words(number, andword=""))


def _two_digits(number: int) -> str:
    """A two-digit group inside a year or a time: 5 -> oh five, 30 -> thirty."""
    return f"oh {_cardinal(number)}" if number < 10 else _cardinal(number)


def _year_or_number(text: str) -> str:
    """Four-digit numbers from 1100 to 2099 are read as years, others as cardinals.

    Why this range: in conversational transcripts a bare four-digit number is nearly always a year,
    and "fifteen hundred" is also how 1500 is said as a quantity.
    """
    value = int(text)
    if len(text) > 1 and text.startswith("0"):  # 007, 0800: read digit by digit
        return " ".join(_cardinal(int(d)) for d in text)
    if len(text) != 4 or text.startswith("0") or not 1100 <= value <= 2099:
        return _cardinal(value)
    high, low = divmod(value, 100)
    if 2000 <= value <= 2009:
        return _cardinal(value)  # two thousand, two thousand five
    if low == 0:
        return f"{_cardinal(high)} hundred"
    return f"{_cardinal(high)} {_two_digits(low)}"


def _time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes >= 60:  # not a time (a score, a ratio): read both numbers
        return f" {_cardinal(hours)} {_cardinal(minutes)} "
    if minutes == 0:
        return f" {_cardinal(hours)} o'clock "
    return f" {_cardinal(hours)} {_two_digits(minutes)} "


def _number(text: str) -> str:
    """Any digit string with optional thousands commas and decimals, as words."""
    text = text.replace(",", "")
    if "." in text:
        whole, frac = text.split(".", 1)
        return f"{_cardinal(int(whole or '0'))} point {' '.join(_cardinal(int(d)) for d in frac)}"
    return _year_or_number(text)


def _money(match: re.Match[str]) -> str:
    """$5 -> five dollars; $5.50 -> five dollars fifty cents (a price is not read "five point five")."""
    amount = match.group(1).replace(",", "")
    dollars, _, cents = amount.partition(".")
    if len(cents) == 2:
        words = f"{_cardinal(int(dollars or '0'))} dollars"
        return f" {words} {_cardinal(int(cents))} cents " if int(cents) else f" {words} "
    return f" {_number(amount)} dollars "


def _ordinal(match: re.Match[str]) -> str:
    return f" {_engine().number_to_words(_engine().ordinal(int(match.group(1))))} "


def _decade(match: re.Match[str]) -> str:
    """90s -> nineties, 1980s -> nineteen eighties: pluralise the last word of the reading."""
    words = _year_or_number(match.group(1)).replace("-", " ").split()
    last = words[-1]
    words[-1] = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return " " + " ".join(words) + " "


def _expand_numbers(text: str) -> str:
    text = _TIME.sub(_time, text)
    text = _MONEY.sub(_money, text)
    text = _PERCENT.sub(lambda m: f" {_number(m.group(1))} percent ", text)
    text = _ORDINAL.sub(_ordinal, text)
    text = _DECADE.sub(_decade, text)
    text = _DECIMAL.sub(lambda m: f" {_number(m.group(0))} ", text)
    text = _GROUPED.sub(lambda m: f" {_number(m.group(0))} ", text)
    return _DIGITS.sub(lambda m: f" {_number(m.group(0))} ", text)


def _fold_unicode(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_ASCII_FOLD)
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


def normalise_transcript(text: str) -> list[str]:
    """The alignable lower-case words of ``text``; ``[]`` when nothing in it can be aligned.

    >>> normalise_transcript("[LAUGHTER] Listen: it's 5:30 now, the 3rd time since 1990!")
    ['listen', "it's", 'five', 'thirty', 'now', 'the', 'third', 'time', 'since', 'nineteen', 'ninety']
    """
    text = _MARKER.sub(" ", _fold_unicode(text))
    text = _expand_numbers(text)  # digits glued to letters ("mp3") become words of their own
    return [word.lower() for word in _WORD.findall(text)]
