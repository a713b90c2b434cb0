"""Hidden text: content a human reader would not see but a model would read.

Zero-width and bidi-control characters, Unicode tag characters (ASCII smuggling), HTML comments,
hidden-style markup, words mixing Latin with look-alike Cyrillic or Greek letters, and base64
blobs that decode to prose. ``hidden_payloads`` recovers smuggled text so the pattern rules can
scan it too."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

from engram.guard.engine import compile_linear

_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*", re.UNICODE)

_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_TAG_BLOCK = range(0xE0000, 0xE0080)
_BLACK_FLAG = "\U0001f3f4"
_INVISIBLE = {ord(char): None for char in _ZERO_WIDTH | _BIDI_CONTROLS} | {code: None for code in _TAG_BLOCK}
_ZERO_WIDTH_CHAR = re.compile(f"[{''.join(sorted(_ZERO_WIDTH))}]")
_BIDI_CHAR = re.compile(f"[{''.join(sorted(_BIDI_CONTROLS))}]")
_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")
_HIDDEN_MARKUP = compile_linear(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:px|pt|em)?\b|opacity\s*:\s*0(?:\.0+)?\b"
    r"|color\s*:\s*(?:white|#fff(?:fff)?)\b|\[\s*\]\(\s*https?://|^[^\S\n]*\[//\]\s*:\s*#|<\s*(?:span|div|p)\s+hidden\b"
    r"|<img\b[^>]*\b(?:width|height)\s*=\s*[\"']?0(?:px)?[\"'\s>/]",
    re.IGNORECASE | re.MULTILINE,
)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{24}")
_BASE64_BLOB = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_LATIN = re.compile(r"[A-Za-z]")
_CONFUSABLE_SCRIPT = re.compile(r"[\u0370-\u03ff\u0400-\u04ff]")


def hidden_text_signals(text: str) -> dict[str, float]:
    """Signals for content a human reader would not see: invisible characters, bidi overrides,
    Unicode tag characters, HTML comments, hidden-style markup, homoglyph words."""
    signals: dict[str, float] = {}
    if _has_suspicious_zero_width(text):
        signals["hidden_zero_width"] = 0.7
    if _BIDI_CHAR.search(text):
        signals["hidden_bidi_override"] = 0.7
    if _tag_characters(text):
        signals["hidden_tag_characters"] = 0.9
    if _has_html_comment(text):
        signals["hidden_html_comment"] = 0.45
    if _HIDDEN_MARKUP.search(text):
        signals["hidden_markup"] = 0.6
    if _CONFUSABLE_SCRIPT.search(text) and any(
            _LATIN.search(word) and _CONFUSABLE_SCRIPT.search(word) for word in _WORD.findall(text)):
        signals["hidden_homoglyphs"] = 0.5
    if any(True for _ in decode_base64_blobs(text)):
        signals["hidden_base64"] = 0.45
    return signals


def strip_invisible(text: str) -> str:
    """``text`` without zero-width, bidi-control and tag characters (so split words rejoin)."""
    return text.translate(_INVISIBLE)


def hidden_payloads(text: str) -> list[str]:
    """Text smuggled invisibly: ASCII spelled in Unicode tag characters, and decoded base64 blobs."""
    payloads = [tagged] if (tagged := _tag_characters(text)) else []
    payloads.extend(decode_base64_blobs(strip_invisible(text)))
    return payloads


def decode_base64_blobs(text: str) -> list[str]:
    """The base64 blobs in ``text`` that decode to readable prose (not hashes, binary or the JSON
    inside tokens such as JWTs)."""
    decoded_texts: list[str] = []
    if not _BASE64_RUN.search(text):
        return decoded_texts
    for blob in _BASE64_BLOB.findall(text):
        if blob.isalpha() and (blob.islower() or blob.isupper()):
            continue
        try:
            decoded = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        printable = sum(32 <= byte < 127 or byte in (9, 10, 13) for byte in decoded)
        as_text = decoded.decode("ascii", errors="ignore")
        is_json = as_text.lstrip().startswith(("{", "["))
        if decoded and printable / len(decoded) > 0.9 and " " in as_text and not is_json:
            decoded_texts.append(as_text)
    return decoded_texts


def _has_html_comment(text: str) -> bool:
    start = text.find("<!--")
    return start != -1 and text.find("-->", start + 4) != -1


def _has_suspicious_zero_width(text: str) -> bool:
    """Two or more zero-width characters, not counting joiners inside emoji sequences."""
    count = 0
    for match in _ZERO_WIDTH_CHAR.finditer(text):
        index, char = match.start(), match.group(0)
        if char == "\u200d" and 0 < index < len(text) - 1 and _is_emoji(text[index - 1]) and _is_emoji(text[index + 1]):
            continue
        if char == "\ufeff" and index == 0:
            continue
        count += 1
        if count >= 2:
            return True
    return False


def _is_emoji(char: str) -> bool:
    return unicodedata.category(char) == "So" or char == "\ufe0f" or 0x1F3FB <= ord(char) <= 0x1F3FF


def _tag_characters(text: str) -> str:
    """ASCII spelled in Unicode tag characters, except the tags of subdivision flag emoji (a run
    of tag characters right after a black flag)."""
    if not text or max(text) < "\U000e0000":
        return ""
    smuggled: list[str] = []
    for run in _TAG_RUN.finditer(text):
        if run.start() > 0 and text[run.start() - 1] == _BLACK_FLAG:
            continue
        smuggled.extend(chr(ord(char) - 0xE0000) for char in run.group(0) if 0xE0020 <= ord(char) < 0xE007F)
    return "".join(smuggled)
