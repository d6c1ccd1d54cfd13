"""Wikimedia Commons and Pixabay answered from local fixtures: no network, real answer shapes.

``SourceFixtures.mock()`` is a ``responses`` mock of the ``requests`` transport the ingest
handler uses: the Commons API (``generator=search`` + ``prop=videoinfo``), the Pixabay videos API
and the media hosts (``upload.wikimedia.org``, ``cdn.pixabay.com``) serve a small catalogue per
campaign. Any other URL fails, so nothing can leak to the internet.

Every file is real encoded media (``localworld.media``): Commons serves WebM (VP9 + Opus) and
one Ogg file whose WebM derivative is offered as Commons offers it (``derivatives``), Pixabay
serves H.264 + AAC MP4s at two heights. Sizes, SHA-1s, dimensions and durations in the answers
are those of the served bytes, as the real APIs report them.

Images (``filetype:bitmap`` with ``prop=imageinfo`` on Commons, ``https://pixabay.com/api/``
with ``image_type=photo``) are stills of the same scenes (``localworld.media.draw_frame``),
encoded as JPEG or PNG, so the Rekognition image stand-in labels them as it labels the clips.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import numpy as np
import responses
from PIL import Image

from localworld.media import (
    BLACK,
    COMMONS_OGV,
    COMMONS_OGV_DERIVATIVE,
    COMMONS_WEBM,
    PIXABAY_MP4_240,
    PIXABAY_MP4_360,
    SCENES,
    ClipSpec,
    draw_frame,
    render,
)

COMMONS_API = "https://commons.wikimedia.org/w/api.php"
PIXABAY_API = "https://pixabay.com/api/videos/"
PIXABAY_IMAGE_API = "https://pixabay.com/api/"
PIXABAY_GET = "https://pixabay.com/get"
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


def upload_url(file_name: str) -> str:
    """Where Commons serves an original: ``/<md5[0]>/<md5[:2]>/<name>``."""
    # Commons' upload path scheme, not a security use
    digest = hashlib.md5(file_name.encode(), usedforsecurity=False).hexdigest()
    return f"{UPLOAD}/{digest[0]}/{digest[:2]}/{quote(file_name)}"


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
        return upload_url(self.file_name)

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


@dataclass(frozen=True)
class Still:
    """A photograph of one scene, as a source serves it (``body``: the encoded file)."""

    scene: str
    width: int
    height: int
    fmt: str = "JPEG"

    @property
    def content_type(self) -> str:
        return {"JPEG": "image/jpeg", "PNG": "image/png"}[self.fmt]

    @property
    def extension(self) -> str:
        return {"JPEG": ".jpg", "PNG": ".png"}[self.fmt]

    @cached_property
    def body(self) -> bytes:
        frame = draw_frame(SCENES[self.scene], self.width, self.height, 1.0)
        # A little deterministic grain: real photographs are not flat colour.
        grain = np.random.default_rng(self.width * 7 + self.height).integers(-6, 7, frame.shape)
        pixels = np.clip(frame.astype(np.int16) + grain, 0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(
            out, self.fmt, **({"quality": 92} if self.fmt == "JPEG" else {})
        )
        return out.getvalue()


@dataclass(frozen=True)
class CommonsImage:
    page_id: int
    title: str  # without "File:"
    license_short: str
    license_code: str
    license_url: str
    artist: str
    still: Still

    @property
    def file_name(self) -> str:
        return self.title.replace(" ", "_")

    @property
    def url(self) -> str:
        return upload_url(self.file_name)

    @property
    def body(self) -> bytes:
        return self.still.body


@dataclass(frozen=True)
class PixabayImage:
    image_id: int
    tags: str
    user: str
    user_id: int
    still: Still

    @property
    def url(self) -> str:
        # largeImageURL's shape: an opaque token, then _1280 and the extension
        token = hashlib.sha256(str(self.image_id).encode(), usedforsecurity=False).hexdigest()
        return f"{PIXABAY_GET}/g{token[:40]}_1280{self.still.extension}"

    @property
    def body(self) -> bytes:
        return self.still.body


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


COMMONS_IMAGES: dict[str, list[CommonsImage]] = {
    "travel": [
        CommonsImage(
            68765431, "Tram 28 on Rua da Conceicao.jpg", *CC_BY_SA, "Ana Sousa",
            Still("tram", 1600, 1200),
        ),
        CommonsImage(
            68765432, "Lisbon rooftops at noon.png", *CC0, "Rui Pereira",
            Still("city", 900, 600, "PNG"),
        ),
    ],
    "tech": [
        CommonsImage(
            58765431, "Workbench with oscilloscope.jpg", *CC_BY, "M. Okafor",
            Still("desk", 1400, 1050),
        ),
    ],
    "nature": [
        CommonsImage(
            48765431, "Laurel forest in Madeira.jpg", *CC_BY_SA, "Inês Faria",
            Still("forest", 1500, 1000),
        ),
    ],
}  # fmt: skip
PIXABAY_IMAGES: dict[str, list[PixabayImage]] = {
    "travel": [
        PixabayImage(
            7345125, "beach, sea, travel", "Engin_Akyurt", 3064779, Still("sea", 1280, 853)
        ),
    ],
    "tech": [
        PixabayImage(
            7331377, "laptop, desk, technology", "Pexels", 2286921, Still("desk", 1280, 960)
        ),
    ],
    "nature": [
        PixabayImage(
            7341270, "forest, trees, nature", "Daniel_Hannah", 1564471, Still("forest", 853, 1280)
        ),
    ],
}


def commons_image_page(image: CommonsImage, index: int) -> dict[str, Any]:
    """An ``imageinfo`` hit, as Commons answers ``prop=imageinfo``."""
    page = commons_page_fields(image, index)
    still = image.still
    page["imageinfo"] = [
        {
            **page.pop("_info"),
            "size": len(image.body),
            "width": still.width,
            "height": still.height,
            "url": image.url,
            "sha1": hashlib.sha1(image.body, usedforsecurity=False).hexdigest(),
            "mime": still.content_type,
            "mediatype": "BITMAP",
        }
    ]
    return page


def pixabay_image_hit(image: PixabayImage) -> dict[str, Any]:
    still = image.still
    preview = image.url.replace("_1280", "_150")
    return {
        "id": image.image_id,
        "pageURL": f"https://pixabay.com/photos/id-{image.image_id}/",
        "type": "photo",
        "tags": image.tags,
        "previewURL": preview,
        "previewWidth": 150,
        "previewHeight": 100,
        "webformatURL": image.url.replace("_1280", "_640"),
        "webformatWidth": 640,
        "webformatHeight": 427,
        "largeImageURL": image.url,
        # The original's, as Pixabay reports it (the download is the 1280 px rendition).
        "imageWidth": still.width * 3,
        "imageHeight": still.height * 3,
        "imageSize": len(image.body) * 7,
        "views": 1201,
        "downloads": 733,
        "collections": 12,
        "likes": 40,
        "comments": 3,
        "user_id": image.user_id,
        "user": image.user,
        "userImageURL": "https://cdn.pixabay.com/user/2015/10/16/09-28-45-303_250x250.png",
    }


def _all_clips() -> list[CommonsClip | PixabayClip]:
    return [c for clips in COMMONS.values() for c in clips] + [
        c for clips in PIXABAY.values() for c in clips
    ]


def _all_images() -> list[CommonsImage | PixabayImage]:
    return [i for images in COMMONS_IMAGES.values() for i in images] + [
        i for images in PIXABAY_IMAGES.values() for i in images
    ]


def _ext(value: str) -> dict[str, str]:
    return {"value": value, "source": "commons-desc-page", "hidden": ""}


def commons_page_fields(item: CommonsClip | CommonsImage, index: int) -> dict[str, Any]:
    """A search hit's page and the ``*info`` fields every file has (under ``_info``)."""
    file_page = f"https://commons.wikimedia.org/wiki/File:{quote(item.file_name)}"
    return {
        "pageid": item.page_id,
        "ns": 6,
        "title": f"File:{item.title}",
        "index": index,
        "_info": {
            "descriptionurl": file_page,
            "descriptionshorturl": f"https://commons.wikimedia.org/w/index.php?curid={item.page_id}",
            "extmetadata": {
                "ObjectName": _ext(item.title.rsplit(".", 1)[0]),
                "Artist": _ext(
                    f'<a href="https://commons.wikimedia.org/wiki/User:{quote(item.artist)}">{item.artist}</a>'
                ),
                "Credit": _ext("Own work"),
                "LicenseShortName": _ext(item.license_short),
                "License": _ext(item.license_code),
                "LicenseUrl": _ext(item.license_url),
                "UsageTerms": _ext(item.license_short),
                "AttributionRequired": _ext("false" if item.license_code == "cc0" else "true"),
            },
        },
    }


def commons_page(clip: CommonsClip, index: int) -> dict[str, Any]:
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
    page = commons_page_fields(clip, index)
    page["videoinfo"] = [
        {
            **page.pop("_info"),
            "size": len(clip.body),
            "width": spec.width,
            "height": spec.height,
            "duration": spec.duration_s,
            "url": clip.url,
            "sha1": sha1,
            "mime": spec.content_type,
            "mediatype": "VIDEO",
            "derivatives": derivatives,
        }
    ]
    return page


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
        search = query.get("gsrsearch", [""])[0]
        campaign = _campaign_of(search) or ""
        body: dict[str, Any] = {"batchcomplete": True}
        if search.startswith("filetype:bitmap") and query.get("prop") == ["imageinfo"]:
            pages = [
                commons_image_page(c, i + 1) for i, c in enumerate(COMMONS_IMAGES.get(campaign, []))
            ]
        elif search.startswith("filetype:video") and query.get("prop") == ["videoinfo"]:
            pages = [commons_page(c, i + 1) for i, c in enumerate(COMMONS.get(campaign, []))]
        else:
            pages = []
        if pages:
            body["query"] = {"pages": pages}
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body)

    def _pixabay(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.requests.append(request.url)
        query = parse_qs(urlsplit(request.url).query)
        if query.get("key", [""])[0] != PIXABAY_KEY:
            return 400, {"Content-Type": "text/plain"}, "[ERROR 400] Invalid or missing API key"
        campaign = _campaign_of(query.get("q", [""])[0]) or ""
        hits: list[dict[str, Any]]
        if urlsplit(request.url).path == urlsplit(PIXABAY_IMAGE_API).path:
            hits = [pixabay_image_hit(c) for c in PIXABAY_IMAGES.get(campaign, [])]
        else:
            hits = [pixabay_hit(c) for c in PIXABAY.get(campaign, [])]
        body = {"total": 8423, "totalHits": len(hits), "hits": hits}
        headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "99"}
        return 200, {"Content-Type": "application/json", **headers}, json.dumps(body)

    def _media(self, content_type: str, body: bytes) -> Any:
        def serve(request: Any) -> tuple[int, dict[str, str], bytes]:
            self.requests.append(request.url)
            return 200, {"Content-Type": content_type}, body

        return serve

    def mock(self) -> responses.RequestsMock:
        rsps = responses.RequestsMock(assert_all_requests_are_fired=False)
        rsps.add_callback(responses.GET, COMMONS_API, callback=self._commons)
        rsps.add_callback(responses.GET, PIXABAY_API, callback=self._pixabay)
        rsps.add_callback(responses.GET, PIXABAY_IMAGE_API, callback=self._pixabay)
        for url, spec, body in _fixture_files():
            rsps.add_callback(responses.GET, url, callback=self._media(spec.content_type, body))
        for image in _all_images():
            rsps.add_callback(
                responses.GET, image.url, callback=self._media(image.still.content_type, image.body)
            )
        return rsps
