"""Wikimedia Commons: keyword search over video (or bitmap) files, free licenses only, with
attribution.

One request per page, serially, as Wikimedia asks of anonymous clients:

``action=query&generator=search&gsrnamespace=6&gsrsearch=filetype:video <terms>`` with
``prop=videoinfo``. ``videoinfo`` (TimedMediaHandler) extends ``imageinfo`` and takes the same
properties under the ``vi`` prefix, so one module gives ``url|size|mime|mediatype|sha1|
extmetadata`` (``size`` includes ``duration`` for media) plus ``derivatives``, the WebM transcodes
we need for Ogg Theora files that MediaConvert cannot read. Asking for ``imageinfo`` as well would
only double the payload. Continuation sends the whole ``continue`` object back, as the API
requires. ``maxlag=5`` makes us back off when the database replicas lag; MediaWiki answers that with
HTTP 200, ``MediaWiki-API-Error: maxlag`` and ``Retry-After``, which the HTTP client honours.

Images: ``gsrsearch=filetype:bitmap <terms>`` with ``prop=imageinfo`` and the same properties
under the ``ii`` prefix (no duration, no derivatives); ``mediatype`` is ``BITMAP``. The
original is fetched (its SHA-1 is verified), so one over the images unit's size or pixel limit
is skipped from the answer's ``size``, ``width`` and ``height`` before a byte is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any

import requests

from lambdas.ingest import values
from lambdas.ingest.errors import BadSourceResponse, SourceHttpError
from lambdas.ingest.http import HostPolicy, HttpClient
from lambdas.ingest.models import Candidate, Rejected
from lambdas.ingest.sources import HttpSource, SourceContext, read_hit
from lambdas.ingest.values import INVALID_METADATA, InvalidValue
from lambdas.shared.media_types import (
    IMAGE,
    IMAGE_CONTENT_TYPES,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    VIDEO,
)

NAME = "commons"
API_URL = "https://commons.wikimedia.org/w/api.php"
API_POLICY = HostPolicy.of("commons.wikimedia.org")
MEDIA_POLICY = HostPolicy.of("upload.wikimedia.org")
MAX_PAGES = 10
MAX_DERIVATIVE_HEIGHT = 1080
MAX_TEXT_LEN = values.MAX_TEXT
MAX_CREDIT_LEN = 1000
MAX_TRANSCODE_KEY_LEN = 64
EXTMETADATA_FIELDS = (
    "LicenseShortName",
    "License",
    "LicenseUrl",
    "Artist",
    "Credit",
    "Attribution",
    "AttributionRequired",
    "UsageTerms",
    "ObjectName",
    "ImageDescription",
)
VIPROP = "url|size|mime|mediatype|sha1|extmetadata|derivatives"
IIPROP = "url|size|mime|mediatype|sha1|extmetadata"
# Containers MediaConvert reads as they are; Ogg (Theora) must come from a WebM derivative.
DIRECT_TYPES = frozenset({"video/webm", "video/mpeg"})
OGG_TYPES = frozenset({"application/ogg", "video/ogg"})
_FREE_LICENSE_RE = re.compile(
    r"^(?:cc0(?:-1\.0)?|pd|pdm|public-domain|cc-pdm(?:-1\.0)?"
    r"|cc-by(?:-sa)?(?:-\d\.\d(?:-[a-z]{2,5})?)?)$"
)
_HEIGHT_RE = re.compile(r"^(\d{3,4})p\.")


def create(context: SourceContext) -> CommonsSource:
    return CommonsSource(context.http_client(NAME), max_file_bytes=context.settings.max_file_bytes)


def search_terms(campaign: str) -> str:
    """Campaigns are slugs (``city-life``); Commons wants words."""
    return " ".join(part for part in re.split(r"[-_]+", campaign) if part)


def is_free_license(*names: str | None) -> bool:
    """CC0, public domain, CC BY and CC BY-SA of any version/port; nothing NC, ND or GFDL-only.

    Commons' machine-readable ``License`` can list versions (``cc-by-sa-3.0,2.5,2.0``), and the
    display ``LicenseShortName`` can list dual licenses (``GFDL, CC BY-SA 3.0``): a file is free
    when one of the offered licenses is.
    """
    for name in names:
        if not name:
            continue
        for offered in re.split(r"[,;]|\bor\b|\band\b", name):
            code = re.sub(r"[\s_]+", "-", offered.strip().lower())
            if code and _FREE_LICENSE_RE.match(code):
                return True
    return False


# Elements without an end tag: they open no region, hidden or not.
VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
     "track", "wbr"}
)  # fmt: skip
_HIDDEN_STYLE = re.compile(r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)\b", re.I)


def is_hidden(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    """True for an element a reader never sees: scripts and styles, the ``hidden`` attribute,
    and inline ``display: none`` / ``visibility: hidden``.

    Commons templates hide machine-readable text this way, such as the QuickStatements labels
    (``<span style="display: none;">label QS:Len,"..."</span>``) after a title or an author.
    """
    if tag in {"script", "style", "template"}:
        return True
    for name, value in attrs:
        if name == "hidden":
            return True
        if name == "style" and value and _HIDDEN_STYLE.search(value):
            return True
    return False


class _TextExtractor(HTMLParser):
    """Visible text only: everything inside a hidden element, however deeply nested, is dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID_ELEMENTS:
            if not self._hidden_depth and tag == "br":
                self.parts.append(" ")
            return
        if self._hidden_depth:
            self._hidden_depth += 1
        elif is_hidden(tag, attrs):
            self._hidden_depth = 1
        elif tag in {"p", "div", "li"}:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """``<span/>`` opens and closes at once; ``<br/>`` is still a line break."""
        if tag in VOID_ELEMENTS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_ELEMENTS:
            return
        if self._hidden_depth:
            self._hidden_depth -= 1
        elif tag in {"p", "div", "li"}:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)


def html_to_text(value: object, *, max_len: int = MAX_TEXT_LEN) -> str | None:
    """Plain, visible text from an extmetadata value (often HTML with links and entities)."""
    if value is None:
        return None
    parser = _TextExtractor()
    parser.feed(str(value))
    parser.close()
    return values.text("".join(parser.parts), limit=max_len) or None


class CommonsSource(HttpSource):
    name = NAME
    media_policy = MEDIA_POLICY
    media_types = (VIDEO, IMAGE)

    def __init__(self, http: HttpClient, *, max_file_bytes: int) -> None:
        super().__init__(http)
        self.max_file_bytes = max_file_bytes

    def search(
        self, campaign: str, limit: int, media_type: str = VIDEO
    ) -> Iterator[Candidate | Rejected]:
        image = media_type == IMAGE
        # videoinfo takes imageinfo's properties under its own prefix.
        prefix = "ii" if image else "vi"
        params: dict[str, str] = {
            "action": "query",
            "format": "json",
            "formatversion": "2",
            "generator": "search",
            "gsrsearch": f"filetype:{'bitmap' if image else 'video'} {search_terms(campaign)}",
            "gsrnamespace": "6",
            "gsrlimit": str(min(50, max(10, limit * 4))),
            "prop": "imageinfo" if image else "videoinfo",
            f"{prefix}prop": IIPROP if image else VIPROP,
            f"{prefix}extmetadatafilter": "|".join(EXTMETADATA_FIELDS),
            f"{prefix}extmetadatalanguage": "en",
            "maxlag": "5",
        }
        parse = self._parse_image if image else self._parse_file
        for _ in range(MAX_PAGES):
            data = _envelope(
                self.http.get_json(API_URL, params=params, policy=API_POLICY, retry_if=_maxlag)
            )
            for page in _pages(data):
                yield self._read_hit(page, parse)
            follow = data.get("continue")
            if not follow:
                return
            if not isinstance(follow, Mapping):
                raise BadSourceResponse(f"{NAME}: 'continue' is not an object: {follow!r}")
            # The API requires the whole continue object back, not just the offset.
            params = {**params, **{str(k): str(v) for k, v in follow.items()}}

    def _read_hit(
        self,
        page: Mapping[str, Any],
        parse: Callable[[Mapping[str, Any]], Candidate | Rejected],
    ) -> Candidate | Rejected:
        """One hit, or its rejection with the reason: bad data in a hit never ends the search."""
        source_id = str(page.get("pageid"))[:32]
        label = f"{NAME} {values.shorten(str(page.get('title') or source_id), 100)}"
        return read_hit(NAME, source_id, label, lambda: parse(page))

    def _checked(
        self, page: Mapping[str, Any], media_type: str
    ) -> tuple[str, str, Mapping[str, Any], dict[str, Any]] | Rejected:
        """The hit's shape and licence checked; its id, title, info and what every candidate
        of it shares (identity, licence, credit)."""
        checked = _check_file(page, media_type)
        if isinstance(checked, Rejected):
            return checked
        source_id, title, info = checked
        common = self._common(source_id, title, info)
        if isinstance(common, Rejected):
            return common
        return source_id, title, info, common

    def _common(
        self, source_id: str, title: str, info: Mapping[str, Any]
    ) -> dict[str, Any] | Rejected:
        """What a video and an image candidate share: identity, licence and credit."""
        label = f"{NAME} {values.shorten(title, 100)}"
        meta = _ExtMetadata(info["extmetadata"])
        license_name = meta.text("LicenseShortName")
        if not is_free_license(meta.text("License"), license_name):
            return Rejected(
                NAME,
                source_id,
                "non_free_license",
                f"{label}: license {license_name or meta.text('License') or 'unknown'!r} is not "
                "CC0, public domain, CC BY or CC BY-SA",
            )
        display_title = _display(title)
        page_url = values.web_url("descriptionurl", info.get("descriptionurl"), optional=True)
        return {
            "source": NAME,
            "source_id": source_id,
            "title": values.text(display_title, limit=values.MAX_TITLE),
            "license": license_name or str(meta.text("License")),
            "license_url": _license_url(meta.text("LicenseUrl")),
            "source_page_url": page_url,
            "attribution": meta.attribution(display_title, page_url),
        }

    def _parse_image(self, page: Mapping[str, Any]) -> Candidate | Rejected:
        checked = self._checked(page, IMAGE)
        if isinstance(checked, Rejected):
            return checked
        source_id, title, info, common = checked
        label = f"{NAME} {values.shorten(title, 100)}"
        size = values.whole("size", info["size"], maximum=values.MAX_SIZE_BYTES)
        width = values.dimension("width", info.get("width"))
        height = values.dimension("height", info.get("height"))
        limit = min(self.max_file_bytes, MAX_IMAGE_BYTES)
        if size > limit:
            return Rejected(
                NAME, source_id, "too_large", f"{label}: {size} bytes, over the {limit}-byte limit"
            )
        if width and height and width * height > MAX_IMAGE_PIXELS:
            return Rejected(
                NAME,
                source_id,
                "too_large",
                f"{label}: {width}x{height} is more than the {MAX_IMAGE_PIXELS:,} pixels the "
                "images unit decodes",
            )
        sha1 = values.sha1("sha1", info["sha1"])
        return Candidate(
            checksum=sha1,
            file_name=_display(title),
            download_url=str(values.web_url("url", info["url"])),
            mime=str(info["mime"]).lower(),
            size_bytes=size,
            expected_sha1=sha1,
            width=width,
            height=height,
            **common,
        )

    def _parse_file(self, page: Mapping[str, Any]) -> Candidate | Rejected:
        checked = self._checked(page, VIDEO)
        if isinstance(checked, Rejected):
            return checked
        source_id, title, info, common = checked
        label = f"{NAME} {values.shorten(title, 100)}"
        display_title = _display(title)
        sha1 = values.sha1("sha1", info["sha1"])
        common["duration_s"] = float(
            values.number("duration", info["duration"], maximum=values.MAX_DURATION_S)
        )
        size = values.whole("size", info["size"], maximum=values.MAX_SIZE_BYTES)
        width = values.dimension("width", info.get("width"))
        height = values.dimension("height", info.get("height"))
        mime = str(info["mime"]).lower()
        if mime in DIRECT_TYPES:
            return Candidate(
                checksum=sha1,
                file_name=display_title,
                download_url=str(values.web_url("url", info["url"])),
                mime=mime,
                size_bytes=size,
                expected_sha1=sha1,
                width=width,
                height=height,
                **common,
            )
        derivative = best_webm_derivative(info.get("derivatives"))
        if derivative is None:
            return Rejected(
                NAME,
                source_id,
                "unsupported_format",
                f"{label}: {mime} cannot be read by MediaConvert and Commons offers no WebM "
                "derivative",
            )
        transcode_key = values.text(derivative["transcodekey"], limit=MAX_TRANSCODE_KEY_LEN + 1)
        if len(transcode_key) > MAX_TRANSCODE_KEY_LEN:
            raise InvalidValue(f"derivative transcodekey {values.shown(transcode_key)} is too long")
        return Candidate(
            # The transcode's bytes are not the original's: version it by original + transcode.
            checksum=f"{sha1}:{transcode_key}",
            file_name=f"{PurePosixPath(display_title).stem}.webm",
            download_url=str(values.web_url("derivative src", derivative["src"])),
            mime="video/webm",
            size_bytes=None,
            expected_sha1=None,
            width=values.dimension("derivative width", derivative.get("width")),
            height=values.dimension("derivative height", derivative.get("height")),
            **common,
        )


class _ExtMetadata:
    """``extmetadata`` values are ``{"value": ..., "source": ...}``, often HTML."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw

    def text(self, name: str) -> str | None:
        entry = self._raw.get(name)
        value = entry.get("value") if isinstance(entry, Mapping) else None
        return html_to_text(value) if value not in (None, "") else None

    def attribution(self, display_title: str, file_page: str | None) -> dict[str, Any]:
        """What a credit needs (TASL: title, author, source, license), as plain text."""
        license_name, license_url = self.text("LicenseShortName"), self.text("LicenseUrl")
        title = self.text("ObjectName") or values.text(PurePosixPath(display_title).stem)
        author = self.text("Artist")
        credit_line = values.shorten(
            title
            + (f" by {author}" if author else "")
            + f", {license_name or 'free license'}"
            + (f" ({license_url})" if license_url else "")
            + ", via Wikimedia Commons",
            MAX_CREDIT_LEN,
        )
        return {
            "title": title,
            "author": author,
            "credit": self.text("Credit"),
            "attribution": self.text("Attribution"),
            # Unless Commons says otherwise, assume attribution is required.
            "attribution_required": (self.text("AttributionRequired") or "").lower() != "false",
            "usage_terms": self.text("UsageTerms"),
            "description": self.text("ImageDescription"),
            "file_page": file_page,
            "credit_line": credit_line,
        }


def _display(title: str) -> str:
    """``File:Tram 28.webm`` -> ``Tram 28.webm``."""
    return title.split(":", 1)[1] if title.lower().startswith("file:") else title


def _envelope(data: object) -> Mapping[str, Any]:
    """The top level of an API answer; API errors become source errors naming the code."""
    if not isinstance(data, Mapping):
        raise BadSourceResponse(f"{NAME}: API answered {type(data).__name__}, not an object")
    error = data.get("error")
    if error:
        code = error.get("code", "?") if isinstance(error, Mapping) else "?"
        info = error.get("info", error) if isinstance(error, Mapping) else error
        if code == "maxlag":
            raise SourceHttpError(f"{NAME}: database lag persisted ({info})")
        raise BadSourceResponse(f"{NAME}: API error {code}: {info}")
    return data


def _pages(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Hits in search rank order; MediaWiki omits ``query`` entirely when nothing matched."""
    query = data.get("query")
    if query is None:
        return []
    pages = query.get("pages") if isinstance(query, Mapping) else None
    if isinstance(pages, Mapping):  # formatversion=1 shape, tolerated
        pages = list(pages.values())
    if not isinstance(pages, list):
        raise BadSourceResponse(f"{NAME}: API answer has no query.pages list")
    return sorted(
        (p for p in pages if isinstance(p, Mapping)),
        key=lambda p: p["index"] if isinstance(p.get("index"), int) else 0,
    )


def _absent(value: object) -> bool:
    return value is None or (isinstance(value, str | int | float) and value in ("", 0))


def _license_url(value: str | None) -> str | None:
    """``LicenseUrl`` is free text on the file page: kept when it is a web address, else None."""
    try:
        return values.web_url("LicenseUrl", value, optional=True, schemes=("https", "http"))
    except InvalidValue:
        return None


_REQUIRED_INFO: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("url", str),
    ("mime", str),
    ("size", int),
    ("sha1", str),
    ("extmetadata", Mapping),
    ("duration", (int, float)),
)


def _check_file(  # noqa: PLR0911 - one return per way a hit is refused
    page: Mapping[str, Any], media_type: str = VIDEO
) -> tuple[str, str, Mapping[str, Any]] | Rejected:
    """Shape checks before any decision: ids, a videoinfo (imageinfo) entry with the fields we
    rely on, and the media type searched for."""
    page_id, title = page.get("pageid"), page.get("title")
    if not isinstance(page_id, int) or not isinstance(title, str) or not title:
        return Rejected(
            NAME, str(page_id)[:32], "missing_fields", f"{NAME}: hit without pageid/title"
        )
    source_id = str(values.whole("pageid", page_id, maximum=values.MAX_ID))
    label = f"{NAME} {values.shorten(title, 100)}"
    image = media_type == IMAGE
    infos = page.get("videoinfo") or page.get("imageinfo")
    if not isinstance(infos, list) or not infos or not isinstance(infos[0], Mapping):
        what = "imageinfo" if image else "videoinfo"
        return Rejected(NAME, source_id, "missing_fields", f"{label}: no {what}")
    info: Mapping[str, Any] = infos[0]
    required = _REQUIRED_INFO[:-1] if image else _REQUIRED_INFO  # images have no duration
    missing = [name for name, _kind in required if _absent(info.get(name))]
    if missing:
        return Rejected(NAME, source_id, "missing_fields", f"{label}: missing or empty {missing}")
    wrong = [
        name
        for name, kind in required
        if not isinstance(info[name], kind) or isinstance(info[name], bool)
    ]
    if wrong:
        return Rejected(NAME, source_id, INVALID_METADATA, f"{label}: {wrong} have the wrong type")
    mime = str(info["mime"]).lower()
    declared = str(info.get("mediatype", "")).upper()
    if image:
        if declared != "BITMAP" or mime not in IMAGE_CONTENT_TYPES:
            return Rejected(
                NAME,
                source_id,
                "not_image",
                f"{label}: {mime} ({declared or '?'}) is not a bitmap the images unit reads",
            )
    elif declared != "VIDEO" or not (mime.startswith("video/") or mime in OGG_TYPES):
        return Rejected(
            NAME, source_id, "not_video", f"{label}: {mime} ({declared or '?'}) is not video"
        )
    return source_id, title, info


def best_webm_derivative(derivatives: object) -> Mapping[str, Any] | None:
    """The tallest WebM transcode up to 1080p, VP9 before VP8 at the same height."""
    best: tuple[int, int] | None = None
    chosen: Mapping[str, Any] | None = None
    for item in derivatives if isinstance(derivatives, list) else []:
        if not isinstance(item, Mapping):
            continue
        key, src = item.get("transcodekey"), item.get("src")
        kind = str(item.get("type", "")).lower()
        if not key or not src or not kind.startswith("video/webm"):
            continue
        height = _int_or_none(item.get("height"))
        if height is None:
            match = _HEIGHT_RE.match(str(key))
            height = int(match.group(1)) if match else None
        if height is None or height > MAX_DERIVATIVE_HEIGHT:
            continue
        rank = (height, 1 if "vp9" in str(key) or "vp9" in kind else 0)
        if best is None or rank > best:
            best, chosen = rank, item
    return chosen


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _maxlag(response: requests.Response) -> bool:
    return response.headers.get("MediaWiki-API-Error") == "maxlag"
