"""Pixabay videos and photos: search with the API key from Secrets Manager, cache answers for
24 hours.

Facts that shape this module (Pixabay API documentation):

* ``GET https://pixabay.com/api/videos/?key=…&q=…&per_page=3..200&page=…``; ``q`` is at most
  100 characters; at most 100 requests per 60 s per key, HTTP 429 beyond.
* Search answers must be cached for 24 hours, so each page is kept as an S3 object under
  ``scratch/cache/pixabay/<sha256 of the query>.json`` (the key is never part of the cache key
  or the object). The scratch prefix expires by lifecycle.
* Each hit offers ``videos.{large,medium,small,tiny}`` renditions with ``url``, ``width``,
  ``height`` and ``size``; ``large`` may be empty (``url: ""``, ``size: 0``). Files are served
  from ``cdn.pixabay.com``.
* There is no checksum: the version token is ``pixabay:<id>:<rendition size>`` and the size is
  verified after download. The documented ``size`` is approximate, so the downloaded length may
  differ from it by ``size_tolerance(size)`` bytes (1 %, at least 1 KiB): enough for rounding,
  not for a truncated file. The maximum file size stays a hard limit.
* Content is under the Pixabay Content License, which is not Creative Commons; it is recorded as
  such and never presented as CC.
* Photos: ``GET https://pixabay.com/api/?key=…&q=…&image_type=photo`` (same paging, limits and
  licence). Each hit has ``largeImageURL`` (scaled to at most 1280 px, the largest size the API
  gives without full API access), ``imageWidth``/``imageHeight``/``imageSize`` of the original
  and ``tags``/``user``/``pageURL`` as videos do. Answers are cached apart, under
  ``scratch/cache/pixabay-images/``, with their own 24 hours. ``imageSize`` is the original's,
  not the download's, so the size is not verified (the images unit reads what arrives); the
  version token is ``pixabay-image:<id>:<imageSize>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from lambdas.ingest import values
from lambdas.ingest.adapters import PLACEHOLDER_VALUES
from lambdas.ingest.errors import BadSourceResponse, SourceNotConfigured
from lambdas.ingest.http import HostPolicy, HttpClient
from lambdas.ingest.models import Candidate, Rejected
from lambdas.ingest.sources import HttpSource, SearchCache, SourceContext, read_hit
from lambdas.ingest.values import InvalidValue
from lambdas.shared.keys import CACHE_PREFIX
from lambdas.shared.media_types import IMAGE, VIDEO, image_type_of

NAME = "pixabay"
API_URL = "https://pixabay.com/api/videos/"
IMAGE_API_URL = "https://pixabay.com/api/"
API_POLICY = HostPolicy.of("pixabay.com")
# Videos come from the CDN; ``largeImageURL`` is served from pixabay.com/get/.
MEDIA_POLICY = HostPolicy.of("cdn.pixabay.com", "pixabay.com")
LICENSE = "Pixabay Content License"
LICENSE_URL = "https://pixabay.com/service/license-summary/"
RENDITIONS = ("large", "medium", "small", "tiny")
MAX_QUERY_LEN = 100
MAX_PAGES = 5
# A fixed page size keeps cache keys independent of the batch size, so reruns hit the cache.
PER_PAGE = 50
CACHE_FOLDER = f"{CACHE_PREFIX}pixabay/"
IMAGE_CACHE_FOLDER = f"{CACHE_PREFIX}pixabay-images/"
EXTENSION_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime"}
# Pixabay's ``size`` is approximate: a download within this share of it (or SIZE_SLACK_MIN_BYTES)
# is the file it described; a truncated or different file is further off than that.
SIZE_SLACK_RATIO = 0.01
SIZE_SLACK_MIN_BYTES = 1024
MAX_TAGS = 20
MAX_TAG_LEN = 50
MAX_USER_LEN = 100


def create(context: SourceContext) -> PixabaySource:
    arn = context.settings.pixabay_secret_arn
    if not arn:
        raise SourceNotConfigured(f"{NAME}: PIXABAY_SECRET_ARN is not set")
    api_key = parse_api_key(context.read_secret(arn))
    return PixabaySource(
        context.http_client(NAME),
        api_key=api_key,
        cache=context.cache,
        max_file_bytes=context.settings.max_file_bytes,
    )


def parse_api_key(secret: str) -> str:
    """The secret holds the bare key or ``{"api_key": "..."}``; a placeholder means "not yet"."""
    value = secret.strip()
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except ValueError as err:
            raise SourceNotConfigured(f"{NAME}: the API key secret is not valid JSON") from err
        found = document.get("api_key") if isinstance(document, dict) else None
        value = found.strip() if isinstance(found, str) else ""
    if value.lower() in PLACEHOLDER_VALUES:
        raise SourceNotConfigured(
            f"{NAME}: the API key secret still holds a placeholder; set it to enable Pixabay"
        )
    return value


def cache_key(query: Mapping[str, str], folder: str = CACHE_FOLDER) -> str:
    """S3 key of a cached answer: a hash of the query without the API key."""
    canonical = json.dumps({k: v for k, v in query.items() if k != "key"}, sort_keys=True)
    digest = hashlib.sha256(canonical.encode(), usedforsecurity=False).hexdigest()
    return f"{folder}{digest}.json"


def size_tolerance(declared: int) -> int:
    """How many bytes a download may differ from a declared (approximate) Pixabay size."""
    return max(SIZE_SLACK_MIN_BYTES, int(declared * SIZE_SLACK_RATIO))


def pick_rendition(videos: object, max_bytes: int) -> tuple[str, Mapping[str, Any]] | None:
    """The biggest rendition that exists and fits the size limit."""
    if not isinstance(videos, Mapping):
        return None
    fitting: list[tuple[int, str, Mapping[str, Any]]] = []
    for name in RENDITIONS:
        item = videos.get(name)
        if not isinstance(item, Mapping):
            continue
        url, size = item.get("url"), item.get("size")
        if (
            isinstance(url, str)
            and url
            and isinstance(size, int)
            and not isinstance(size, bool)
            and 0 < size <= max_bytes
        ):
            fitting.append((size, name, item))
    if not fitting:
        return None
    _size, name, item = max(fitting, key=lambda entry: entry[0])
    return name, item


class PixabaySource(HttpSource):
    name = NAME
    media_policy = MEDIA_POLICY
    media_types = (VIDEO, IMAGE)

    def __init__(
        self, http: HttpClient, *, api_key: str, cache: SearchCache, max_file_bytes: int
    ) -> None:
        super().__init__(http)
        self._api_key = api_key
        self.cache = cache
        self.max_file_bytes = max_file_bytes

    def search(
        self, campaign: str, limit: int, media_type: str = VIDEO
    ) -> Iterator[Candidate | Rejected]:
        image = media_type == IMAGE
        query = {
            "q": " ".join(part for part in re.split(r"[-_]+", campaign) if part)[:MAX_QUERY_LEN],
            "per_page": str(PER_PAGE),
            "safesearch": "true",
            "order": "popular",
            **({"image_type": "photo"} if image else {}),
        }
        per_page = PER_PAGE
        for page in range(1, MAX_PAGES + 1):
            data = self._page({**query, "page": str(page)}, image=image)
            hits, total = data["hits"], data["totalHits"]
            for hit in hits:
                yield self._read_image_hit(hit) if image else self._read_hit(hit)
            if len(hits) < per_page or page * per_page >= total:
                return

    def _page(self, query: Mapping[str, str], *, image: bool = False) -> Mapping[str, Any]:
        key = cache_key(query, IMAGE_CACHE_FOLDER if image else CACHE_FOLDER)
        cached = self.cache.get(key)
        if cached is not None:
            try:
                return _check_envelope(cached)
            except BadSourceResponse:
                pass  # a corrupt cache entry is refetched, not trusted
        params = {**query, "key": self._api_key}
        url = IMAGE_API_URL if image else API_URL
        data = self.http.get_json(url, params=params, policy=API_POLICY)
        checked = _check_envelope(data)
        self.cache.put(key, data)
        return checked

    def _read_image_hit(self, hit: object) -> Candidate | Rejected:
        raw_id = hit.get("id") if isinstance(hit, Mapping) else None
        image_id = str(raw_id)[:32] if raw_id is not None else "?"
        return read_hit(
            NAME, image_id, f"{NAME} image {image_id}", lambda: self._parse_image_hit(hit)
        )

    def _parse_image_hit(self, hit: object) -> Candidate | Rejected:
        if not isinstance(hit, Mapping) or hit.get("id") is None:
            return Rejected(NAME, "?", "missing_fields", f"{NAME}: hit without a numeric id")
        image_id = values.whole("id", hit["id"], maximum=values.MAX_ID)
        label = f"{NAME} image {image_id}"
        url = values.web_url("largeImageURL", hit.get("largeImageURL"), optional=True)
        if not url:
            return Rejected(NAME, str(image_id), "missing_fields", f"{label}: no largeImageURL")
        suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
        mime = image_type_of(f"x{suffix}")
        if mime is None:
            return Rejected(
                NAME,
                str(image_id),
                "not_image",
                f"{label}: {suffix or 'no extension'} is not an image file the images unit reads",
            )
        original = values.whole(
            "imageSize", hit.get("imageSize") or 0, maximum=values.MAX_SIZE_BYTES
        )
        return _candidate(
            hit,
            noun="photo",
            item_id=image_id,
            source_id=f"image-{image_id}",
            checksum=f"pixabay-image:{image_id}:{original}",
            url=url,
            mime=mime,
            rendition="large",
            width=values.dimension("imageWidth", hit.get("imageWidth")),
            height=values.dimension("imageHeight", hit.get("imageHeight")),
        )

    def _read_hit(self, hit: object) -> Candidate | Rejected:
        """One hit, or its rejection with the reason: bad data in a hit never ends the search."""
        raw_id = hit.get("id") if isinstance(hit, Mapping) else None
        video_id = str(raw_id)[:32] if raw_id is not None else "?"
        return read_hit(NAME, video_id, f"{NAME} video {video_id}", lambda: self._parse_hit(hit))

    def _parse_hit(self, hit: object) -> Candidate | Rejected:
        checked = _check_hit(hit, self.max_file_bytes)
        if isinstance(checked, Rejected):
            return checked
        video_id, hit_fields, rendition, item = checked
        url = str(item["url"])
        suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
        mime = EXTENSION_TYPES.get(suffix)
        if mime is None:
            return Rejected(
                NAME,
                str(video_id),
                "not_video",
                f"{NAME} video {video_id}: {suffix or 'no extension'} is not a video file",
            )
        return _candidate(
            hit_fields,
            noun="video",
            item_id=video_id,
            source_id=str(video_id),
            checksum=f"{NAME}:{video_id}:{item['size']}",
            url=url,
            mime=mime,
            rendition=rendition,
            size_bytes=int(item["size"]),
            size_tolerance_bytes=size_tolerance(int(item["size"])),
            duration_s=float(hit_fields["duration"]),
            width=values.dimension("width", item.get("width")),
            height=values.dimension("height", item.get("height")),
        )


def _candidate(
    hit: Mapping[str, Any],
    *,
    noun: str,
    item_id: int,
    source_id: str,
    checksum: str,
    url: str,
    mime: str,
    rendition: str,
    **sizes: Any,
) -> Candidate:
    """A video or photo hit as a candidate: the same naming, licence and credit for both."""
    tags, user, author_url, page_url = _credit(hit)
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return Candidate(
        source=NAME,
        source_id=source_id,
        checksum=checksum,
        title=values.shorten(
            f"Pixabay {noun} {item_id}" + (f": {', '.join(tags[:5])}" if tags else ""),
            values.MAX_TITLE,
        ),
        file_name=f"pixabay_{item_id}_{'_'.join(tags[:3])}{suffix}",
        download_url=url,
        mime=mime,
        license=LICENSE,
        license_url=LICENSE_URL,
        source_page_url=page_url,
        attribution={
            "title": ", ".join(tags[:5]) or f"Pixabay {noun} {item_id}",
            "author": user,
            "author_url": author_url,
            "tags": tags,
            "rendition": rendition,
            "attribution_required": False,
            "credit_line": f"{'Image' if noun == 'photo' else 'Video'} by {user} from Pixabay "
            f"({LICENSE})",
        },
        expected_sha1=None,
        **sizes,
    )


def _credit(hit: Mapping[str, Any]) -> tuple[list[str], str, str | None, str | None]:
    """Tags, user, the user's page and the hit's page, as a credit line needs them."""
    tags = [values.text(t, limit=MAX_TAG_LEN) for t in str(hit.get("tags") or "").split(",")]
    tags = [t for t in tags if t][:MAX_TAGS]
    user = values.text(hit.get("user") or "unknown", limit=MAX_USER_LEN) or "unknown"
    user_id = values.optional_whole("user_id", hit.get("user_id"), maximum=values.MAX_ID)
    page_url = values.web_url("pageURL", hit.get("pageURL"), optional=True)
    author_url = f"https://pixabay.com/users/{quote(user, safe='')}-{user_id}/" if user_id else None
    return tags, user, author_url, page_url


def _check_hit(
    hit: object, max_bytes: int
) -> tuple[int, Mapping[str, Any], str, Mapping[str, Any]] | Rejected:
    """Shape checks and the rendition choice; a hit we cannot use says why."""
    if not isinstance(hit, Mapping) or hit.get("id") is None:
        return Rejected(NAME, "?", "missing_fields", f"{NAME}: hit without a numeric id")
    video_id = values.whole("id", hit["id"], maximum=values.MAX_ID)
    label = f"{NAME} video {video_id}"
    duration = hit.get("duration")
    if duration in (None, "", 0):
        return Rejected(NAME, str(video_id), "missing_fields", f"{label}: no duration")
    values.number("duration", duration, maximum=values.MAX_DURATION_S)
    videos = hit.get("videos")
    if not isinstance(videos, Mapping):
        return Rejected(NAME, str(video_id), "missing_fields", f"{label}: no videos object")
    for name, rendition in videos.items():
        _check_rendition(str(name), rendition)
    choice = pick_rendition(videos, max_bytes)
    if choice is not None:
        return video_id, hit, choice[0], choice[1]
    offered = [r.get("size") for r in videos.values() if isinstance(r, Mapping) and r.get("url")]
    if offered:
        return Rejected(
            NAME,
            str(video_id),
            "too_large",
            f"{label}: every rendition ({offered} bytes) is over the {max_bytes}-byte limit",
        )
    return Rejected(NAME, str(video_id), "missing_fields", f"{label}: no rendition has a URL")


def _check_rendition(name: str, rendition: object) -> None:
    """Every offered rendition's numbers and URL must be real ones, or the hit is not trusted.

    An empty rendition (``url: ""``, ``size: 0``) is documented and fine.
    """
    if not isinstance(rendition, Mapping):
        raise InvalidValue(f"videos.{name} must be an object, got {values.shown(rendition)}")
    if not rendition.get("url"):
        return
    values.web_url(f"videos.{name}.url", rendition["url"])
    values.whole(f"videos.{name}.size", rendition.get("size"), maximum=values.MAX_SIZE_BYTES)
    for field in ("width", "height"):
        values.dimension(f"videos.{name}.{field}", rendition.get(field))


def _check_envelope(data: object) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise BadSourceResponse(f"{NAME}: API answered {type(data).__name__}, not an object")
    hits, total = data.get("hits"), data.get("totalHits")
    if not isinstance(hits, list) or not isinstance(total, int) or isinstance(total, bool):
        raise BadSourceResponse(f"{NAME}: API answer lacks 'hits' list or 'totalHits' number")
    return data
