"""Signals for links: unfamiliar or look-alike domains, raw IPs, shorteners, risky downloads and
query strings that would carry data out (``?data={memory}``). Links to well-known sites are fine."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from engram.guard.engine import compile_linear, spans, subject

_URL_IN_TEXT = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"')\]]+"
    r"|(?<![\w.@-])(?:[a-z0-9-]{1,63}\.){1,8}(?:xyz|top|tk|ml|ga|cf|gq|zip|mov|click|country|kim|work|rest|icu|buzz|cam|monster|"
    r"quest|sbs|cfd|lol|su|ru)\b(?![@.\w-])(?:/[^\s<>\"')\]]*)?"
    r"|(?<![\w.@/-])(?:[a-z0-9-]{1,63}\.){1,8}(?:com|net|org|io|co|info|biz|live|online|site|app|me|us|cc)\b(?![@\w-])"
    r"(?:/[^\s<>\"')\]]+)?",
    re.IGNORECASE,
)
# Every character of a link is outside whitespace and <>"')], and every link holds "." or ":": the
# link scan (Python's engine, for its look-arounds) only runs on such runs, found by RE2.
_LINK_RUN = compile_linear(r"[^\s<>\"')\]]*[.:][^\s<>\"')\]]*")
_CHARS_PER_CALL = 16  # a findall call costs about as much as scanning this many characters
_WELL_KNOWN_DOMAINS = frozenset((
    "google.com", "youtube.com", "github.com", "gitlab.com", "wikipedia.org", "wikimedia.org", "python.org",
    "pypi.org", "stackoverflow.com", "stackexchange.com", "amazon.com", "amazon.co.uk", "apple.com", "microsoft.com",
    "nytimes.com", "bbc.co.uk", "bbc.com", "theguardian.com", "reddit.com", "medium.com", "airbnb.com",
    "booking.com", "expedia.com", "linkedin.com", "twitter.com", "x.com", "instagram.com", "facebook.com",
    "spotify.com", "netflix.com", "imdb.com", "allrecipes.com", "seriouseats.com", "bbcgoodfood.com", "nhs.uk",
    "zoom.us", "notion.so", "figma.com", "dropbox.com", "calendly.com", "eventbrite.com", "tripadvisor.com",
    "yelp.com", "weather.com", "strava.com", "goodreads.com", "arxiv.org", "readthedocs.io", "openstreetmap.org",
    "uber.com", "ticketmaster.com", "etsy.com", "ebay.com", "paypal.com", "mozilla.org", "npmjs.com",
    "docker.com", "kaggle.com", "coursera.org", "khanacademy.org", "duolingo.com", "trello.com", "slack.com",
    "atlassian.com", "ikea.com", "rei.com", "garmin.com", "fitbit.com", "mayoclinic.org", "webmd.com",
    "who.int", "europa.eu", "un.org", "nasa.gov", "nih.gov", "skyscanner.net", "kayak.com",
    "ryanair.com", "easyjet.com", "delta.com", "united.com", "lufthansa.com", "trainline.com", "amtrak.com",
    "nationalrail.co.uk", "sncf-connect.com", "bahn.de", "opentable.com", "doordash.com", "ubereats.com",
    "deliveroo.co.uk",
    "zillow.com", "rightmove.co.uk", "indeed.com", "glassdoor.com", "openai.com", "anthropic.com", "huggingface.co",
    "pytorch.org", "numpy.org", "pandas.pydata.org", "rust-lang.org", "go.dev", "nodejs.org", "developer.mozilla.org",
    "w3.org", "cloudflare.com", "wordpress.com", "substack.com", "archive.org", "nature.com", "sciencedirect.com",
))
_MOST_LABELS = max(domain.count(".") + 1 for domain in _WELL_KNOWN_DOMAINS)
_SHORTENERS = frozenset((
    "bit.ly", "tinyurl.com", "t.co", "goo.gl", "is.gd", "rb.gy", "cutt.ly", "ow.ly", "shorturl.at", "tiny.cc",
))
_SUSPICIOUS_TLDS = frozenset((
    "xyz", "top", "tk", "ml", "ga", "cf", "gq", "zip", "mov", "click",
    "country", "kim", "work", "rest", "icu", "buzz", "cam", "monster", "quest", "sbs",
    "cfd", "lol", "su", "ru",
))
_BRANDS = ("paypal", "google", "github", "apple", "microsoft", "amazon", "netflix", "openai", "anthropic", "chase",
           "wellsfargo", "bankofamerica", "coinbase", "binance", "metamask", "outlook", "office365", "icloud")
_EXFIL_QUERY = re.compile(
    r"[{}$<>]|%7b|%24|\b(?:data|memory|memories|secret|token|key|pwd|password|conversation|history|chat|ssn|"
    r"cookie|session|email|creds?|notes|context|messages|profile|contacts)=|=(?-i:[A-Z][A-Z_]{5,})\b",
    re.IGNORECASE,
)
_RISKY_DOWNLOAD = re.compile(
    r"\.(?:exe|sh|ps1|bat|cmd|apk|msi|dmg|pkg|deb|appimage|scr|jar|vbs|hta|mobileconfig|crx|xpi)(?:$|[?#])",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@((?:[a-z0-9-]{1,63}\.){1,8}[a-z]{2,24})\b", re.IGNORECASE)
_MARKDOWN_IMAGE = compile_linear(
    r"!\[[^\]]*\]\(\s*(https?://[^)\s]+)|<img\b[^>]*\bsrc\s*=\s*[\"']?(https?://[^\"'\s>]+)", re.IGNORECASE)
_PHISHING_LABEL = re.compile(r"(?:^|[.-])(?:secure|verify|verification|account|login|signin|alerts?|helpdesk|billing|"
                             r"wallet|auth|recovery)(?:$|[.-])")


def url_signals(text: str) -> dict[str, float]:
    """Signals for links: unfamiliar or look-alike domains, raw IPs, shorteners, risky downloads,
    query strings that would carry data out (``?data={memory}``), and e-mail addresses at
    suspicious or look-alike domains."""
    signals: dict[str, float] = {}
    for raw in dict.fromkeys(_links(text)):
        url = raw if "://" in raw else f"http://{raw}"
        try:
            parts = urlsplit(url.rstrip(".,;:!?"))
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            signals["url_malformed"] = 0.35
            continue
        for name, weight in _host_signals(host, bool(parts.username), port).items():
            signals[name] = max(signals.get(name, 0.0), weight)
        if parts.query and _EXFIL_QUERY.search(parts.query):
            signals["url_exfiltration"] = 0.6
        if _RISKY_DOWNLOAD.search(parts.path):
            signals["url_risky_download"] = 0.45
    # Every address holds "@": skip the scan (Python's engine, for its look-behind) when none can.
    for domain in dict.fromkeys(_EMAIL.findall(text) if "@" in text else ()):
        for name, weight in _host_signals(domain.lower(), False, None).items():
            if name != "url_unfamiliar":
                signals[f"email_{name.removeprefix('url_')}"] = weight
    for markdown_url, html_url in dict.fromkeys(_MARKDOWN_IMAGE.findall(text)):
        image_url = markdown_url or html_url
        try:
            host = (urlsplit(image_url).hostname or "").lower()
        except ValueError:
            host = ""
        if "?" in image_url and not _is_well_known(host):
            signals["url_exfiltration"] = 0.6
    return signals


def _links(text: str) -> list[str]:
    """``_URL_IN_TEXT.findall(text)``, scanning only the runs that can hold a link (the character
    after a run is included, so the look-aheads and word boundaries see what they would in the
    whole text; the look-behinds see the text before the run)."""
    if "." not in text and ":" not in text:
        return []
    runs: list[tuple[int, int]] = []
    cost = 0
    for start, end in spans(_LINK_RUN, subject(text)):
        runs.append((start, end))
        cost += end - start + _CHARS_PER_CALL
        if cost >= len(text):
            return _URL_IN_TEXT.findall(text)  # the runs cover most of the text: one call is cheaper
    links: list[str] = []
    for start, end in runs:
        links.extend(_URL_IN_TEXT.findall(text, start, min(end + 1, len(text))))
    return links


def _host_signals(host: str, has_credentials: bool, port: int | None) -> dict[str, float]:
    signals: dict[str, float] = {}
    if not host:
        return signals
    if re.fullmatch(r"[\d.]+|\[?[0-9a-f]*:[0-9a-f:]+\]?", host):
        signals["url_raw_ip"] = 0.45
    elif host.startswith("xn--") or ".xn--" in host:
        signals["url_punycode"] = 0.5
    elif _registered_domain(host) in _SHORTENERS:
        signals["url_shortener"] = 0.35
    elif not _is_well_known(host):
        compact = re.sub(r"[^a-z]", "", host.replace("0", "o").replace("1", "l"))
        if host.rsplit(".", 1)[-1] in _SUSPICIOUS_TLDS:
            signals["url_suspicious_tld"] = 0.4
        if any(brand in compact for brand in _BRANDS):
            signals["url_lookalike"] = 0.5
        elif _PHISHING_LABEL.search(host.rsplit(".", 1)[0]):
            signals["url_phishing_words"] = 0.4
        if not signals:
            signals["url_unfamiliar"] = 0.15
    if has_credentials:
        signals["url_credentials"] = 0.5
    if port not in (None, 80, 443):
        signals["url_odd_port"] = 0.25
    return signals


def _registered_domain(host: str) -> str:
    labels = host.removeprefix("www.").split(".")
    if len(labels) >= 3 and labels[-2] in ("co", "com", "org", "ac", "gov") and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _is_well_known(host: str) -> bool:
    host = host.removeprefix("www.")
    if host in _WELL_KNOWN_DOMAINS or host in ("gov.uk", "gov", "edu"):
        return True
    if host.endswith((".gov", ".edu", ".gov.uk", ".ac.uk", ".mil")):
        return True
    labels = host.split(".")
    # Only the last few labels can form a well-known domain: joining every suffix of a host made
    # of thousands of labels ("www.www.www...") was quadratic.
    first = max(0, len(labels) - _MOST_LABELS)
    return any(".".join(labels[index:]) in _WELL_KNOWN_DOMAINS for index in range(first, len(labels) - 1))
