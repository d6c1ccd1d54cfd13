"""Captions in the HLS presentation: Transcribe's WebVTT as a SUBTITLES rendition group.

MediaConvert writes the multivariant playlist before the speech branch has a transcript, so
finalize adds the captions afterwards: a subtitle media playlist (RFC 8216 4.3.3: one WebVTT
segment, the VTT file Transcribe wrote, referenced relatively) and, in the multivariant
playlist, one ``EXT-X-MEDIA:TYPE=SUBTITLES`` line with every ``EXT-X-STREAM-INF`` naming its
group (4.3.4.1, 4.3.4.2). Players (Safari, hls.js, Shaka, Video.js) then offer the captions.

Hand-written rather than with the ``m3u8`` package: the edit is two kinds of line in a playlist
MediaConvert generated, and keeping every other line byte for byte (MediaConvert's attribute
order, its tags this module does not know) is simpler to guarantee by not re-serialising.

The VTT is checked before the playlist is touched (a header, cue timings that parse, a start
not after its end), so a file that would make a player drop the presentation is never
referenced. Transcribe's cue times count from the start of the media, but HLS players place
cues on the segments' MPEG-TS clock, and a VTT without ``X-TIMESTAMP-MAP`` means "cue time 0 is
MPEG-TS time 0" (RFC 8216 3.5; hls.js does exactly that). MediaConvert's segments start later
(its automatic PTS offset is "at least two seconds", varying with the bitrate and HRD buffer),
so captions would be early by that much or dropped. The presentation therefore gets its own
copy of the VTT, beside the playlists, whose header maps cue time 0 to the first presentation
timestamp read from the first segment (``first_pts``: a few PES headers of the first 64 KiB,
hand-read because the transport-stream header is six fields and no layer library is needed for
it). A segment whose start cannot be read (not MPEG-TS, gone) leaves the captions unreferenced.

Applying it again (a reprocess) replaces the group instead of adding a second one; a run whose
speech has no captions removes the group, so the playlist never names a file that is not there.
"""

from __future__ import annotations

import math
import posixpath
import re
from dataclasses import dataclass

GROUP_ID = "subs"
# How much of the first segment is read for its first timestamps (PAT, PMT, the first PES of
# each stream: a few packets; 64 KiB leaves room for a large first video frame's neighbours).
FIRST_SEGMENT_BYTES = 65536
_TS_PACKET = 188
_TS_SYNC = 0x47
_TIMING = re.compile(
    r"^(?P<start>(?:\d{2,}:)?[0-5]\d:[0-5]\d\.\d{3})[ \t]+-->[ \t]+"
    r"(?P<end>(?:\d{2,}:)?[0-5]\d:[0-5]\d\.\d{3})(?:[ \t].*)?$"
)
_MEDIA_LINE = re.compile(r'^#EXT-X-MEDIA:.*TYPE=SUBTITLES.*GROUP-ID="' + GROUP_ID + '"')
_GROUP_ATTRIBUTE = re.compile(r',SUBTITLES="' + GROUP_ID + '"')


class CaptionError(ValueError):
    """The captions cannot be referenced; the message says why (it goes into labels.json)."""


@dataclass(frozen=True)
class Cues:
    count: int
    end_s: float


def _seconds(stamp: str) -> float:
    parts = [float(part) for part in stamp.split(":")]
    hours = parts[0] if len(parts) == 3 else 0.0
    minutes, seconds = parts[-2], parts[-1]
    return hours * 3600 + minutes * 60 + seconds


def check_vtt(body: bytes) -> Cues:
    """The cues of a WebVTT file, or ``CaptionError`` naming the first thing wrong with it."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CaptionError(f"the VTT is not UTF-8 (byte {err.start})") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or not (lines[0] == "WEBVTT" or lines[0].startswith(("WEBVTT ", "WEBVTT\t"))):
        raise CaptionError("the VTT does not start with WEBVTT")
    count, end = 0, 0.0
    for number, line in enumerate(lines, start=1):
        if "-->" not in line:
            continue
        timing = _TIMING.match(line.strip())
        if timing is None:
            raise CaptionError(f"line {number} of the VTT is not a cue timing: {line.strip()!r}")
        start_s, end_s = _seconds(timing["start"]), _seconds(timing["end"])
        if end_s < start_s:
            raise CaptionError(f"line {number} of the VTT ends before it starts")
        count += 1
        end = max(end, end_s)
    if count == 0:
        raise CaptionError("the VTT has no cues")
    return Cues(count, end)


def subtitles_key(playlist_key: str, language: str) -> str:
    """Where the subtitle media playlist goes: beside the multivariant playlist."""
    stem = posixpath.splitext(posixpath.basename(playlist_key))[0]
    return posixpath.join(posixpath.dirname(playlist_key), f"{stem}_captions_{language}.m3u8")


def relative(from_key: str, to_key: str) -> str:
    """``to_key`` as a URI relative to the playlist at ``from_key`` (RFC 3986 resolution)."""
    return posixpath.relpath(to_key, posixpath.dirname(from_key) or ".")


def media_playlist(subtitles_key: str, vtt_key: str, duration_s: float) -> str:
    """A VOD subtitle playlist whose one segment is the whole VTT, as long as the clip."""
    length = max(duration_s, 0.001)
    return (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        f"#EXT-X-TARGETDURATION:{math.ceil(length)}\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:{length:.3f},\n"
        f"{relative(subtitles_key, vtt_key)}\n"
        "#EXT-X-ENDLIST\n"
    )


def _quoted(value: str) -> str:
    # RFC 8216 4.2: a quoted-string cannot hold a double quote or a line break.
    return re.sub(r'["\r\n]', "", value)


def without_subtitles(playlist: str) -> str:
    """The multivariant playlist without this module's group (other groups are kept)."""
    lines = [line for line in playlist.split("\n") if not _MEDIA_LINE.match(line)]
    return "\n".join(
        _GROUP_ATTRIBUTE.sub("", line) if line.startswith("#EXT-X-STREAM-INF:") else line
        for line in lines
    )


def with_subtitles(playlist: str, *, uri: str, language: str, name: str) -> str:
    """The multivariant playlist with one SUBTITLES group, named by every variant."""
    if not playlist.startswith("#EXTM3U"):
        raise CaptionError("the HLS playlist does not start with #EXTM3U")
    lines = without_subtitles(playlist).split("\n")
    variants = [i for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF:")]
    if not variants:
        raise CaptionError("the HLS playlist lists no variant streams")
    media = (
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{GROUP_ID}",NAME="{_quoted(name)}",'
        f'LANGUAGE="{_quoted(language)}",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,'
        f'URI="{_quoted(uri)}"'
    )
    for index in variants:
        lines[index] += f',SUBTITLES="{GROUP_ID}"'
    lines.insert(variants[0], media)
    return "\n".join(lines)


def first_pts(segment: bytes) -> int | None:
    """The earliest PTS (90 kHz) among the audio and video PES headers in the start of an
    MPEG-TS segment; None when it is not a transport stream or carries no timestamp there."""
    earliest: int | None = None
    for offset in range(0, len(segment) - _TS_PACKET + 1, _TS_PACKET):
        packet = segment[offset : offset + _TS_PACKET]
        if packet[0] != _TS_SYNC:
            return earliest  # not (or no longer) a transport stream
        if not packet[1] & 0x40:  # payload_unit_start_indicator: a PES header starts here
            continue
        control = (packet[3] >> 4) & 0x3
        start = 4
        if control & 0x2:
            start = 5 + packet[4]
        if not control & 0x1 or start + 14 > _TS_PACKET:
            continue
        pes = packet[start:]
        is_media = 0xC0 <= pes[3] <= 0xEF  # audio (0xC0-0xDF) and video (0xE0-0xEF) streams
        if pes[:3] != b"\x00\x00\x01" or not is_media or not pes[7] & 0x80:
            continue
        pts = (
            ((pes[9] >> 1) & 0x07) << 30
            | pes[10] << 22
            | (pes[11] >> 1) << 15
            | pes[12] << 7
            | pes[13] >> 1
        )
        earliest = pts if earliest is None else min(earliest, pts)
    return earliest


def with_timestamp_map(vtt: bytes, pts: int) -> str:
    """The VTT with a header mapping cue time 0 to MPEG-TS time ``pts`` (an existing map kept)."""
    text = vtt.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    header, _, rest = text.partition("\n")
    if "X-TIMESTAMP-MAP=" in text.split("\n\n", 1)[0]:
        return text
    return f"{header}\nX-TIMESTAMP-MAP=MPEGTS:{pts},LOCAL:00:00:00.000\n{rest}"


def captions_vtt_key(subtitles_key: str) -> str:
    """The presentation's copy of the VTT: beside its subtitle playlist, same stem."""
    return posixpath.splitext(subtitles_key)[0] + ".vtt"


def resolve(from_key: str, uri: str) -> str:
    """The object key a relative playlist URI names (RFC 3986, as a player resolves it)."""
    if "://" in uri or uri.startswith("/") or "?" in uri:
        raise CaptionError(f"the playlist names {uri!r}, not a key relative to it")
    return posixpath.normpath(posixpath.join(posixpath.dirname(from_key), uri))


def uris(playlist: str) -> list[str]:
    """The URI lines of a playlist (variants of a multivariant one, segments of a media one)."""
    return [line.strip() for line in playlist.splitlines() if line.strip() and line[0] != "#"]
