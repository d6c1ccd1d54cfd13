"""A local transcoding engine that runs one MediaConvert job's ``Settings`` for real, with PyAV.

MediaConvert has no local edition and moto does not model it, so the local world needs its own
engine to turn a source into outputs that decode and play. This module reads the same job
``Settings`` the plan Lambda sends to ``CreateJob`` and writes what MediaConvert would write, under
the same names, so the dashboard, Rekognition's stand-in and the tests get real media.

One pass: the input is demuxed and decoded once (video and the first audio stream); every output's
encoder is fed from that pass. Outputs are built in a temporary folder and handed to ``write`` only
when the whole job succeeded, so a failed job writes nothing, as with MediaConvert.

Faithful to MediaConvert:

* Output names: ``<Destination><NameModifier>.<Extension>`` for file groups,
  ``<Destination><NameModifier>.<7-digit index>.jpg`` for frame captures, and for HLS with
  ``SINGLE_DIRECTORY`` the multivariant playlist ``<Destination>.m3u8``, variant playlists
  ``<Destination><NameModifier>.m3u8`` and segments ``<Destination><NameModifier>_00001.ts``, all
  referenced by relative basenames. A ``Destination`` ending in ``/`` takes the input's file stem.
* Video: H.264 yuv420p at ``VideoDescription.Height`` (``Width`` if given, else from the rotated
  source's display aspect ratio, rounded to even), the source frame rate as a constant rate
  (``INITIALIZE_FROM_SOURCE``), ``CodecProfile`` and ``CodecLevel``, B-frames, and closed GOPs of
  ``GopSize`` (seconds or frames). In HLS groups the GOP is shortened to a divisor of
  ``SegmentLength`` so every segment starts on an IDR frame and decodes on its own.
* ``Inputs[0].VideoSelector.Rotate``: ``AUTO`` applies the display matrix (90/180/270) so outputs
  are upright; ``DEGREES_90/180/270`` rotate clockwise; anything else leaves frames as coded.
* Audio: AAC-LC at ``SampleRate``, ``Bitrate`` and the channels of ``CodingMode``, from the first
  audio stream (``DefaultSelection: DEFAULT``); outputs have no audio when the source has none.
* MP4 ``MoovPlacement: PROGRESSIVE_DOWNLOAD`` puts the ``moov`` box first (``+faststart``).
* HLS segments start at ``M3u8Settings.PtsOffset`` (``PtsOffsetMode`` ``SECONDS`` or
  ``MILLISECONDS``), as MediaConvert's do, so anything timed against them (captions'
  ``X-TIMESTAMP-MAP``) meets the offset it meets on AWS.
* Frame captures: real JPEGs at ``FramerateNumerator/FramerateDenominator`` per second from t=0,
  ``floor(duration * rate) + 1`` of them at most ``MaxCaptures``, JPEG quality ``Quality``.
* Multivariant playlist: ``BANDWIDTH`` (measured peak segment bit rate), ``AVERAGE-BANDWIDTH``,
  RFC 6381/4281 ``CODECS`` read from the encoded SPS (Main@3.0 is ``avc1.4d401e``),
  ``RESOLUTION`` (``StreamInfResolution: INCLUDE``) and ``FRAME-RATE``.
* ``OutputGroupDetails`` as ``GetJob`` answers them: per output its real ``DurationInMs`` and
  ``VideoDetails`` (``WidthInPx``, ``HeightInPx``).
* Input problems end the job with MediaConvert's error code 1010 (the code MediaConvert documents
  for inputs it cannot open, including corrupt files) and messages in MediaConvert's words:
  ``Unable to open input file [<uri>]: [Failed probe/open: [No parser found for container]]``
  (empty or not media), ``... [Failed probe/open: [Can't find a video stream]]`` (no video),
  and ``Demuxer: [ReadPacketData File read failed - end of file hit at length [<bytes>]. Is file
  truncated?]`` for a cut file: an ISO BMFF file whose top-level boxes run past the end of the file
  (``moov`` at the end, lost), or a file whose decoded media ends well before the duration its
  header declares (``moov`` first, ``mdat`` cut; a cut WebM).

Not faithful (this is a stand-in, tuned for speed on a small machine):

* Rate control: QVBR is approximated by x264's CRF (``49 - 3 * QvbrQualityLevel``: level 7 is
  CRF 28) capped by ``MaxBitrate`` through the VBV; CBR/VBR use ``Bitrate``/``MaxBitrate``.
  ``QualityTuningLevel`` (multi-pass), ``SceneChangeDetect``, ``AdaptiveQuantization``,
  ``Sharpness`` and ``ScalingBehavior`` are ignored: x264 runs at preset ``superfast``.
* Pixel aspect ratio: outputs have square pixels sized from the source's display aspect ratio.
* Variable frame rate sources are made constant by repeating or dropping frames (nearest slot);
  ``FramerateControl: SPECIFIED`` (a different output rate) raises ``NotImplementedError``.
* Rotation ignores the display matrix's mirror flag; audio that starts after the first video
  frame is delayed to match, audio that starts before it is not trimmed.
* ``PtsOffsetMode: AUTO`` (the default) starts segments at exactly 2 s, the minimum MediaConvert
  documents; the real offset also varies with the bitrate and the HRD buffer.
* Frame captures are JPEGs by Pillow (``Quality`` is Pillow's 1-100 scale, close to MediaConvert's).
* ``BANDWIDTH`` is measured from the segments (MediaConvert derives it from the encode), so it is
  much lower than ``MaxBitrate`` for the simple test clips.
* Error codes: MediaConvert documents 1010 for inputs it cannot open, including corrupt ones;
  what it answers for a file cut mid-way may be another code (1040s are input decode errors).
  This stand-in gives every input problem 1010, so the pipeline's Catch sees one shape.
* Only what this project's settings use is implemented: FILE_GROUP_SETTINGS with MP4/H_264 or
  FRAME_CAPTURE, and HLS_GROUP_SETTINGS with M3U8/H_264 + AAC in the same segments.
  Anything else raises ``NotImplementedError`` (a gap of the stand-in, not a job error).
  Timecodes, captions, input clipping, image inserts and audio normalisation are ignored.
* The variant playlists are FFmpeg's HLS muxer's (``#EXT-X-VERSION:3``, VOD, float ``EXTINF``).
"""

from __future__ import annotations

import contextlib
import math
import re
import struct
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.video.frame import PictureType, VideoFrame
from av.video.plane import VideoPlane
from av.video.stream import VideoStream
from numpy.typing import NDArray

Writer = Callable[[str, Path, str], None]

M3U8_CONTENT_TYPE = "application/vnd.apple.mpegurl"
TS_CONTENT_TYPE = "video/MP2T"
MP4_CONTENT_TYPE = "video/mp4"
JPEG_CONTENT_TYPE = "image/jpeg"

INPUT_ERROR_CODE = 1010  # MediaConvert: "File access error", also for corrupt or cut inputs
X264_PRESET = "superfast"  # CABAC and B-frames (real Main/High profiles), still fast
ENCODER_THREADS = "2"
DEFAULT_FRAME_RATE = Fraction(25)
DEFAULT_GOP_S = Fraction(2)
DEFAULT_QVBR_LEVEL = 7
DEFAULT_JPEG_QUALITY = 80
AAC_FRAME_SAMPLES = 1024
AAC_OPTIONS = {"aac_coder": "fast"}  # FFmpeg's default two-loop search is 5x slower
# A file whose decoded media ends this much before its declared duration is truncated.
TRUNCATION_TOLERANCE_S = 0.25
# Containers whose header declares the duration (rather than FFmpeg estimating it from bit rate).
DECLARED_DURATION_FORMATS = frozenset({"mov", "mp4", "matroska", "webm"})
ISO_BMFF_TOP_BOXES = frozenset(
    {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pnot", b"meta"}
)
CODING_MODE_LAYOUTS = {
    "CODING_MODE_1_0": "mono",
    "CODING_MODE_1_1": "stereo",
    "CODING_MODE_2_0": "stereo",
    "CODING_MODE_5_1": "5.1",
}
X264_PROFILES = {"BASELINE": "baseline", "MAIN": "main", "HIGH": "high"}
CLOCKWISE_ROTATIONS = {"DEGREES_90": 90, "DEGREES_180": 180, "DEGREES_270": 270}


class TranscodeError(Exception):
    """The job failed as MediaConvert reports it: ``ErrorCode`` and ``ErrorMessage`` of the job."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


def _no_parser(input_uri: str) -> TranscodeError:
    return TranscodeError(
        INPUT_ERROR_CODE,
        f"Unable to open input file [{input_uri}]: "
        "[Failed probe/open: [No parser found for container]]",
    )


def _no_video(input_uri: str) -> TranscodeError:
    return TranscodeError(
        INPUT_ERROR_CODE,
        f"Unable to open input file [{input_uri}]: "
        "[Failed probe/open: [Can't find a video stream]]",
    )


def _truncated(size: int) -> TranscodeError:
    return TranscodeError(
        INPUT_ERROR_CODE,
        f"Demuxer: [ReadPacketData File read failed - end of file hit at length [{size}]. "
        "Is file truncated?]",
    )


class _InputBroken(Exception):
    """Demuxing or decoding failed part-way; the job decides which MediaConvert error it is."""


# -- the settings, read once, before any decoding -------------------------------------------------
@dataclass(frozen=True)
class _Names:
    """Where one output group's files go: ``<directory>/<base><modifier>...``."""

    directory: str  # the destination URI up to and including the last "/"
    base: str

    @classmethod
    def parse(cls, destination: str, input_uri: str) -> _Names:
        if "/" not in destination:
            raise ValueError(f"Destination {destination!r} must be an S3 URI")
        directory, base = destination.rsplit("/", 1)
        # A destination folder takes the input's file name, as MediaConvert does.
        return cls(directory + "/", base or PurePosixPath(input_uri).stem)

    def uri(self, file_name: str) -> str:
        return self.directory + file_name


@dataclass(frozen=True)
class _AudioSpec:
    rate: int
    layout: str
    bit_rate: int

    @classmethod
    def parse(cls, output: Mapping[str, Any]) -> _AudioSpec | None:
        descriptions = output.get("AudioDescriptions") or []
        if not descriptions:
            return None
        if len(descriptions) > 1:
            raise NotImplementedError("local transcoder: one AudioDescription per output at most")
        codec = descriptions[0].get("CodecSettings", {})
        if codec.get("Codec") != "AAC":
            raise NotImplementedError(f"local transcoder: audio codec {codec.get('Codec')!r}")
        aac = codec.get("AacSettings", {})
        mode = aac.get("CodingMode", "CODING_MODE_2_0")
        if mode not in CODING_MODE_LAYOUTS:
            raise NotImplementedError(f"local transcoder: AAC CodingMode {mode!r}")
        return cls(
            rate=int(aac.get("SampleRate", 48000)),
            layout=CODING_MODE_LAYOUTS[mode],
            bit_rate=int(aac.get("Bitrate", 96000)),
        )


@dataclass(frozen=True)
class VideoSpec:
    """An output's frame size as the settings give it (None: from the source)."""

    width: int | None
    height: int | None
    h264: Mapping[str, Any] | None  # None for frame captures

    @classmethod
    def parse(cls, output: Mapping[str, Any], codec: str) -> VideoSpec:
        video = output.get("VideoDescription")
        if not isinstance(video, Mapping):
            raise NotImplementedError("local transcoder: outputs without video (audio-only)")
        codec_settings = video.get("CodecSettings", {})
        if codec_settings.get("Codec") != codec:
            raise NotImplementedError(
                f"local transcoder: video codec {codec_settings.get('Codec')!r} (expected {codec})"
            )
        return cls(
            width=video.get("Width"),
            height=video.get("Height"),
            h264=codec_settings.get("H264Settings", {}) if codec == "H_264" else None,
        )

    def size_for(self, source_width: int, source_height: int, aspect: Fraction) -> tuple[int, int]:
        """Output size: given dimensions, else by the source's display aspect ratio, even."""
        if self.width and self.height:
            return _even(self.width), _even(self.height)
        if self.height:
            return _even(self.height * aspect), _even(self.height)
        if self.width:
            return _even(self.width), _even(self.width / aspect)
        return _even(source_height * aspect), _even(source_height)


def _even(value: float | Fraction) -> int:
    return max(2, round(value / 2) * 2)


@dataclass(frozen=True)
class _Mp4Output:
    names: _Names
    modifier: str
    extension: str
    faststart: bool
    video: VideoSpec
    audio: _AudioSpec | None


@dataclass(frozen=True)
class _CaptureOutput:
    names: _Names
    modifier: str
    extension: str
    video: VideoSpec
    rate: Fraction
    max_captures: int | None
    quality: int


@dataclass(frozen=True)
class _HlsRung:
    modifier: str
    video: VideoSpec
    audio: _AudioSpec | None
    pts_offset_s: Fraction


# M3u8Settings.PtsOffsetMode AUTO: MediaConvert's "at least two seconds"; the stand-in uses the
# minimum (the real figure also depends on the bitrate and the HRD buffer).
AUTO_PTS_OFFSET_S = Fraction(2)


def _pts_offset_s(m3u8: Mapping[str, Any]) -> Fraction:
    """The first presentation timestamp of a rung's segments, as ``M3u8Settings`` set it."""
    mode = m3u8.get("PtsOffsetMode", "AUTO")
    if mode == "AUTO":
        return AUTO_PTS_OFFSET_S
    value = int(m3u8.get("PtsOffset", 2))
    if mode == "SECONDS":
        return Fraction(value)
    if mode == "MILLISECONDS":
        return Fraction(value, 1000)
    raise ValueError(f"M3u8Settings.PtsOffsetMode {mode!r} is not AUTO, SECONDS or MILLISECONDS")


@dataclass(frozen=True)
class _HlsGroup:
    names: _Names
    segment_s: int
    include_resolution: bool
    rungs: list[_HlsRung]


@dataclass(frozen=True)
class _FileGroup:
    outputs: list[_Mp4Output | _CaptureOutput]


_Group = _FileGroup | _HlsGroup


def _parse_groups(settings: Mapping[str, Any], input_uri: str) -> list[_Group]:
    groups: list[_Group] = []
    for group in settings.get("OutputGroups", []):
        group_settings = group["OutputGroupSettings"]
        kind = group_settings["Type"]
        outputs = group.get("Outputs", [])
        if kind == "FILE_GROUP_SETTINGS":
            names = _Names.parse(group_settings["FileGroupSettings"]["Destination"], input_uri)
            groups.append(_FileGroup([_parse_file_output(names, output) for output in outputs]))
        elif kind == "HLS_GROUP_SETTINGS":
            hls = group_settings["HlsGroupSettings"]
            structure = hls.get("DirectoryStructure", "SINGLE_DIRECTORY")
            if structure != "SINGLE_DIRECTORY":
                raise NotImplementedError(f"local transcoder: HLS DirectoryStructure {structure}")
            if hls.get("SegmentControl", "SEGMENTED_FILES") != "SEGMENTED_FILES":
                raise NotImplementedError("local transcoder: HLS SegmentControl SINGLE_FILE")
            rungs = []
            for output in outputs:
                container_settings = output.get("ContainerSettings", {})
                container = container_settings.get("Container", "M3U8")
                if container != "M3U8":
                    raise NotImplementedError(f"local transcoder: HLS container {container}")
                rungs.append(
                    _HlsRung(
                        modifier=output.get("NameModifier", ""),
                        video=VideoSpec.parse(output, "H_264"),
                        audio=_AudioSpec.parse(output),
                        pts_offset_s=_pts_offset_s(container_settings.get("M3u8Settings", {})),
                    )
                )
            groups.append(
                _HlsGroup(
                    names=_Names.parse(hls["Destination"], input_uri),
                    segment_s=int(hls.get("SegmentLength", 10)),
                    include_resolution=hls.get("StreamInfResolution", "INCLUDE") == "INCLUDE",
                    rungs=rungs,
                )
            )
        else:
            raise NotImplementedError(f"local transcoder: output group type {kind}")
    return groups


def _parse_file_output(names: _Names, output: Mapping[str, Any]) -> _Mp4Output | _CaptureOutput:
    modifier = output.get("NameModifier", "")
    codec = output.get("VideoDescription", {}).get("CodecSettings", {}).get("Codec")
    if codec == "FRAME_CAPTURE":
        capture = output["VideoDescription"]["CodecSettings"].get("FrameCaptureSettings", {})
        max_captures = capture.get("MaxCaptures")
        return _CaptureOutput(
            names=names,
            modifier=modifier,
            extension=output.get("Extension", "jpg"),
            video=VideoSpec.parse(output, "FRAME_CAPTURE"),
            rate=Fraction(
                int(capture.get("FramerateNumerator", 1)),
                int(capture.get("FramerateDenominator", 1)),
            ),
            max_captures=int(max_captures) if max_captures else None,
            quality=int(capture.get("Quality", DEFAULT_JPEG_QUALITY)),
        )
    container_settings = output.get("ContainerSettings", {})
    container = container_settings.get("Container")
    if container != "MP4":
        raise NotImplementedError(f"local transcoder: file output container {container!r}")
    moov = container_settings.get("Mp4Settings", {}).get("MoovPlacement", "PROGRESSIVE_DOWNLOAD")
    return _Mp4Output(
        names=names,
        modifier=modifier,
        extension=output.get("Extension", "mp4"),
        faststart=moov == "PROGRESSIVE_DOWNLOAD",
        video=VideoSpec.parse(output, "H_264"),
        audio=_AudioSpec.parse(output),
    )


# -- the input -------------------------------------------------------------------------------------
def _iso_bmff_runs_past_end(path: Path) -> bool:
    """An ISO BMFF (MP4/MOV) file whose top-level boxes claim more bytes than the file holds."""
    size = path.stat().st_size
    with path.open("rb") as file:
        offset = 0
        first = True
        while offset + 8 <= size:
            file.seek(offset)
            header = file.read(16)
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if first and box_type not in ISO_BMFF_TOP_BOXES:
                return False
            first = False
            if box_size == 1 and len(header) == 16:
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:  # the box runs to the end of the file
                return False
            if box_size < 8:
                return False
            offset += box_size
        return not first and offset > size


@dataclass
class _Source:
    container: InputContainer
    video: VideoStream
    audio: AudioStream | None
    frame_rate: Fraction
    start_s: float
    declared_s: float | None
    size: int


def _open_source(input_path: Path, input_uri: str) -> _Source:
    size = input_path.stat().st_size
    if size == 0:
        raise _no_parser(input_uri)
    try:
        container = av.open(str(input_path), "r")
    except av.FFmpegError:
        if _iso_bmff_runs_past_end(input_path):
            raise _truncated(size) from None
        raise _no_parser(input_uri) from None
    if not container.streams.video:
        container.close()
        raise _no_video(input_uri)
    video = container.streams.video[0]
    video.thread_type = "AUTO"
    audio = container.streams.audio[0] if container.streams.audio else None
    rate = video.average_rate or video.guessed_rate or DEFAULT_FRAME_RATE
    formats = set(container.format.name.split(","))
    declared = container.duration / av.time_base if container.duration else None
    return _Source(
        container=container,
        video=video,
        audio=audio,
        frame_rate=Fraction(rate).limit_denominator(100000),
        start_s=(container.start_time or 0) / av.time_base,
        declared_s=declared if formats & DECLARED_DURATION_FORMATS else None,
        size=size,
    )


def _decoded_frames(source: _Source) -> Iterator[VideoFrame | AudioFrame]:
    """Every frame of the video and first audio stream, in file order (one demux pass)."""
    streams: list[VideoStream | AudioStream] = [source.video]
    if source.audio is not None:
        streams.append(source.audio)
    packets = source.container.demux(*streams)
    while True:
        try:
            packet = next(packets, None)
            if packet is None:
                return
            frames = packet.decode()
        except av.FFmpegError as error:
            raise _InputBroken(str(error)) from error
        for frame in frames:
            if isinstance(frame, VideoFrame | AudioFrame):
                yield frame


def _rotation_of(frame: VideoFrame, rotate: str) -> int:
    """Counter-clockwise quarter turns that make a frame upright, per ``VideoSelector.Rotate``."""
    if rotate == "AUTO":
        # The display matrix's angle, counter-clockwise, as FFmpeg's autorotate applies it.
        return round(frame.rotation / 90) % 4
    return (-CLOCKWISE_ROTATIONS.get(rotate, 0) // 90) % 4


def _plane_pixels(plane: VideoPlane) -> NDArray[np.uint8]:
    size = plane.line_size * plane.height
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8, count=size)
    rows = rows.reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def _rotated(frame: VideoFrame, quarter_turns: int) -> VideoFrame:
    """The frame turned counter-clockwise, as yuv420p (each plane turned; no RGB round trip)."""
    if quarter_turns == 0:
        return frame
    if frame.width % 2 or frame.height % 2:
        pixels: NDArray[np.uint8] = np.ascontiguousarray(
            np.rot90(frame.to_ndarray(format="rgb24"), quarter_turns)
        )
        upright = VideoFrame.from_ndarray(pixels, format="rgb24")
    else:
        yuv = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
        planes = [np.rot90(_plane_pixels(plane), quarter_turns) for plane in yuv.planes]
        height, width = planes[0].shape
        # PyAV's yuv420p array layout: the three planes back to back, ``width`` bytes a row.
        data = np.concatenate([plane.ravel() for plane in planes]).reshape(height * 3 // 2, width)
        upright = VideoFrame.from_ndarray(data, format="yuv420p")
    upright.pts = frame.pts
    upright.time_base = frame.time_base
    return upright


class _Picture:
    """One upright source frame and its scaled copies (scaled once per size, shared by outputs)."""

    def __init__(self, frame: VideoFrame) -> None:
        self.frame = frame
        self._sizes: dict[tuple[int, int], VideoFrame] = {}

    def at(self, width: int, height: int) -> VideoFrame:
        frame = self.frame
        if (width, height) == (frame.width, frame.height) and frame.format.name == "yuv420p":
            return frame
        if (width, height) not in self._sizes:
            self._sizes[width, height] = frame.reformat(
                width, height, format="yuv420p", interpolation="BILINEAR"
            )
        return self._sizes[width, height]


# -- encoders --------------------------------------------------------------------------------------
def _avc_codec_string(data: bytes | None) -> str | None:
    """``avc1.PPCCLL`` (RFC 6381) from an SPS in Annex B data or from an ``avcC`` record."""
    if not data:
        return None
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 7 <= len(data):
        if data[start + 3] & 0x1F == 7:  # sequence parameter set
            return "avc1." + data[start + 4 : start + 7].hex()
        start = data.find(b"\x00\x00\x01", start + 3)
    if data[0] == 1 and len(data) >= 4:  # avcC: version, profile, compatibility, level
        return "avc1." + data[1:4].hex()
    return None


def _gop_seconds(h264: Mapping[str, Any], frame_rate: Fraction, segment_s: int | None) -> Fraction:
    """The GOP length in seconds, exact; in HLS a divisor of the segment length."""
    size = Fraction(str(h264.get("GopSize") or 0))
    units = h264.get("GopSizeUnits", "FRAMES")
    if size <= 0 or units == "AUTO":
        gop_s = DEFAULT_GOP_S
    elif units == "SECONDS":
        gop_s = size
    else:
        gop_s = size / frame_rate
    if segment_s:
        # Keyframes on every segment boundary: whole GOPs per segment.
        gop_s = Fraction(segment_s, math.ceil(segment_s / gop_s))
    return gop_s


def _x264_options(h264: Mapping[str, Any], frame_rate: Fraction, gop_s: Fraction) -> dict[str, str]:
    if h264.get("FramerateControl", "INITIALIZE_FROM_SOURCE") != "INITIALIZE_FROM_SOURCE":
        raise NotImplementedError("local transcoder: FramerateControl other than from source")
    keyint = math.ceil(gop_s * frame_rate) + 1  # x264 never gets there: the forced IDRs come first
    params = [f"keyint={keyint}", "scenecut=0", "open-gop=0"]
    if "NumberBFramesBetweenReferenceFrames" in h264:
        params.append(f"bframes={int(h264['NumberBFramesBetweenReferenceFrames'])}")
    options = {"preset": X264_PRESET, "threads": ENCODER_THREADS, "x264-params": ":".join(params)}
    profile = X264_PROFILES.get(str(h264.get("CodecProfile", "MAIN")).split("_")[0])
    if profile:
        options["profile"] = profile
    level = h264.get("CodecLevel", "AUTO")
    if match := re.fullmatch(r"LEVEL_(\d)(?:_(\d))?", str(level)):
        options["level"] = f"{match[1]}.{match[2] or 0}"
    max_bitrate = h264.get("MaxBitrate")
    if h264.get("RateControlMode", "QVBR") == "QVBR":
        level_q = int(h264.get("QvbrSettings", {}).get("QvbrQualityLevel", DEFAULT_QVBR_LEVEL))
        options["crf"] = str(max(0, 49 - 3 * level_q))
    else:
        options["b"] = str(int(h264.get("Bitrate") or max_bitrate or 1_000_000))
        max_bitrate = max_bitrate or h264.get("Bitrate")
    if max_bitrate:
        options["maxrate"] = str(int(max_bitrate))
        options["bufsize"] = str(int(h264.get("HrdBufferSize") or 2 * int(max_bitrate)))
    return options


class _H264Sink:
    """One H.264 (+ AAC) output in one container: an MP4 file or one HLS variant."""

    def __init__(
        self,
        *,
        container: OutputContainer,
        h264: Mapping[str, Any],
        size: tuple[int, int],
        frame_rate: Fraction,
        audio: _AudioSpec | None,
        segment_s: int | None,
        language: str | None = None,
    ) -> None:
        self.container = container
        self.frame_rate = frame_rate
        self.width, self.height = size
        self.gop_s = _gop_seconds(h264, frame_rate, segment_s)
        self.video = container.add_stream(
            "libx264", rate=frame_rate, options=_x264_options(h264, frame_rate, self.gop_s)
        )
        self.video.width, self.video.height = size
        self.video.pix_fmt = "yuv420p"
        self.audio: AudioStream | None = None
        self.resampler: AudioResampler | None = None
        if audio is not None:
            self.audio = container.add_stream("aac", rate=audio.rate, options=AAC_OPTIONS)
            self.audio.layout = audio.layout
            self.audio.bit_rate = audio.bit_rate
            if language:
                # MediaConvert's audio language follows the input's by default.
                self.audio.metadata["language"] = language
            self.resampler = AudioResampler(
                format="fltp", layout=audio.layout, rate=audio.rate, frame_size=AAC_FRAME_SAMPLES
            )
        self.frames = 0
        self.samples = 0
        self.last_gop = -1
        self.codec_string: str | None = None

    def add_video(self, picture: _Picture, slot: int) -> None:
        # Shared with other outputs: the encoder copies the picture, with these fields, at once.
        out = picture.at(self.width, self.height)
        out.pts = slot
        out.time_base = 1 / self.frame_rate
        gop = math.floor(slot / self.frame_rate / self.gop_s)
        # Decoded frames carry the source's picture types: always say what this output wants.
        out.pict_type = PictureType.I if gop != self.last_gop else PictureType.NONE
        self.last_gop = gop
        self._mux(self.video.encode(out))
        self.frames += 1

    def add_audio(self, frame: AudioFrame | None, *, offset_s: float = 0.0) -> None:
        """Audio, in order; ``offset_s``: how late the first frame starts after the video."""
        if self.audio is None or self.resampler is None:
            return
        if self.samples == 0 and offset_s > 0:
            self.samples = round(offset_s * self.audio.rate)
        for chunk in self.resampler.resample(frame):
            chunk.pts = self.samples
            chunk.time_base = Fraction(1, chunk.sample_rate)
            self.samples += chunk.samples
            self._mux(self.audio.encode(chunk))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            if self.codec_string is None and packet.stream is self.video:
                self.codec_string = _avc_codec_string(
                    self.video.codec_context.extradata
                ) or _avc_codec_string(bytes(packet))
            self.container.mux(packet)

    def close(self) -> None:
        self.add_audio(None)
        self._mux(self.video.encode(None))
        if self.audio is not None:
            self._mux(self.audio.encode(None))
        self.container.close()

    @property
    def duration_ms(self) -> int:
        return round(self.frames * 1000 / self.frame_rate)

    @property
    def codecs(self) -> str:
        codecs = [self.codec_string or "avc1.4d401e"]
        if self.audio is not None and self.samples:
            codecs.append("mp4a.40.2")
        return ",".join(codecs)


class _CaptureSink:
    """Frame captures: JPEG stills at a fixed rate from t=0."""

    def __init__(
        self, *, spec: _CaptureOutput, folder: Path, size: tuple[int, int], frame_rate: Fraction
    ) -> None:
        self.spec = spec
        self.folder = folder
        self.width, self.height = size
        self.frame_rate = frame_rate
        self.files: list[Path] = []
        self.last: _Picture | None = None

    def _due(self, at: Fraction) -> bool:
        limit = self.spec.max_captures
        if limit is not None and len(self.files) >= limit:
            return False
        return len(self.files) / self.spec.rate <= at

    def _capture(self, picture: _Picture) -> None:
        name = f"{self.spec.names.base}{self.spec.modifier}.{len(self.files):07d}"
        path = self.folder / f"{name}.{self.spec.extension}"
        image = picture.at(self.width, self.height).to_image()
        image.save(path, "JPEG", quality=self.spec.quality)
        self.files.append(path)

    def add_video(self, picture: _Picture, slot: int) -> None:
        # The frame nearest each capture time: this one, if the time falls within its half-slot.
        while self._due((slot + Fraction(1, 2)) / self.frame_rate):
            self._capture(picture)
        self.last = picture

    def close(self, duration: Fraction) -> None:
        # Capture times up to the end of the clip that no frame reached take the last frame.
        while self.last is not None and self._due(duration):
            self._capture(self.last)


# -- the job ---------------------------------------------------------------------------------------
@dataclass
class _Result:
    files: list[tuple[str, Path, str]] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)


def _output_details(duration_ms: int, width: int, height: int) -> dict[str, Any]:
    return {"DurationInMs": duration_ms, "VideoDetails": {"WidthInPx": width, "HeightInPx": height}}


class _Job:
    def __init__(self, groups: list[_Group], source: _Source, rotate: str, work: Path) -> None:
        self.groups = groups
        self.source = source
        self.rotate = rotate
        self.work = work
        self.frame_rate = source.frame_rate
        self.started = False
        self.pending_audio: list[AudioFrame] = []
        self.h264: list[_H264Sink] = []
        self.captures: list[_CaptureSink] = []
        self.video_sinks: list[_H264Sink | _CaptureSink] = []
        # Per group: its settings, a sink per output, the folder of its files.
        self.built: list[tuple[_Group, list[_H264Sink | _CaptureSink], Path]] = []
        self.origin: float | None = None
        self.next_slot = 0
        self.last: _Picture | None = None
        self.audio_end_s = 0.0

    # feeding
    def run(self) -> None:
        for frame in _decoded_frames(self.source):
            if isinstance(frame, VideoFrame):
                self._video(frame)
            else:
                self._audio(frame)

    def _start(self, upright: VideoFrame, quarter_turns: int) -> None:
        sar = self.source.video.sample_aspect_ratio or Fraction(1)
        if quarter_turns % 2:  # turned a quarter: the pixel aspect ratio turns too
            sar = 1 / sar
        aspect = Fraction(upright.width, upright.height) * sar
        for index, group in enumerate(self.groups):
            folder = self.work / f"group{index}"
            folder.mkdir()
            sinks: list[_H264Sink | _CaptureSink] = []
            if isinstance(group, _HlsGroup):
                for rung in group.rungs:
                    name = f"{group.names.base}{rung.modifier}"
                    options = {
                        "hls_time": str(group.segment_s),
                        "hls_playlist_type": "vod",
                        "hls_list_size": "0",
                        "start_number": "1",
                        "hls_segment_type": "mpegts",
                        "hls_segment_filename": str(folder / f"{name}_%05d.ts"),
                        # FFmpeg's mpegts muxer starts at 0 through the API; MediaConvert's
                        # segments start at the PTS offset, which captions must be mapped to.
                        "output_ts_offset": str(float(rung.pts_offset_s)),
                    }
                    container = av.open(
                        str(folder / f"{name}.m3u8"), "w", format="hls", options=options
                    )
                    sinks.append(self._h264_sink(container, rung, aspect, upright, group.segment_s))
            else:
                for output in group.outputs:
                    size = output.video.size_for(upright.width, upright.height, aspect)
                    if isinstance(output, _CaptureOutput):
                        sink = _CaptureSink(
                            spec=output, folder=folder, size=size, frame_rate=self.frame_rate
                        )
                        self.captures.append(sink)
                        sinks.append(sink)
                        continue
                    path = folder / f"{output.names.base}{output.modifier}.{output.extension}"
                    options = {"movflags": "+faststart"} if output.faststart else {}
                    container = av.open(str(path), "w", format="mp4", options=options)
                    sinks.append(self._h264_sink(container, output, aspect, upright, None))
            self.built.append((group, sinks, folder))
        self.video_sinks = [*self.h264, *self.captures]
        self.started = True
        for frame in self.pending_audio:
            self._audio(frame)
        self.pending_audio.clear()

    def _h264_sink(
        self,
        container: OutputContainer,
        output: _Mp4Output | _HlsRung,
        aspect: Fraction,
        upright: VideoFrame,
        segment_s: int | None,
    ) -> _H264Sink:
        sink = _H264Sink(
            container=container,
            h264=output.video.h264 or {},
            size=output.video.size_for(upright.width, upright.height, aspect),
            frame_rate=self.frame_rate,
            audio=output.audio if self.source.audio is not None else None,
            segment_s=segment_s,
            language=self.source.audio.metadata.get("language")
            if self.source.audio is not None
            else None,
        )
        self.h264.append(sink)
        return sink

    def _video(self, frame: VideoFrame) -> None:
        quarter_turns = _rotation_of(frame, self.rotate)
        upright = _rotated(frame, quarter_turns)
        time = frame.time
        if self.origin is None and time is not None:
            self.origin = time
        if not self.started:
            self._start(upright, quarter_turns)
        picture = _Picture(upright)
        if time is None or self.origin is None:
            slot = self.next_slot
        else:
            slot = round((time - self.origin) * self.frame_rate)
        if slot < self.next_slot:  # faster than the output rate: drop
            return
        while self.next_slot < slot and self.last is not None:  # a gap: repeat the last frame
            self._emit(self.last, self.next_slot)
        self._emit(picture, slot)
        self.last = picture

    def _emit(self, picture: _Picture, slot: int) -> None:
        for sink in self.video_sinks:
            sink.add_video(picture, slot)
        self.next_slot = slot + 1

    def _audio(self, frame: AudioFrame) -> None:
        if not self.started:
            self.pending_audio.append(frame)
            return
        offset_s = 0.0
        if frame.time is not None:
            if self.audio_end_s == 0.0 and self.origin is not None:
                offset_s = frame.time - self.origin  # audio that starts late stays in sync
            self.audio_end_s = max(self.audio_end_s, frame.time + frame.samples / frame.sample_rate)
        for sink in self.h264:
            sink.add_audio(frame, offset_s=offset_s)

    # checking and finishing
    def abandon(self) -> None:
        """Close every output of a failed job (its files go with the temporary folder)."""
        for sink in self.h264:
            with contextlib.suppress(av.FFmpegError):
                sink.container.close()

    def decoded_end_s(self) -> float:
        start = self.source.start_s
        video_end = (self.origin or start) + self.next_slot / self.frame_rate
        return max(float(video_end), self.audio_end_s) - start

    def finish(self) -> _Result:
        duration = Fraction(self.next_slot) / self.frame_rate
        for h264_sink in self.h264:
            h264_sink.close()
        for capture in self.captures:
            capture.close(duration)
        result = _Result()
        for group, sinks, folder in self.built:
            if isinstance(group, _HlsGroup):
                self._finish_hls(group, sinks, folder, result)
                continue
            outputs = []
            for output, sink in zip(group.outputs, sinks, strict=True):
                if isinstance(sink, _CaptureSink):
                    for path in sink.files:
                        result.files.append((output.names.uri(path.name), path, JPEG_CONTENT_TYPE))
                    duration_ms = round(duration * 1000)
                else:
                    path = folder / f"{output.names.base}{output.modifier}.{output.extension}"
                    result.files.append((output.names.uri(path.name), path, MP4_CONTENT_TYPE))
                    duration_ms = sink.duration_ms
                outputs.append(_output_details(duration_ms, sink.width, sink.height))
            result.details.append({"OutputDetails": outputs})
        return result

    def _finish_hls(
        self, group: _HlsGroup, sinks: list[_H264Sink | _CaptureSink], folder: Path, result: _Result
    ) -> None:
        names = group.names
        master = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
        outputs = []
        rung_sinks = [sink for sink in sinks if isinstance(sink, _H264Sink)]
        for rung, sink in zip(group.rungs, rung_sinks, strict=True):
            playlist = folder / f"{names.base}{rung.modifier}.m3u8"
            segments = _playlist_segments(playlist.read_text(encoding="utf-8"))
            total_bits = 0
            peak = 0
            for segment, seconds in segments:
                bits = (folder / segment).stat().st_size * 8
                total_bits += bits
                peak = max(peak, math.ceil(bits / max(seconds, 1e-3)))
                result.files.append((names.uri(segment), folder / segment, TS_CONTENT_TYPE))
            result.files.append((names.uri(playlist.name), playlist, M3U8_CONTENT_TYPE))
            seconds_total = sum(seconds for _, seconds in segments) or 1.0
            attributes = [
                f"BANDWIDTH={peak}",
                f"AVERAGE-BANDWIDTH={math.ceil(total_bits / seconds_total)}",
                f'CODECS="{sink.codecs}"',
            ]
            if group.include_resolution:
                attributes.append(f"RESOLUTION={sink.width}x{sink.height}")
            attributes.append(f"FRAME-RATE={float(self.frame_rate):.3f}")
            master += ["#EXT-X-STREAM-INF:" + ",".join(attributes), playlist.name]
            outputs.append(_output_details(sink.duration_ms, sink.width, sink.height))
        master_path = folder / f"{names.base}.m3u8"
        master_path.write_text("\n".join(master) + "\n", encoding="utf-8")
        # The multivariant playlist last: whoever finds it finds everything it names.
        result.files.append((names.uri(master_path.name), master_path, M3U8_CONTENT_TYPE))
        result.details.append({"OutputDetails": outputs})


def _playlist_segments(text: str) -> list[tuple[str, float]]:
    """``(segment URI, EXTINF seconds)`` of a media playlist."""
    segments: list[tuple[str, float]] = []
    seconds: float | None = None
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line.startswith("#EXTINF:"):
            seconds = float(line[len("#EXTINF:") :].split(",", 1)[0])
        elif line and not line.startswith("#") and seconds is not None:
            segments.append((line, seconds))
            seconds = None
    return segments


def transcode(
    settings: Mapping[str, Any], input_path: Path, *, input_uri: str, write: Writer
) -> list[dict[str, Any]]:
    """Run one job's Settings on a local input file; ``write(uri, local_file, content_type)`` each
    output at the S3 URI MediaConvert would use; return OutputGroupDetails as GetJob answers them.

    ``write`` is called only once the whole job has succeeded, segments and variant playlists
    before the multivariant playlist; each local file is deleted when ``transcode`` returns.
    Raises ``TranscodeError`` (MediaConvert's job ``ErrorCode``/``ErrorMessage``) for an input it
    cannot read, having written nothing, and ``NotImplementedError`` for settings this stand-in
    does not implement.
    """
    groups = _parse_groups(settings, input_uri)
    inputs = settings.get("Inputs") or [{}]
    rotate = str(inputs[0].get("VideoSelector", {}).get("Rotate", "DEGREE_0"))
    source = _open_source(Path(input_path), input_uri)
    with tempfile.TemporaryDirectory(prefix="transcode-") as work:
        job = _Job(groups, source, rotate, Path(work))
        try:
            job.run()
        except _InputBroken as error:
            job.abandon()
            if _cut_short(job, source):
                raise _truncated(source.size) from None
            raise TranscodeError(
                INPUT_ERROR_CODE, f"Unable to decode input file [{input_uri}]: [{error}]"
            ) from None
        except BaseException:
            job.abandon()
            raise
        finally:
            source.container.close()
        if _cut_short(job, source):
            job.abandon()
            raise _truncated(source.size)
        if not job.started:
            raise _no_video(input_uri)
        result = job.finish()
        for uri, path, content_type in result.files:
            write(uri, path, content_type)
    return result.details


def _cut_short(job: _Job, source: _Source) -> bool:
    if source.declared_s is None:
        return False
    return job.decoded_end_s() < source.declared_s - TRUNCATION_TOLERANCE_S
