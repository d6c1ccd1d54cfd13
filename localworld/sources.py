"""Wikimedia Commons and Pixabay answered from local fixtures: no network, real answer shapes.

``SourceFixtures.mock()`` is a ``responses`` mock of the ``requests`` transport the ingest
handler uses: the Commons API (``generator=search`` + ``prop=videoinfo``), the Pixabay videos API
and the media hosts (``upload.wikimedia.org``, ``cdn.pixabay.com``) serve a small catalogue per
campaign. Any other URL fails, so nothing can leak to the internet. Each file's duration is
registered in the ``MediaLibrary`` so MediaConvert and Rekognition see the clip's real length.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import responses

from localworld.media import MediaLibrary, clip_bytes

COMMONS_API = "https://commons.wikimedia.org/w/api.php"
PIXABAY_API = "https://pixabay.com/api/videos/"
UPLOAD = "https://upload.wikimedia.org/wikipedia/commons"
CDN = "https://cdn.pixabay.com/video"
PIXABAY_KEY = "local-pixabay-key-0001"


@dataclass(frozen=True)
class CommonsClip:
    page_id: int
    title: str  # without "File:"
    license_short: str
    license_code: str
    license_url: str
    artist: str
    duration_s: float
    width: int
    height: int
    size: int

    @property
    def url(self) -> str:
        name = self.title.replace(" ", "_")
        digest = hashlib.md5(name.encode()).hexdigest()  # noqa: S324 - Commons' path scheme
        return f"{UPLOAD}/{digest[0]}/{digest[:2]}/{quote(name)}"

    @property
    def body(self) -> bytes:
        return clip_bytes(f"commons-{self.page_id}", self.size)


@dataclass(frozen=True)
class PixabayClip:
    video_id: int
    tags: str
    user: str
    user_id: int
    duration_s: int
    size: int

    @property
    def url(self) -> str:
        day = self.video_id % 28 + 1
        return f"{CDN}/2024/05/{day:02d}/{self.video_id}-9{self.video_id:08d}_medium.mp4"

    @property
    def body(self) -> bytes:
        return clip_bytes(f"pixabay-{self.video_id}", self.size)


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
            41.2,
            1280,
            720,
            48_213,
        ),
        CommonsClip(
            98765432, "Ferry crossing the Tagus.webm", *CC0, "Rui Pereira", 63.0, 1920, 1080, 52_000
        ),
        CommonsClip(
            98765433, "Night train to Porto.webm", *CC_BY, "Hans Müller", 35.5, 1280, 720, 31_000
        ),
    ],
    "tech": [
        CommonsClip(
            88765431, "Server room walkthrough.webm", *CC_BY_SA, "Lee Chen", 28.0, 1280, 720, 40_000
        ),
        CommonsClip(
            88765432, "Soldering a circuit board.webm", *CC0, "M. Okafor", 45.0, 1920, 1080, 44_000
        ),
    ],
    "nature": [
        CommonsClip(
            78765431,
            "Waterfall in the Azores.webm",
            *CC_BY_SA,
            "Inês Faria",
            52.0,
            1920,
            1080,
            50_000,
        ),
        CommonsClip(
            78765432, "Storks nesting in spring.webm", *CC0, "J. Novak", 33.0, 1280, 720, 36_000
        ),
    ],
}
PIXABAY: dict[str, list[PixabayClip]] = {
    "travel": [
        PixabayClip(125, "tram, city, travel", "Coverr-Free-Footage", 1281706, 12, 36_211),
        PixabayClip(28860, "beach, sea, travel", "Engin_Akyurt", 3064779, 20, 52_000),
    ],
    "tech": [PixabayClip(31377, "laptop, code, technology", "Pexels", 2286921, 16, 30_000)],
    "nature": [PixabayClip(41270, "forest, river, nature", "Daniel_Hannah", 1564471, 24, 42_000)],
}


def _ext(value: str) -> dict[str, str]:
    return {"value": value, "source": "commons-desc-page", "hidden": ""}


def commons_page(clip: CommonsClip, index: int) -> dict[str, Any]:
    file_page = f"https://commons.wikimedia.org/wiki/File:{quote(clip.title.replace(' ', '_'))}"
    sha1 = hashlib.sha1(clip.body).hexdigest()  # noqa: S324 - what Commons publishes
    return {
        "pageid": clip.page_id,
        "ns": 6,
        "title": f"File:{clip.title}",
        "index": index,
        "videoinfo": [
            {
                "size": clip.size,
                "width": clip.width,
                "height": clip.height,
                "duration": clip.duration_s,
                "url": clip.url,
                "descriptionurl": file_page,
                "descriptionshorturl": f"https://commons.wikimedia.org/w/index.php?curid={clip.page_id}",
                "sha1": sha1,
                "mime": "video/webm",
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
                "derivatives": [],
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
        "duration": clip.duration_s,
        "videos": {
            "large": {"url": "", "width": 0, "height": 0, "size": 0, "thumbnail": thumb},
            "medium": {
                "url": clip.url,
                "width": 1280,
                "height": 720,
                "size": clip.size,
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


def _fixture_files() -> list[tuple[CommonsClip | PixabayClip, str]]:
    """Every fixture file with the Content-Type its host serves it with.

    One list for both uses, registering durations and serving the files, so every clip that can
    be downloaded has a known length for MediaConvert and Rekognition.
    """
    return [(c, "video/webm") for clips in COMMONS.values() for c in clips] + [
        (c, "video/mp4") for clips in PIXABAY.values() for c in clips
    ]


class SourceFixtures:
    """The fixtures, and a ``responses`` mock that serves them (and nothing else)."""

    def __init__(self, media: MediaLibrary) -> None:
        self.media = media
        for clip, _content_type in _fixture_files():
            media.register_content(clip.body, clip.duration_s)
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

    def mock(self) -> responses.RequestsMock:
        rsps = responses.RequestsMock(assert_all_requests_are_fired=False)
        rsps.add_callback(responses.GET, COMMONS_API, callback=self._commons)
        rsps.add_callback(responses.GET, PIXABAY_API, callback=self._pixabay)
        for clip, content_type in _fixture_files():
            rsps.add(
                responses.GET,
                clip.url,
                body=clip.body,
                content_type=content_type,
                headers={"Content-Length": str(clip.size)},
            )
        return rsps
