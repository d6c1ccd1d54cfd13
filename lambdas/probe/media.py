"""What a media file is, and whether the pipeline can process it, from a few of its bytes.

``probe(source, ...)`` opens a seekable file object (``S3RangeReader`` in the Lambda, a local
file in the local world) with PyAV, reads the container header and index, decodes the first
video frame and, for Matroska/WebM, the last cluster, and answers a ``Probe``: the technical
metadata, a ``Decision`` each for MediaConvert and Rekognition Video, and ``refusal``, the reason
the asset must end FAILED before any paid job (or ``None``).

Refusals are values, not exceptions: a broken upload is an expected outcome, and FFmpeg's own
message is kept in the reason so a person can act on it. Only the reader's errors (the object
vanished, the byte budget ran out) propagate: those are about reading, not about the file.

Nothing here reads a whole file: FFmpeg's probing is capped (``_OPEN_OPTIONS``), the first frame
is the only decode, and the Matroska end check reads a bounded tail.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

import av

# FFmpeg's probing limits: enough for the stream parameters, never a long stretch of the file.
_OPEN_OPTIONS = {"probesize": str(4 * 1024 * 1024), "analyzeduration": str(3_000_000)}
# Demuxed packets allowed before the first video frame must have come out of the decoder.
_FIRST_FRAME_PACKETS = 600
# How much a file's declared duration may exceed where its last block ends.
TRUNCATION_SLACK_S = 0.5
_HEAD_BYTES = 64
# Tail sizes tried in turn to find the last Matroska Cluster (FFmpeg writes 5 s / 5 MiB ones).
_TAIL_WINDOWS = (64 * 1024, 512 * 1024, 2 * 1024 * 1024, 8 * 1024 * 1024)

# Rekognition Video's input limits (StartLabelDetection and friends; see docs/DESIGN.md):
# H.264 in MP4 or MOV, at most 10 GB and 6 hours.
REKOGNITION_CONTAINERS = frozenset({"mp4", "mov"})
REKOGNITION_CODECS = frozenset({"h264"})
REKOGNITION_MAX_BYTES = 10 * 1024**3
REKOGNITION_MAX_DURATION_S = 6 * 3600

# MediaConvert's supported *video input* containers and codecs, as FFmpeg names them (short
# container name -> FFmpeg video decoder names). Source: AWS Elemental MediaConvert User Guide,
# "Supported input codecs and containers", Video table
# (https://docs.aws.amazon.com/mediaconvert/latest/ug/reference-codecs-containers-input.html;
# read from the awsdocs/aws-elemental-mediaconvert-user-guide repository,
# doc_source/reference-codecs-containers-input.md). Ogg is listed for audio only: Theora or VP8
# in Ogg is not readable. That page version lists no AV1 input and no VP8/VP9 in Matroska.
# Name mapping: MPEG-2/H.262 = mpeg2video, MPEG-4 part 2/DivX/Xvid = mpeg4, VC-1 = vc1/wmv3,
# DV/DVCPRO = dvvideo, VC-3 = dnxhd, Canopus HQ = hq_hqa, QuickTime RLE = qtrle, Flash = flv1,
# uncompressed = rawvideo, AVC-Intra = h264, JPEG 2000 = jpeg2000, ProRes = prores.
MEDIACONVERT_VIDEO_INPUTS: dict[str, frozenset[str]] = {
    "raw": frozenset({"dvvideo", "h264", "hevc", "mpeg1video", "mpeg2video"}),
    "3gp": frozenset({"h264", "h263", "mpeg4"}),
    "3g2": frozenset({"h264", "h263", "mpeg4"}),
    "asf": frozenset({"vc1", "wmv3"}),
    "avi": frozenset({"rawvideo", "hq_hqa", "mpeg4", "dvvideo", "mjpeg"}),
    "flv": frozenset({"h264", "flv1", "h263"}),
    "gif": frozenset({"gif"}),
    "mpegts": frozenset({"h264", "hevc", "mpeg2video", "vc1"}),
    "mkv": frozenset({"h264", "mpeg2video", "mpeg4", "vc1"}),
    "mpeg": frozenset({"mpeg1video", "mpeg2video"}),
    "mp4": frozenset(
        {
            "rawvideo",
            "h264",
            "mpeg4",
            "h261",
            "mpeg2video",
            "h263",
            "hevc",
            "jpeg2000",
            "vc1",
        }
    ),
    "mxf": frozenset(
        {"rawvideo", "prores", "h264", "dnxhd", "dvvideo", "jpeg2000", "mpeg2video", "mpeg4"}
    ),
    "mov": frozenset(
        {
            "rawvideo",
            "prores",
            "h264",
            "mpeg4",
            "dvvideo",
            "h261",
            "mpeg2video",
            "h263",
            "hevc",
            "jpeg2000",
            "mjpeg",
            "qtrle",
        }
    ),
    "webm": frozenset({"vp8", "vp9"}),
}

# FFmpeg demuxers that read a single picture (image2 and its *_pipe variants).
_IMAGE_CODECS = frozenset({"png", "mjpeg", "bmp", "tiff", "webp", "jpeg2000", "jpegxl", "heif"})
# ISO-BMFF major brands (bytes 8-12 of ``ftyp``) that are not plain MP4.
_BRANDS: tuple[tuple[bytes, str], ...] = (
    (b"qt  ", "mov"),
    (b"3g2", "3g2"),
    (b"3gp", "3gp"),
    (b"3ge", "3gp"),
    (b"3gg", "3gp"),
)
# Elementary-stream demuxers: MediaConvert's "No container" row.
_RAW_FORMATS = frozenset({"h264", "hevc", "mpegvideo", "m4v", "dv"})

# FFmpeg's AVColorTransferCharacteristic and AVColorPrimaries values, by FFmpeg's names.
_TRANSFERS: dict[int, str] = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    11: "iec61966-2-4",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
_PRIMARIES: dict[int, str] = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
_HDR: dict[str, str] = {"smpte2084": "PQ", "arib-std-b67": "HLG"}
# How reasons name codecs and containers to a person.
_CODEC_NAMES: dict[str, str] = {
    "h264": "H.264",
    "hevc": "H.265",
    "vp8": "VP8",
    "vp9": "VP9",
    "av1": "AV1",
    "theora": "Theora",
    "mpeg2video": "MPEG-2",
    "mpeg4": "MPEG-4 part 2",
    "prores": "ProRes",
}
_CONTAINER_NAMES: dict[str, str] = {
    "mp4": "MP4",
    "mov": "MOV",
    "webm": "WebM",
    "mkv": "Matroska",
    "ogg": "Ogg",
    "mxf": "MXF",
    "mpegts": "MPEG-TS",
    "avi": "AVI",
    "raw": "a raw elementary stream",
}


# What PyAV reads from: a file object, or the ranged S3 reader (a raw, seekable stream).
Source = BinaryIO | io.RawIOBase


@dataclass(frozen=True)
class Decision:
    """Whether a service can read the file as it is, and why (for a person)."""

    ok: bool
    reason: str


@dataclass(frozen=True)
class VideoStream:
    """One video stream; ``width``/``height`` are coded, ``rotation`` is clockwise degrees."""

    index: int
    codec: str
    profile: str | None
    level: int | None
    width: int
    height: int
    frame_rate: float | None
    pix_fmt: str | None
    rotation: int
    color_transfer: str | None
    color_primaries: str | None
    hdr: str | None
    bit_depth: int | None


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    channels: int
    sample_rate: int
    language: str | None


@dataclass(frozen=True)
class SubtitleStream:
    index: int
    codec: str
    language: str | None


@dataclass(frozen=True)
class Probe:
    """The probe's report. ``refusal`` is set when the pipeline must not process the file."""

    name: str
    size_bytes: int
    container: str | None
    format_name: str | None
    duration_s: float | None
    bit_rate: int | None
    video: tuple[VideoStream, ...]
    audio: tuple[AudioStream, ...]
    subtitles: tuple[SubtitleStream, ...]
    mediaconvert: Decision
    rekognition: Decision
    refusal: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: lists for the stream tuples, plain numbers and strings elsewhere."""
        out = asdict(self)
        for name in ("video", "audio", "subtitles"):
            out[name] = list(out[name])
        return out


class _Refused(Exception):
    """Internal: stop inspecting, the file is refused for this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Helpers shared with the local world's whole-file probe (localworld/media.py imports these).
# --------------------------------------------------------------------------------------------


def looks_like_media(head: bytes) -> bool:
    """Whether the first bytes are an ISO-BMFF box, EBML (Matroska), Ogg or RIFF header.

    FFmpeg failing to open such a file means it is cut short, not that it is not media.
    """
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide") or head.startswith(
        (b"\x1a\x45\xdf\xa3", b"OggS", b"RIFF")
    )


def container_short_name(format_name: str, head: bytes) -> str:
    """FFmpeg's demuxer name made specific: mp4/mov/3gp/3g2 by brand, webm/mkv by DocType."""
    if format_name.startswith("mov,"):
        brand = head[8:12]
        for prefix, name in _BRANDS:
            if brand.startswith(prefix):
                return name
        return "mp4"
    if format_name.startswith("matroska"):
        return "webm" if b"webm" in head[:_HEAD_BYTES] else "mkv"
    if format_name in _RAW_FORMATS:
        return "raw"
    return format_name.split(",", maxsplit=1)[0]


def ffmpeg_message(error: av.FFmpegError) -> str:
    return str(error.strerror or error)


def data_past_end(stream: Any, size: int) -> int | None:
    """The first index entry whose bytes lie past ``size`` (a cut-off file), or None."""
    for entry in stream.index_entries:
        if entry.pos + entry.size > size:
            return int(entry.pos)
    return None


def clockwise_rotation(frame: Any) -> int:
    """The rotation a player applies to ``frame``, clockwise degrees (PyAV's is counter-)."""
    return (-round(frame.rotation)) % 360


# --------------------------------------------------------------------------------------------
# The probe
# --------------------------------------------------------------------------------------------


def probe(source: Source, *, size_bytes: int, name: str, max_duration_s: float) -> Probe:
    """Inspect ``source`` (seekable, ``size_bytes`` long); see the module docstring."""
    if size_bytes <= 0:
        return _refused(name, size_bytes, "empty file: 0 bytes")
    source.seek(0)
    head = source.read(_HEAD_BYTES) or b""
    source.seek(0)
    try:
        container = av.open(source, "r", options=dict(_OPEN_OPTIONS))
    except av.FFmpegError as error:
        if looks_like_media(head):
            reason = f"truncated media file: FFmpeg cannot open it: {ffmpeg_message(error)}"
        else:
            reason = f"not a media file: {ffmpeg_message(error)}"
        return _refused(name, size_bytes, reason)
    try:
        return _inspect(
            container, source=source, head=head, size=size_bytes, name=name, limit=max_duration_s
        )
    finally:
        container.close()


def _refused(name: str, size: int, reason: str, **known: Any) -> Probe:
    fields: dict[str, Any] = {
        "container": None,
        "format_name": None,
        "duration_s": None,
        "bit_rate": None,
        "video": (),
        "audio": (),
        "subtitles": (),
    }
    fields.update(known)
    no = Decision(False, reason)
    return Probe(
        name=name, size_bytes=size, mediaconvert=no, rekognition=no, refusal=reason, **fields
    )


def _inspect(
    container: Any, *, source: Source, head: bytes, size: int, name: str, limit: float
) -> Probe:
    format_name = str(container.format.name)
    short = container_short_name(format_name, head)
    duration = _duration_s(container)
    known: dict[str, Any] = {
        "container": short,
        "format_name": format_name,
        "duration_s": duration,
        "bit_rate": int(container.bit_rate) if container.bit_rate else None,
        "audio": tuple(_audio(container.streams.audio)),
        "subtitles": tuple(_subtitles(container.streams.subtitles)),
    }
    videos = [s for s in container.streams.video if not _is_attached_picture(s)]
    try:
        video = _check(
            container,
            videos,
            short=short,
            size=size,
            duration=duration,
            limit=limit,
            source=source,
            head=head,
        )
        first = _first_frame(container, video)
    except _Refused as refused:
        known["video"] = tuple(_video(s, None) for s in videos)
        return _refused(name, size, refused.reason, **known)
    streams = tuple(_video(s, first if s.index == video.index else None) for s in videos)
    main = streams[videos.index(video)]
    return Probe(
        name=name,
        size_bytes=size,
        video=streams,
        mediaconvert=_mediaconvert(short, main.codec),
        rekognition=_rekognition(short, main.codec, size, duration),
        refusal=None,
        **known,
    )


def _check(
    container: Any,
    videos: list[Any],
    *,
    short: str,
    size: int,
    duration: float | None,
    limit: float,
    source: Source,
    head: bytes,
) -> Any:
    """The stream to decode, or ``_Refused`` for the first reason the file cannot be used."""
    streams = ", ".join(f"{s.type} {s.codec_context.name}" for s in container.streams) or "none"
    if not videos:
        if not container.streams.audio:
            raise _Refused(f"not a media file: FFmpeg reads it as {short} (streams: {streams})")
        raise _Refused(f"no video stream: audio only (streams: {streams})")
    video = videos[0]
    codec = str(video.codec_context.name)
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        raise _Refused(f"no video stream: a still image ({codec})")
    if video.frames == 1 or (codec in _IMAGE_CODECS and video.frames <= 1 and not duration):
        raise _Refused(f"no video stream: a still image (a single {codec} frame)")
    past = data_past_end(video, size)
    if past is not None:
        raise _Refused(
            f"truncated media file: frame data at byte {past} past the end ({size} bytes)"
        )
    if short in ("webm", "mkv") and duration:
        end = _matroska_end_s(source, size, head)
        if end is not None and duration - end > TRUNCATION_SLACK_S:
            raise _Refused(
                f"truncated media file: declares {duration:.2f} s, the last block is at {end:.2f} s"
            )
    if duration is not None and duration > limit:
        raise _Refused(f"longer than the limit: {duration:.1f} s > {limit:g} s (max_duration_s)")
    return video


def _first_frame(container: Any, video: Any) -> Any:
    codec = video.codec_context.name
    try:
        for count, packet in enumerate(container.demux(video)):
            for frame in video.decode(packet):
                return frame
            if count >= _FIRST_FRAME_PACKETS:
                break
    except av.FFmpegError as error:
        raise _Refused(f"no decodable video: {codec}: {ffmpeg_message(error)}") from error
    raise _Refused(f"no decodable video: no {codec} frame could be decoded")


def _duration_s(container: Any) -> float | None:
    if container.duration and container.duration > 0:
        return round(container.duration / av.time_base, 3)
    for stream in container.streams.video:
        if stream.duration and stream.time_base:
            return round(float(stream.duration * stream.time_base), 3)
    return None


def _is_attached_picture(stream: Any) -> bool:
    """Cover art in an audio file shows up as a one-picture video stream."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _language(stream: Any) -> str | None:
    language = stream.language or stream.metadata.get("language")
    return None if not language or language == "und" else str(language)


def _video(stream: Any, frame: Any) -> VideoStream:
    context = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    source = frame if frame is not None else context
    transfer = _TRANSFERS.get(int(source.color_trc or 0))
    pix_fmt = frame.format.name if frame is not None else context.pix_fmt
    level = context.level
    return VideoStream(
        index=int(stream.index),
        codec=str(context.name),
        profile=context.profile,
        level=int(level) if level is not None and level >= 0 else None,
        width=int(context.width),
        height=int(context.height),
        frame_rate=round(float(rate), 3) if rate else None,
        pix_fmt=pix_fmt,
        rotation=clockwise_rotation(frame) if frame is not None else 0,
        color_transfer=transfer,
        color_primaries=_PRIMARIES.get(int(source.color_primaries or 0)),
        hdr=_HDR.get(transfer or ""),
        bit_depth=_bit_depth(pix_fmt),
    )


def _bit_depth(pix_fmt: str | None) -> int | None:
    if not pix_fmt:
        return None
    try:
        components = av.VideoFormat(pix_fmt).components
    except (ValueError, av.FFmpegError):
        return None
    return int(components[0].bits) if components else None


def _audio(streams: Iterable[Any]) -> Iterable[AudioStream]:
    for stream in streams:
        context = stream.codec_context
        yield AudioStream(
            index=int(stream.index),
            codec=str(context.name),
            channels=int(context.channels or 0),
            sample_rate=int(context.sample_rate or 0),
            language=_language(stream),
        )


def _subtitles(streams: Iterable[Any]) -> Iterable[SubtitleStream]:
    for stream in streams:
        yield SubtitleStream(int(stream.index), str(stream.codec_context.name), _language(stream))


def _shown(container: str, codec: str) -> str:
    return f"{_CODEC_NAMES.get(codec, codec)} in {_CONTAINER_NAMES.get(container, container)}"


def _mediaconvert(container: str, codec: str) -> Decision:
    codecs = MEDIACONVERT_VIDEO_INPUTS.get(container)
    name = _CONTAINER_NAMES.get(container, container)
    if codecs is None:
        return Decision(
            False, f"MediaConvert reads no video in {name}; this is {_shown(container, codec)}"
        )
    if codec not in codecs:
        return Decision(
            False,
            f"MediaConvert does not read {_shown(container, codec)}"
            f" (it reads {', '.join(sorted(codecs))} there)",
        )
    return Decision(True, f"MediaConvert reads {_shown(container, codec)}")


def _rekognition(container: str, codec: str, size: int, duration: float | None) -> Decision:
    shown = _shown(container, codec)
    if container not in REKOGNITION_CONTAINERS or codec not in REKOGNITION_CODECS:
        return Decision(False, f"Rekognition Video reads H.264 in MP4 or MOV only; this is {shown}")
    if size > REKOGNITION_MAX_BYTES:
        return Decision(False, f"Rekognition Video reads at most 10 GB; this is {size} bytes")
    if duration is not None and duration > REKOGNITION_MAX_DURATION_S:
        return Decision(False, f"Rekognition Video reads at most 6 h; this is {duration:.0f} s")
    return Decision(True, f"Rekognition Video reads {shown} as it is")


# --------------------------------------------------------------------------------------------
# Matroska/WebM: where the last block ends, from a bounded tail of the file (EBML).
# FFmpeg would find it by seeking, but without Cues (lost when a file is cut) its seek scans
# forward from the start: unbounded. The last Cluster's Timecode plus its blocks' offsets is.
# --------------------------------------------------------------------------------------------

_CLUSTER = b"\x1f\x43\xb6\x75"
_TIMECODE_SCALE = b"\x2a\xd7\xb1"
_DEFAULT_TIMECODE_SCALE_NS = 1_000_000


def _vint(data: bytes, pos: int) -> tuple[int, int] | None:
    """An EBML variable-length size at ``pos``: (value, length); all-ones (unknown) is -1."""
    if pos >= len(data):
        return None
    first = data[pos]
    length, mask = 1, 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8 or pos + length > len(data):
        return None
    value = first & (mask - 1)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    unknown = value == (1 << (7 * length)) - 1
    return (-1 if unknown else value), length


def _element_id(data: bytes, pos: int) -> bytes | None:
    if pos >= len(data) or not data[pos]:
        return None
    length = 8 - data[pos].bit_length() + 1
    return data[pos : pos + length] if length <= 4 and pos + length <= len(data) else None


def _block_offset(data: bytes, pos: int, end: int) -> int | None:
    """A (Simple)Block's signed 16-bit timecode, relative to its cluster."""
    track = _vint(data, pos)
    if track is None or pos + track[1] + 2 > end:
        return None
    at = pos + track[1]
    return int.from_bytes(data[at : at + 2], "big", signed=True)


def _cluster_end(data: bytes, pos: int) -> int | None:
    """Cluster Timecode + the latest block offset in it, in TimecodeScale units."""
    size = _vint(data, pos + 4)
    if size is None:
        return None
    body = pos + 4 + size[1]
    end = len(data) if size[0] < 0 else min(len(data), body + size[0])
    timecode: int | None = None
    latest = 0
    cursor = body
    while cursor < end:
        ident = _element_id(data, cursor)
        if ident is None:
            break
        length = _vint(data, cursor + len(ident))
        if length is None or length[0] < 0:
            break
        payload = cursor + len(ident) + length[1]
        stop = min(end, payload + length[0])
        if ident == b"\xe7":
            timecode = int.from_bytes(data[payload:stop], "big")
        elif ident == b"\xa3":
            offset = _block_offset(data, payload, stop)
            latest = max(latest, offset or 0)
        elif ident == b"\xa0":
            inner = _element_id(data, payload)
            inner_size = _vint(data, payload + 1) if inner == b"\xa1" else None
            if inner_size is not None:
                offset = _block_offset(data, payload + 1 + inner_size[1], stop)
                latest = max(latest, offset or 0)
        elif timecode is None:
            return None  # not a real cluster: the ID bytes occurred inside some payload
        cursor = payload + length[0]
    return None if timecode is None else timecode + latest


def _timecode_scale_ns(head: bytes) -> int:
    at = head.find(_TIMECODE_SCALE)
    size = _vint(head, at + 3) if at >= 0 else None
    if size is None or size[0] <= 0:
        return _DEFAULT_TIMECODE_SCALE_NS
    start = at + 3 + size[1]
    value = int.from_bytes(head[start : start + size[0]], "big")
    return value or _DEFAULT_TIMECODE_SCALE_NS


def _matroska_end_s(source: Source, size: int, head: bytes) -> float | None:
    """Where the file's last block starts (seconds), or None when no cluster is found."""
    position = source.tell()
    try:
        source.seek(0)
        info = source.read(min(size, 4096)) or head
        scale = _timecode_scale_ns(info)
        for window in _TAIL_WINDOWS:
            start = max(0, size - window)
            source.seek(start)
            tail = source.read(size - start) or b""
            at = tail.rfind(_CLUSTER)
            while at >= 0:
                ticks = _cluster_end(tail, at)
                if ticks is not None:
                    return ticks * scale / 1e9
                at = tail.rfind(_CLUSTER, 0, at)
            if start == 0:
                return None
        return None
    finally:
        source.seek(position)


__all__ = [
    "MEDIACONVERT_VIDEO_INPUTS",
    "AudioStream",
    "Decision",
    "Probe",
    "SubtitleStream",
    "VideoStream",
    "clockwise_rotation",
    "container_short_name",
    "data_past_end",
    "ffmpeg_message",
    "looks_like_media",
    "probe",
]
