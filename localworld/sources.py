"""Wikimedia Commons and Pixabay answered from local fixtures: no network, real answer shapes.

``SourceFixtures.mock()`` is a ``responses`` mock of the ``requests`` transport the ingest
handler uses: the Commons API (``generator=search`` + ``prop=videoinfo``), the Pixabay videos API
and the media hosts (``upload.wikimedia.org``, ``cdn.pixabay.com``) serve a small catalogue per
campaign. Any other URL fails, so nothing can leak to the internet.

Every file is real encoded media (``localworld.media``): Commons serves WebM (VP9 + Opus) and
one Ogg file whose WebM derivative is offered as Commons offers it (``derivatives``), Pixabay
serves H.264 + AAC MP4s at two heights. Sizes, SHA-1s, dimensions and durations in the answers
are those of the served bytes, as the real APIs report them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import responses

from localworld.media import (
    BLACK,
    COMMONS_OGV,
    COMMONS_OGV_DERIVATIVE,
    COMMONS_WEBM,
    PIXABAY_MP4_240,
    PIXABAY_MP4_360,
    ClipSpec,
    render,
)

COMMONS_API = "https://commons.wikimedia.org/w/api.php"
PIXABAY_API = "https://pixabay.com/api/videos/"
UPLOAD = "https://upload.wikimedia.org/wikipedia/commons"
CDN = "https://cdn.pixabay.com/video"
PIXABAY_KEY = "local-pixabay-key-0001"
# Commons' transcode key for the derivative the fixtures offer (``<height>p.<codec>.webm``).
DERIVATIVE_KEY = "360p.vp9.webm"


def variant(
    base: ClipSpec,
    name: str,
    shift: int,
    tone_hz: float,
    scenes: tuple[tuple[str, float], ...] | None = None,
) -> ClipSpec:
    """The same kind of file with other scenes (given, or the base's rotated) and another tone."""
    if scenes is None:
        turn = shift % len(base.scenes)
        scenes = base.scenes[turn:] + base.scenes[:turn]
    return dataclasses.replace(base, name=name, scenes=scenes, tone_hz=tone_hz)


class _Clip:
    """A fixture clip as its local source serves it: ``body`` is the file, rendered once."""

    spec: ClipSpec

    @cached_property
    def body(self) -> bytes:
        return render(self.spec)

    @property
    def played(self) -> ClipSpec:
        """What MediaConvert and Rekognition will see."""
        return self.spec


@dataclass(frozen=True)
class CommonsClip(_Clip):
    page_id: int
    title: str  # without "File:"
    license_short: str
    license_code: str
    license_url: str
    artist: str
    spec: ClipSpec
    # An Ogg file is not read as it is: Commons' WebM transcode of it is (``derivatives``).
    derivative: ClipSpec | None = None

    @property
    def file_name(self) -> str:
        return self.title.replace(" ", "_")

    @property
    def url(self) -> str:
        # Commons' upload path scheme, not a security use
        digest = hashlib.md5(self.file_name.encode(), usedforsecurity=False).hexdigest()
        return f"{UPLOAD}/{digest[0]}/{digest[:2]}/{quote(self.file_name)}"

    @property
    def derivative_url(self) -> str:
        # Commons' upload path scheme, not a security use
        digest = hashlib.md5(self.file_name.encode(), usedforsecurity=False).hexdigest()
        name = quote(self.file_name)
        return f"{UPLOAD}/transcoded/{digest[0]}/{digest[:2]}/{name}/{name}.{DERIVATIVE_KEY}"

    @cached_property
    def derivative_body(self) -> bytes:
        return render(self.derivative) if self.derivative is not None else b""

    @property
    def played(self) -> ClipSpec:
        """What MediaConvert and Rekognition will see: the derivative when there is one."""
        return self.derivative or self.spec


@dataclass(frozen=True)
class PixabayClip(_Clip):
    video_id: int
    tags: str
    user: str
    user_id: int
    spec: ClipSpec

    @property
    def url(self) -> str:
        day = self.video_id % 28 + 1
        return f"{CDN}/2024/05/{day:02d}/{self.video_id}-9{self.video_id:08d}_medium.mp4"


CC_BY_SA = ("CC BY-SA 4.0", "cc-by-sa-4.0", "https://creativecommons.org/licenses/by-sa/4.0")
CC0 = ("CC0", "cc0", "https://creativecommons.org/publicdomain/zero/1.0/deed.en")
CC_BY = ("CC BY 4.0", "cc-by-4.0", "https://creativecommons.org/licenses/by/4.0")

COMMONS: dict[str, list[CommonsClip]] = {
    "travel": [
        CommonsClip(
            98765431,
            "Tram 28 in Alfama Lisbon.webm",
            *CC_BY_SA,
            "Ana Sousa",
            COMMONS_WEBM,
        ),
        CommonsClip(
            98765432,
            "Ferry crossing the Tagus.ogv",
            *CC0,
            "Rui Pereira",
            COMMONS_OGV,
            derivative=COMMONS_OGV_DERIVATIVE,
        ),
        CommonsClip(
            98765433,
            "Night train to Porto.webm",
            *CC_BY,
            "Hans Müller",
            variant(
                COMMONS_WEBM,
                "commons-night-train",
                1,
                523.25,
                (("city", 1.6), ("tram", 2.4), (BLACK, 0.8), ("city", 1.6), ("tram", 1.2)),
            ),
        ),
    ],
    "tech": [
        CommonsClip(
            88765431,
            "Server room walkthrough.webm",
            *CC_BY_SA,
            "Lee Chen",
            variant(
                COMMONS_WEBM,
                "commons-server-room",
                2,
                587.33,
                (("desk", 2.0), ("city", 1.2), ("desk", 2.0), (BLACK, 0.6), ("desk", 1.2)),
            ),
        ),
        CommonsClip(
            88765432,
            "Soldering a circuit board.webm",
            *CC0,
            "M. Okafor",
            variant(
                COMMONS_WEBM,
                "commons-soldering",
                3,
                659.25,
                (("desk", 2.4), ("bar", 1.2), ("desk", 2.0), ("city", 1.2)),
            ),
        ),
    ],
    "nature": [
        CommonsClip(
            78765431,
            "Waterfall in the Azores.webm",
            *CC_BY_SA,
            "Inês Faria",
            variant(
                COMMONS_WEBM,
                "commons-waterfall",
                4,
                698.46,
                (("forest", 2.0), ("sea", 2.0), ("forest", 1.6), (BLACK, 0.6), ("sea", 1.2)),
            ),
        ),
        CommonsClip(
            78765432,
            "Storks nesting in spring.webm",
            *CC0,
            "J. Novak",
            variant(
                COMMONS_WEBM,
                "commons-storks",
                5,
                783.99,
                (("sea", 1.6), ("forest", 2.4), ("sea", 1.2), ("forest", 1.6)),
            ),
        ),
    ],
}
PIXABAY: dict[str, list[PixabayClip]] = {
    "travel": [
        PixabayClip(
            125,
            "tram, city, travel",
            "Coverr-Free-Footage",
            1281706,
            variant(
                PIXABAY_MP4_360,
                "pixabay-tram-city",
                0,
                330.0,
                (("tram", 2.0), ("city", 1.6), (BLACK, 0.6), ("tram", 1.8), ("sea", 1.6)),
            ),
        ),
        PixabayClip(
            28860,
            "beach, sea, travel",
            "Engin_Akyurt",
            3064779,
            variant(
                PIXABAY_MP4_240,
                "pixabay-beach",
                1,
                349.23,
                (("sea", 2.0), ("city", 1.6), ("sea", 1.6), ("tram", 1.2)),
            ),
        ),
    ],
    "tech": [
        PixabayClip(
            31377,
            "laptop, code, technology",
            "Pexels",
            2286921,
            variant(
                PIXABAY_MP4_360,
                "pixabay-laptop",
                2,
                392.0,
                (("desk", 2.0), ("city", 1.6), (BLACK, 0.6), ("desk", 2.0), ("bar", 1.2)),
            ),
        )
    ],
    "nature": [
        PixabayClip(
            41270,
            "forest, river, nature",
            "Daniel_Hannah",
            1564471,
            variant(
                PIXABAY_MP4_240,
                "pixabay-river-nature",
                0,
                311.13,
                (("forest", 1.6), ("sea", 1.4), ("forest", 1.6), (BLACK, 0.4), ("sea", 1.2)),
            ),
        )
    ],
}


def _all_clips() -> list[CommonsClip | PixabayClip]:
    return [c for clips in COMMONS.values() for c in clips] + [
        c for clips in PIXABAY.values() for c in clips
    ]


def _ext(value: str) -> dict[str, str]:
    return {"value": value, "source": "commons-desc-page", "hidden": ""}


def commons_page(clip: CommonsClip, index: int) -> dict[str, Any]:
    file_page = f"https://commons.wikimedia.org/wiki/File:{quote(clip.file_name)}"
    sha1 = hashlib.sha1(clip.body, usedforsecurity=False).hexdigest()  # what Commons publishes
    spec = clip.spec
    derivatives: list[dict[str, Any]] = [
        {
            "src": clip.url,
            "type": spec.content_type,
            "width": spec.width,
            "height": spec.height,
        }
    ]
    if clip.derivative is not None:
        derivatives.append(
            {
                "src": clip.derivative_url,
                "type": 'video/webm; codecs="vp9, opus"',
                "title": f"VP9 {clip.derivative.height}P",
                "shorttitle": f"VP9 {clip.derivative.height}P",
                "transcodekey": DERIVATIVE_KEY,
                "width": clip.derivative.width,
                "height": clip.derivative.height,
                "bandwidth": 8 * len(clip.derivative_body) // max(1, int(spec.duration_s)),
            }
        )
    return {
        "pageid": clip.page_id,
        "ns": 6,
        "title": f"File:{clip.title}",
        "index": index,
        "videoinfo": [
            {
                "size": len(clip.body),
                "width": spec.width,
                "height": spec.height,
                "duration": spec.duration_s,
                "url": clip.url,
                "descriptionurl": file_page,
                "descriptionshorturl": f"https://commons.wikimedia.org/w/index.php?curid={clip.page_id}",
                "sha1": sha1,
                "mime": spec.content_type,
                "mediatype": "VIDEO",
                "extmetadata": {
                    "ObjectName": _ext(clip.title.rsplit(".", 1)[0]),
                    "Artist": _ext(
                        f'<a href="https://commons.wikimedia.org/wiki/User:{quote(clip.artist)}">{clip.artist}</a>'
                    ),
                    "Credit": _ext("Own work"),
                    "LicenseShortName": _ext(clip.license_short),
                    "License": _ext(clip.license_code),
                    "LicenseUrl": _ext(clip.license_url),
                    "UsageTerms": _ext(clip.license_short),
                    "AttributionRequired": _ext("false" if clip.license_code == "cc0" else "true"),
                },
                "derivatives": derivatives,
            }
        ],
    }


def pixabay_hit(clip: PixabayClip) -> dict[str, Any]:
    thumb = clip.url.replace(".mp4", ".jpg")
    return {
        "id": clip.video_id,
        "pageURL": f"https://pixabay.com/videos/id-{clip.video_id}/",
        "type": "film",
        "tags": clip.tags,
        "duration": round(clip.spec.duration_s),
        "videos": {
            "large": {"url": "", "width": 0, "height": 0, "size": 0, "thumbnail": thumb},
            "medium": {
                "url": clip.url,
                "width": clip.spec.width,
                "height": clip.spec.height,
                "size": len(clip.body),
                "thumbnail": thumb,
            },
        },
        "views": 4462,
        "downloads": 1464,
        "likes": 18,
        "comments": 0,
        "user_id": clip.user_id,
        "user": clip.user,
        "userImageURL": "https://cdn.pixabay.com/user/2015/10/16/09-28-45-303_250x250.png",
    }


def _campaign_of(text: str) -> str | None:
    words = set(re.split(r"[^a-z0-9]+", text.lower()))
    return next((c for c in COMMONS if c in words), None)


def _fixture_files() -> list[tuple[str, ClipSpec, bytes]]:
    """Every downloadable file: its URL, what it is and its bytes (rendered once, cached)."""
    files: list[tuple[str, ClipSpec, bytes]] = []
    for clip in _all_clips():
        files.append((clip.url, clip.spec, clip.body))
        if isinstance(clip, CommonsClip) and clip.derivative is not None:
            files.append((clip.derivative_url, clip.derivative, clip.derivative_body))
    return files


class SourceFixtures:
    """The fixtures, and a ``responses`` mock that serves them (and nothing else)."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def _commons(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.requests.append(request.url)
        query = parse_qs(urlsplit(request.url).query)
        campaign = _campaign_of(query.get("gsrsearch", [""])[0])
        clips = COMMONS.get(campaign or "", [])
        body: dict[str, Any] = {"batchcomplete": True}
        if clips:
            body["query"] = {"pages": [commons_page(c, i + 1) for i, c in enumerate(clips)]}
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body)

    def _pixabay(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.requests.append(request.url)
        query = parse_qs(urlsplit(request.url).query)
        if query.get("key", [""])[0] != PIXABAY_KEY:
            return 400, {"Content-Type": "text/plain"}, "[ERROR 400] Invalid or missing API key"
        clips = PIXABAY.get(_campaign_of(query.get("q", [""])[0]) or "", [])
        body = {"total": 8423, "totalHits": len(clips), "hits": [pixabay_hit(c) for c in clips]}
        headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "99"}
        return 200, {"Content-Type": "application/json", **headers}, json.dumps(body)

    def _media(self, spec: ClipSpec, body: bytes) -> Any:
        def serve(request: Any) -> tuple[int, dict[str, str], bytes]:
            self.requests.append(request.url)
            return 200, {"Content-Type": spec.content_type}, body

        return serve

    def mock(self) -> responses.RequestsMock:
        rsps = responses.RequestsMock(assert_all_requests_are_fired=False)
        rsps.add_callback(responses.GET, COMMONS_API, callback=self._commons)
        rsps.add_callback(responses.GET, PIXABAY_API, callback=self._pixabay)
        for url, spec, body in _fixture_files():
            rsps.add_callback(responses.GET, url, callback=self._media(spec, body))
        return rsps
