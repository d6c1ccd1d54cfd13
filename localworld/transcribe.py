"""An Amazon Transcribe stand-in for moto: batch transcription jobs that listen to the clip.

moto's Transcribe completes a job the moment it starts, with a fixed transcript it never writes,
and checks almost nothing of the request. ``install()`` replaces its ``StartTranscriptionJob``,
``GetTranscriptionJob``, ``ListTranscriptionJobs`` and ``DeleteTranscriptionJob`` (so handlers'
own boto3 clients reach this stand-in, exactly as they would reach AWS) with
``TranscribeStandIn``, while a world has one active (``activate``); otherwise moto answers.

Requests, as the service checks them:

* Every request is checked against botocore's ``transcribe`` model: ``ParamValidator`` (names,
  types, required members, minimums) and then what botocore leaves to the service (patterns,
  enums, maximum lengths and values), answered as the service's validation layer words it
  (``BadRequestException``: "1 validation error detected: Value 'x' at 'media.mediaFileUri'
  failed to satisfy constraint: ..."). Every answer goes through ``localworld.shapes``.
* Then the rules the API reference states: exactly one of ``LanguageCode``, ``IdentifyLanguage``
  and ``IdentifyMultipleLanguages`` ("Don't specify a value for the LanguageCode parameter [with
  IdentifyLanguage]. Doing so generates a BadRequestException error."); ``LanguageOptions`` only
  with identification, with two or more distinct codes; ``OutputKey`` only with
  ``OutputBucketName``; the media an object in an S3 bucket of this world ("The URI that you
  provided doesn't point to an S3 object..."). A duplicate name is ``ConflictException`` ("The
  requested job name already exists. Use a different job name."); an unknown name in Get is
  ``NotFoundException``; Delete of an unknown or unfinished job is ``BadRequestException`` (the
  model's words for it: the entity "doesn't exist or ... it's in a non-terminal state").
* Permissions, as Transcribe applies them: without ``JobExecutionSettings.DataAccessRoleArn`` it
  reads the media and writes the output with the *caller's* permissions (a forward access
  session), so the caller's role needs ``s3:GetObject`` on the media (and S3's ``kms:Decrypt`` of
  its key) and ``s3:PutObject`` on every output object (and ``kms:GenerateDataKey`` of
  ``OutputEncryptionKMSKeyId``, else of the bucket's default key), evaluated by
  ``localworld.iam`` with ``kms:ViaService`` = S3, as it evaluates Rekognition's read of a video.
  With a data access role the caller needs ``iam:PassRole`` of it (to
  ``transcribe.amazonaws.com``) and the role, assumed by Transcribe, needs the S3 and KMS grants.
  A refusal is recorded as a denial (the world raises it when a run ends) and the start is
  refused with ``BadRequestException``: the one public report of a start on media its caller
  could not read (awsdocs/amazon-transcribe-developer-guide issue 1) shows a BadRequestException
  at the start, not a failed job; the messages' wording is this stand-in's.

Jobs run on the simulated clock (``localworld.clock``). Their time is this project's assumption,
not a measurement (AWS publishes no processing speed for batch jobs)::

    job seconds = TRANSCRIBE_MIN_S + TRANSCRIBE_SECONDS_PER_MEDIA_SECOND * media duration

with 15 s and 0.25 s per second of media (``job_duration_s`` fixes it for a test). With
``IdentifyLanguage`` the language is known ``LANGUAGE_ID_S`` into the job (at most half of it):
from then on ``GetTranscriptionJob`` reports ``LanguageCode`` and ``IdentifiedLanguageScore``
(the developer guide: "You don't need to wait for a transcription to complete to get this
information") and a "Language Identification State Change" event is sent.

When a job ends, the stand-in **reads the media from S3 and decodes its audio** (PyAV):

* not media, or empty: FAILED "Unsupported media format."; ``MediaFormat`` or
  ``MediaSampleRateHertz`` that differ from the file's: FAILED with the documented reasons;
  shorter than half a second: FAILED "The input media file length is too small..." (reported by
  users, awsdocs issue 12); **no audio stream: FAILED with ``NO_AUDIO_REASON``** (Transcribe
  documents no reason for media without audio: this wording is the stand-in's).
* Otherwise the voiced intervals are where the audio's RMS energy (20 ms windows of the mono
  downmix at 16 kHz) is above -40 dBFS, gaps under 0.1 s closed, intervals under 0.3 s dropped.
  Digital silence is COMPLETED with an empty transcript and no items (and, as the subtitles page
  says, no subtitle file: "if your audio contains no speech, a subtitle file is not created"; the
  job still lists their URIs).
* Each voiced interval is a sentence: words at 2.5 a second, evenly inside the interval, from a
  fixed word list of the job's language, chosen by a digest of the object (same bytes, same
  words), then a full stop. **The transcript is synthetic: no speech is recognised**; only its
  timing comes from the audio.
* Language: the audio stream's ``language`` tag (ISO 639-2: "por" is pt-PT, "eng" en-US, "spa"
  es-ES, "fra" fr-FR, "deu" de-DE, "ita" it-IT, "nld" nl-NL; a Transcribe code such as "pt-BR" is
  taken as it is); untagged ("und") is en-US. ``LanguageCode`` is used as given (a clip in
  another language is "transcribed" in that one, as Transcribe would). With ``IdentifyLanguage``
  the model is: the clip's language is identified with a score of 0.90-0.99 when it is among the
  ``LanguageOptions`` (or there are none); otherwise the service still picks one of the options
  (it "transcribes audio in the language that has the highest confidence score"): the option of
  the same base language (pt-BR for a pt-PT clip) with a score of 0.40-0.49, else the first
  option with 0.30-0.39, and the others below it (scores then need not add up to 1).

Output, where Transcribe puts it: ``OutputKey`` ending in ``.json`` is the transcript's key; any
other ``OutputKey`` is a folder (a ``/`` is added when missing) holding ``<job name>.json``; no
``OutputKey`` is ``<job name>.json`` at the bucket's root (the examples of the API reference).
Subtitles sit beside the transcript with its stem and ``.vtt``/``.srt``. URIs are path style,
``https://s3.<region>.amazonaws.com/<bucket>/<key>``, as GetTranscriptionJob gives them. The
transcript JSON is the service's: ``jobName``, ``accountId``, ``status``, ``results`` with
``transcripts[0].transcript``, ``items`` (``id``, ``type`` pronunciation with ``start_time``/
``end_time`` as strings, punctuation without times, ``alternatives[{confidence, content}]``),
``audio_segments`` and, with identification, ``language_code`` and ``language_identification``
(``[{score, code}]``, best first). WebVTT (``WEBVTT``, numbered cues ``HH:MM:SS.mmm -->``) and
SubRip (``HH:MM:SS,mmm``) cues are numbered from ``OutputStartIndex`` (default 0), hold at most
two lines of 42 characters and 7 s, and never span two sentences. Objects are written with the
bucket's default encryption, or SSE-KMS with ``OutputEncryptionKMSKeyId``. Without
``OutputBucketName`` the output stays in the stand-in (``service_output``) and the URI is a
placeholder in a service bucket, never fetchable.

Events: when a job ends, "Transcribe Job State Change" (``source`` aws.transcribe, ``resources``
empty, ``detail`` ``TranscriptionJobName``, ``TranscriptionJobStatus`` COMPLETED or FAILED and
``FailureReason`` when FAILED), exactly as the EventBridge page of the developer guide shows it,
goes to ``emit``: the world's asynchronous deliveries, through every rule whose pattern matches
(as S3's restore events do, ``localworld.glacier``). ``job_state_change_event`` is public so a
handler test sends the same event.

Faults, as the service raises them: ``throttle(operation, times, code)`` makes the next calls
fail with ``LimitExceededException`` (429) or ``InternalFailureException`` (500);
``fail_jobs`` (media key fragment -> FailureReason) ends matching jobs FAILED; ``lose_events``
(media key fragments) drops their events (EventBridge delivers Transcribe's "on a best-effort
basis"): ``GetTranscriptionJob`` still tells the truth, so the heartbeat sweep can recover them.
``job_records()`` tells what each job did; ``events`` and ``lost`` what was emitted or dropped.

Not faithful: no words are recognised (see above), no speaker labels, channels, alternatives,
vocabularies, language models, redaction, toxicity or multi-language identification (such
requests are refused, saying so, instead of being ignored); jobs never queue (no concurrency
quota, no ``QUEUED`` state, ``AllowDeferredExecution`` changes nothing) and take the modelled
time; language identification of silence is answered from the tag (AWS may fail it: not
checked); an IAM user's calls (not a role session's) are not evaluated; ``KMSEncryptionContext``
is accepted but not applied; S3 sends no "Object Created" event for what the stand-in writes; the
exact wording of the stand-in's own refusals is not the service's.
"""

# moto is imported where it is patched or used, not at import time; the patch is installed once
# per process (module-level flag).
# ruff: noqa: PLC0415, PLW0603

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import boto3
from botocore.validate import ParamValidator

from localworld import iam
from localworld.clock import SimClock
from localworld.faults import FaultQueue
from localworld.runtime import current_function
from localworld.shapes import check_output

OPERATIONS = (
    "StartTranscriptionJob",
    "GetTranscriptionJob",
    "ListTranscriptionJobs",
    "DeleteTranscriptionJob",
)
# The time model (an assumption; see the module docstring).
TRANSCRIBE_MIN_S = 15.0
TRANSCRIBE_SECONDS_PER_MEDIA_SECOND = 0.25
LANGUAGE_ID_S = 5.0
# Listening: RMS of 20 ms windows of the mono downmix at 16 kHz, -40 dBFS.
ANALYSIS_RATE = 16_000
RMS_WINDOW_S = 0.02
VOICED_RMS = 0.01
MAX_GAP_S = 0.1
MIN_VOICED_S = 0.3
MIN_MEDIA_S = 0.5
# The synthetic words: a steady rate inside each voiced interval.
WORDS_PER_SECOND = 2.5
# Subtitle cues: at most two lines of 42 characters and 7 s.
CUE_MAX_MS = 7000
CUE_LINE_CHARS = 42
CUE_LINES = 2
# Failure reasons: the API reference's list, users' reports, and the stand-in's own wording.
UNSUPPORTED_FORMAT = "Unsupported media format."
FORMAT_MISMATCH = "The media format provided does not match the detected media format."
SAMPLE_RATE_MISMATCH = "The sample rate provided does not match the detected sample rate."
TOO_SHORT = (
    "The input media file length is too small. Check the length of the file and try your "
    "request again."
)
NO_AUDIO_REASON = (
    "The media file doesn't contain an audio stream. Check the media file and try your "
    "request again."
)
CONFLICT = "The requested job name already exists. Use a different job name."
NOT_FOUND = "The requested job couldn't be found. Check the job name and try your request again."
NO_OBJECT = (
    "The URI that you provided doesn't point to an S3 object. Make sure that the object exists "
    "and try your request again."
)
NO_READ = (
    "The S3 URI that you provided can't be accessed. Make sure that you have read permission and "
    "try your request again."
)
NO_WRITE = (
    "You don't have permission to write to the specified output location s3://{bucket}/{key}. "
    "Check your permissions and try your request again."
)
NO_BUCKET = "The specified output bucket {bucket} doesn't exist. Check the bucket name."
NO_ROLE = "Amazon Transcribe can't assume the data access role {role}: {reason}"
FAULT_STATUS = {"LimitExceededException": 429, "InternalFailureException": 500}
FAULT_MESSAGES = {
    "LimitExceededException": (
        "You've either sent too many requests or your input file is too long. Wait before "
        "retrying your request, or use a smaller file and try your request again."
    ),
    "InternalFailureException": "There was an internal error. Try your request again.",
}
# The model's error statuses (botocore's shapes): ConflictException is 409, NotFoundException 404.
ERROR_STATUS = {"BadRequestException": 400, "ConflictException": 409, "NotFoundException": 404}
SERVICE = "transcribe.amazonaws.com"
# Request members that change what a transcript holds, which this stand-in does not produce.
NOT_MODELLED = (
    "IdentifyMultipleLanguages",
    "ModelSettings",
    "ContentRedaction",
    "ToxicityDetection",
    "LanguageIdSettings",
)
NOT_MODELLED_SETTINGS = (
    "VocabularyName",
    "VocabularyFilterName",
    "ShowSpeakerLabels",
    "ChannelIdentification",
    "ShowAlternatives",
)
DEFAULT_SETTINGS = {"ChannelIdentification": False, "ShowAlternatives": False}

# The audio stream's ISO 639-2 tag (and its bibliographic variants) -> Transcribe's code.
LANGUAGE_TAGS = {
    "eng": "en-US",
    "por": "pt-PT",
    "spa": "es-ES",
    "fra": "fr-FR",
    "fre": "fr-FR",
    "deu": "de-DE",
    "ger": "de-DE",
    "ita": "it-IT",
    "nld": "nl-NL",
    "dut": "nl-NL",
}
UNTAGGED_LANGUAGE = "en-US"
# A fixed word list per base language (other languages use the English one).
WORDS: dict[str, tuple[str, ...]] = {
    "en": (
        "river", "morning", "city", "light", "people", "walk", "harbour", "old", "street",
        "tram", "water", "bridge", "window", "quiet", "green", "evening", "market", "road",
        "boat", "hill", "square", "music", "voice", "station",
    ),
    "pt": (
        "rio", "manhã", "cidade", "luz", "gente", "caminho", "porto", "velho", "rua",
        "elétrico", "água", "ponte", "janela", "calma", "verde", "tarde", "mercado", "estrada",
        "barco", "colina", "praça", "música", "voz", "estação",
    ),
    "es": (
        "río", "mañana", "ciudad", "luz", "gente", "camino", "puerto", "viejo", "calle",
        "tranvía", "agua", "puente", "ventana", "tranquilo", "verde", "tarde", "mercado",
        "carretera", "barco", "colina", "plaza", "música", "voz", "estación",
    ),
    "fr": (
        "rivière", "matin", "ville", "lumière", "gens", "chemin", "port", "vieux", "rue",
        "tramway", "eau", "pont", "fenêtre", "calme", "vert", "soir", "marché", "route",
        "bateau", "colline", "place", "musique", "voix", "gare",
    ),
    "de": (
        "Fluss", "Morgen", "Stadt", "Licht", "Leute", "Weg", "Hafen", "alt", "Straße",
        "Straßenbahn", "Wasser", "Brücke", "Fenster", "ruhig", "grün", "Abend", "Markt",
        "Landstraße", "Boot", "Hügel", "Platz", "Musik", "Stimme", "Bahnhof",
    ),
    "it": (
        "fiume", "mattina", "città", "luce", "gente", "cammino", "porto", "vecchio", "strada",
        "tram", "acqua", "ponte", "finestra", "calmo", "verde", "sera", "mercato", "via",
        "barca", "collina", "piazza", "musica", "voce", "stazione",
    ),
    "nl": (
        "rivier", "ochtend", "stad", "licht", "mensen", "weg", "haven", "oud", "straat",
        "tram", "water", "brug", "raam", "stil", "groen", "avond", "markt", "baan",
        "boot", "heuvel", "plein", "muziek", "stem", "station",
    ),
}  # fmt: skip
# When the options are not given, the five most likely languages are listed: the clip's and
# these, in order, without it.
ALTERNATE_LANGUAGES = ("en-GB", "en-US", "es-ES", "fr-FR", "de-DE", "pt-BR", "pt-PT")
# Container names (PyAV's) -> Transcribe's MediaFormat.
MEDIA_FORMATS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "matroska,webm": "webm",
    "ogg": "ogg",
    "mp3": "mp3",
    "wav": "wav",
    "flac": "flac",
    "amr": "amr",
}
# MediaFormat values that name the same container as the detected one.
SAME_FORMAT = {"mp4": {"mp4", "m4a"}, "webm": {"webm"}, "ogg": {"ogg"}}


class TranscribeError(Exception):
    """An error answer of the service: its code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        self.status = status if status is not None else ERROR_STATUS.get(code, 400)


def bad_request(message: str) -> TranscribeError:
    return TranscribeError("BadRequestException", message)


# -- requests -------------------------------------------------------------------------------------
def _member_path(path: str, name: str) -> str:
    """The service's spelling of a member's place: lower camel case, dot-separated."""
    member = name[:1].lower() + name[1:]
    return f"{path}.{member}" if path else member


def constraint_problems(value: Any, shape: Any, path: str = "") -> list[str]:
    """What botocore's ParamValidator leaves to the service: patterns, enums, maximum lengths
    and values, each worded as the service's validation layer words it."""
    kind = shape.type_name
    meta = shape.metadata
    problems: list[str] = []
    if kind == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                where = _member_path(path, name)
                problems += constraint_problems(member, shape.members[name], where)
    elif kind == "list" and isinstance(value, list):
        problems += _too_long(value, meta, path)
        for index, item in enumerate(value, start=1):
            problems += constraint_problems(item, shape.member, f"{path}.{index}.member")
    elif kind == "map" and isinstance(value, dict):
        problems += _too_long(value, meta, path)
        for key, item in value.items():
            problems += constraint_problems(key, shape.key, f"{path}.{key}.key")
            problems += constraint_problems(item, shape.value, f"{path}.{key}.value")
    elif kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            enum = ", ".join(shape.enum)
            problems.append(_problem(value, path, f"Member must satisfy enum value set: [{enum}]"))
        problems += _too_long(value, meta, path)
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            constraint = f"Member must satisfy regular expression pattern: {pattern}"
            problems.append(_problem(value, path, constraint))
    elif kind in ("integer", "long") and isinstance(value, int) and value > meta.get("max", value):
        constraint = f"Member must have value less than or equal to {meta['max']}"
        problems.append(_problem(value, path, constraint))
    return problems


def _too_long(value: Any, meta: dict[str, Any], path: str) -> list[str]:
    if "max" not in meta or len(value) <= meta["max"]:
        return []
    return [_problem(value, path, f"Member must have length less than or equal to {meta['max']}")]


def _problem(value: Any, path: str, constraint: str) -> str:
    return f"Value '{value}' at '{path}' failed to satisfy constraint: {constraint}"


def validation_message(problems: Sequence[str]) -> str:
    count = len(problems)
    return f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def media_location(uri: str, region: str) -> S3Location | None:
    """The S3 object a ``MediaFileUri`` names: ``s3://bucket/key``, or an https URL of S3 in
    this region, path style or virtual-hosted (None: not an S3 object URI)."""
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        key = parts.path.lstrip("/")
        return S3Location(parts.netloc, key) if parts.netloc and key else None
    host = parts.netloc.split(":")[0].lower()
    path = unquote(parts.path).lstrip("/")
    if host in (f"s3.{region}.amazonaws.com", "s3.amazonaws.com") and "/" in path:
        bucket, key = path.split("/", 1)
        return S3Location(bucket, key) if key else None
    for suffix in (f".s3.{region}.amazonaws.com", ".s3.amazonaws.com"):
        if host.endswith(suffix) and path:
            return S3Location(host.removesuffix(suffix), path)
    return None


def transcript_key(job_name: str, output_key: str | None) -> str:
    """Where the transcript goes in the output bucket (the API reference's ``OutputKey``
    examples): a key ending in ``.json`` is the file; anything else is a folder."""
    if not output_key:
        return f"{job_name}.json"
    if output_key.endswith(".json"):
        return output_key
    folder = output_key if output_key.endswith("/") else f"{output_key}/"
    return f"{folder}{job_name}.json"


def subtitle_key(transcript: str, fmt: str) -> str:
    """A subtitle file beside the transcript, with its stem: ``a/b.json`` -> ``a/b.vtt``."""
    return f"{transcript.removesuffix('.json')}.{fmt}"


def https_uri(region: str, bucket: str, key: str) -> str:
    return f"https://s3.{region}.amazonaws.com/{bucket}/{quote(key, safe='/')}"


# -- listening ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AudioTrack:
    """What decoding the media's first audio stream found."""

    media_format: str | None
    duration_s: float
    sample_rate: int
    channels: int
    language_tag: str | None
    voiced: tuple[tuple[float, float], ...]
    digest: str


_LISTENED: dict[str, AudioTrack | str] = {}
_LISTEN_LOCK = threading.Lock()


def media_duration(body: bytes) -> float | None:
    """The container's declared duration (None: not media PyAV opens), for the time model."""
    import av

    try:
        with av.open(io.BytesIO(body), "r") as container:
            if container.duration:
                return float(container.duration / av.time_base)
            return None
    except (av.FFmpegError, ValueError, OSError):
        return None


def voiced_intervals(
    samples: Any, rate: int, origin_s: float = 0.0
) -> tuple[tuple[float, float], ...]:
    """Where a mono signal's RMS over ``RMS_WINDOW_S`` windows is above ``VOICED_RMS``: gaps
    shorter than ``MAX_GAP_S`` closed, intervals shorter than ``MIN_VOICED_S`` dropped."""
    import numpy as np

    window = max(1, round(RMS_WINDOW_S * rate))
    count = len(samples) // window
    if count == 0:
        return ()
    frames = np.asarray(samples[: count * window], dtype=np.float64).reshape(count, window)
    loud = np.sqrt((frames**2).mean(axis=1)) > VOICED_RMS
    runs: list[list[float]] = []
    start: int | None = None
    for index, on in enumerate([*loud.tolist(), False]):
        if on and start is None:
            start = index
        elif not on and start is not None:
            begin, end = origin_s + start * window / rate, origin_s + index * window / rate
            if runs and begin - runs[-1][1] < MAX_GAP_S:
                runs[-1][1] = end
            else:
                runs.append([begin, end])
            start = None
    return tuple((a, b) for a, b in runs if b - a >= MIN_VOICED_S)


def listen(body: bytes) -> AudioTrack | str:
    """The media's audio as Transcribe would hear it, or the FailureReason of a job on it.

    Cached by the bytes' digest: the language identification and the end of a job read the same
    object."""
    digest = hashlib.sha256(body, usedforsecurity=False).hexdigest()
    with _LISTEN_LOCK:
        if digest in _LISTENED:
            return _LISTENED[digest]
    heard = _listen(body, digest)
    with _LISTEN_LOCK:
        _LISTENED[digest] = heard
        while len(_LISTENED) > 64:
            _LISTENED.pop(next(iter(_LISTENED)))
    return heard


def _listen(body: bytes, digest: str) -> AudioTrack | str:
    import av
    import numpy as np

    try:
        container = av.open(io.BytesIO(body), "r")
    except (av.FFmpegError, ValueError, OSError):
        return UNSUPPORTED_FORMAT  # empty, or not media
    with container:
        if not container.streams.audio:
            return NO_AUDIO_REASON if container.streams.video else UNSUPPORTED_FORMAT
        stream = container.streams.audio[0]
        context = stream.codec_context
        tag = str(stream.metadata.get("language") or "") or None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=ANALYSIS_RATE)
        chunks: list[Any] = []
        origin: float | None = None
        try:
            for frame in container.decode(stream):
                if origin is None:
                    origin = float(frame.time) if frame.time is not None else 0.0
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
        except av.FFmpegError:
            return UNSUPPORTED_FORMAT
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        duration = len(samples) / ANALYSIS_RATE
        if duration < MIN_MEDIA_S:
            return TOO_SHORT
        return AudioTrack(
            media_format=MEDIA_FORMATS.get(container.format.name),
            duration_s=duration,
            sample_rate=int(context.sample_rate or 0),
            channels=int(context.channels or 0),
            language_tag=None if tag in (None, "und") else tag,
            voiced=voiced_intervals(samples, ANALYSIS_RATE, origin or 0.0),
            digest=digest,
        )


def clip_language(tag: str | None, codes: Iterable[str]) -> str:
    """Transcribe's code for the audio stream's language tag (untagged: en-US)."""
    if tag and tag in set(codes):
        return tag
    return LANGUAGE_TAGS.get((tag or "").lower(), UNTAGGED_LANGUAGE)


def _fraction(*parts: str) -> float:
    """A deterministic number in [0, 1) from the parts."""
    text = "\x1f".join(parts).encode()
    return int(hashlib.sha256(text, usedforsecurity=False).hexdigest()[:8], 16) / 16**8


def identify_language(
    spoken: str, options: Sequence[str] | None, digest: str
) -> list[tuple[str, float]]:
    """The stand-in's model of language identification: (code, score), best first.

    The spoken language scores 0.90-0.99 when it is an option (or there are no options, when
    the five likeliest languages are listed); outside the options the identified language is
    still an option: the one of the same base language (0.40-0.49), else the first (0.30-0.39).
    """
    if not options or spoken in options:
        best, top = spoken, 0.90 + 0.09 * _fraction(digest, spoken)
        others = [c for c in (options or ALTERNATE_LANGUAGES) if c != spoken]
        others = others if options else others[:4]
        share = 1.0 - top  # the rest, halving down the list (the last takes what is left)
    else:
        same = [c for c in options if c.split("-")[0] == spoken.split("-", 1)[0]]
        best = same[0] if same else options[0]
        top = (0.40 if same else 0.30) + 0.09 * _fraction(digest, best)
        others = [c for c in options if c != best]
        share = top  # each below the best, halving down the list
    ranked = [(best, round(top, 4))]
    ranked += [(code, round(share / 2**rank, 4)) for rank, code in enumerate(others, start=1)]
    if ranked[1:] and (not options or spoken in options):
        # The last takes what is left: the listed scores add up to 1, as the service's do.
        ranked[-1] = (ranked[-1][0], round(1.0 - sum(score for _c, score in ranked[:-1]), 4))
    return ranked


@dataclass(frozen=True)
class Word:
    start_ms: int
    end_ms: int
    content: str
    confidence: float


def sentences_for(track: AudioTrack, language: str) -> list[list[Word]]:
    """One sentence per voiced interval: words at ``WORDS_PER_SECOND``, evenly inside it, from
    the language's word list, chosen by the media's digest; the first capitalised."""
    words = WORDS.get(language.split("-", 1)[0], WORDS["en"])
    sentences: list[list[Word]] = []
    number = 0
    for begin_s, end_s in track.voiced:
        first_ms, last_ms = math.ceil(begin_s * 1000), math.floor(end_s * 1000)
        count = max(1, round((last_ms - first_ms) / 1000 * WORDS_PER_SECOND))
        slot = (last_ms - first_ms) / count
        sentence: list[Word] = []
        for index in range(count):
            start = first_ms + math.ceil(index * slot)
            end = first_ms + math.floor((index + 1) * slot - min(40.0, slot * 0.15))
            content = words[int(_fraction(track.digest, "word", str(number)) * len(words))]
            if index == 0:
                content = content[:1].upper() + content[1:]
            confidence = round(0.85 + 0.149 * _fraction(track.digest, "confidence", str(number)), 4)
            sentence.append(Word(start, max(end, start + 1), content, confidence))
            number += 1
        sentences.append(sentence)
    return sentences


def _seconds(millis: int) -> str:
    return str(round(millis / 1000, 3))


def transcript_document(
    *,
    job_name: str,
    account: str,
    sentences: Sequence[Sequence[Word]],
    identification: Sequence[tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """The transcript JSON Transcribe writes (the developer guide's output examples)."""
    items: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    texts: list[str] = []
    for sentence in sentences:
        ids: list[int] = []
        for word in sentence:
            ids.append(len(items))
            items.append(
                {
                    "id": len(items),
                    "type": "pronunciation",
                    "alternatives": [{"confidence": str(word.confidence), "content": word.content}],
                    "start_time": _seconds(word.start_ms),
                    "end_time": _seconds(word.end_ms),
                }
            )
        ids.append(len(items))
        items.append(
            {
                "id": len(items),
                "type": "punctuation",
                "alternatives": [{"confidence": "0.0", "content": "."}],
            }
        )
        text = " ".join(w.content for w in sentence) + "."
        texts.append(text)
        segments.append(
            {
                "id": len(segments),
                "transcript": text,
                "start_time": _seconds(sentence[0].start_ms),
                "end_time": _seconds(sentence[-1].end_ms),
                "items": ids,
            }
        )
    results: dict[str, Any] = {}
    if identification:
        results["language_code"] = identification[0][0]
    results["transcripts"] = [{"transcript": " ".join(texts)}]
    if identification:
        results["language_identification"] = [
            {"score": str(score), "code": code} for code, score in identification
        ]
    results["items"] = items
    results["audio_segments"] = segments
    return {"jobName": job_name, "accountId": account, "status": "COMPLETED", "results": results}


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]


def _wrap(words: Sequence[str]) -> list[str]:
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= CUE_LINE_CHARS:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def cues_for(sentences: Sequence[Sequence[Word]]) -> list[Cue]:
    """Subtitle cues: words in order, a new cue when the next word would make it longer than
    ``CUE_MAX_MS`` or than two lines of ``CUE_LINE_CHARS``, and at every sentence."""
    cues: list[Cue] = []
    for sentence in sentences:
        group: list[Word] = []
        for index, word in enumerate(sentence):
            text = word.content + ("." if index == len(sentence) - 1 else "")
            candidate = [*(w.content for w in group), text]
            too_long = group and word.end_ms - group[0].start_ms > CUE_MAX_MS
            if group and (too_long or len(_wrap(candidate)) > CUE_LINES):
                cues.append(_cue(group))
                group = []
            group.append(Word(word.start_ms, word.end_ms, text, word.confidence))
        if group:
            cues.append(_cue(group))
    return cues


def _cue(group: Sequence[Word]) -> Cue:
    return Cue(group[0].start_ms, group[-1].end_ms, tuple(_wrap([w.content for w in group])))


def _timestamp(millis: int, separator: str) -> str:
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{ms:03d}"


def webvtt(cues: Sequence[Cue], start_index: int = 0) -> str:
    """WebVTT: the ``WEBVTT`` header, then numbered cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm``."""
    blocks = ["WEBVTT"]
    for number, cue in enumerate(cues, start=start_index):
        times = f"{_timestamp(cue.start_ms, '.')} --> {_timestamp(cue.end_ms, '.')}"
        blocks.append("\n".join([str(number), times, *cue.lines]))
    return "\n\n".join(blocks) + "\n"


def subrip(cues: Sequence[Cue], start_index: int = 0) -> str:
    """SubRip: cues numbered from ``start_index``, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``."""
    blocks = []
    for number, cue in enumerate(cues, start=start_index):
        times = f"{_timestamp(cue.start_ms, ',')} --> {_timestamp(cue.end_ms, ',')}"
        blocks.append("\n".join([str(number), times, *cue.lines]))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


# -- events ---------------------------------------------------------------------------------------
def _event(
    detail_type: str, detail: dict[str, Any], account: str, region: str, at: datetime
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.transcribe",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": detail,
    }


def job_state_change_event(
    *,
    name: str,
    status: str,
    account: str,
    region: str,
    at: datetime,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """ "Transcribe Job State Change", as the developer guide's EventBridge page shows it; the
    stand-in emits it and a handler test can send the same."""
    detail: dict[str, Any] = {"TranscriptionJobName": name, "TranscriptionJobStatus": status}
    if status == "FAILED":
        detail["FailureReason"] = failure_reason or ""
    return _event("Transcribe Job State Change", detail, account, region, at)


def language_identification_event(
    *,
    name: str,
    status: str,
    account: str,
    region: str,
    at: datetime,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """ "Language Identification State Change" of a transcription job (same page)."""
    detail: dict[str, Any] = {
        "JobType": "TranscriptionJob",
        "JobName": name,
        "LanguageIdentificationStatus": status,
    }
    if status == "FAILED":
        detail["FailureReason"] = failure_reason or ""
    return _event("Language Identification State Change", detail, account, region, at)


# -- jobs -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TranscriptionJobRecord:
    """What one job did, for tests and benchmarks (simulated seconds)."""

    name: str
    bucket: str
    key: str
    started_s: float
    finished_s: float | None
    simulated_s: float
    status: str
    failure_reason: str
    language_code: str | None
    language_score: float | None
    transcript_key: str | None
    subtitle_keys: tuple[str, ...]


@dataclass
class _Job:
    name: str
    request: dict[str, Any]
    media: S3Location
    output_bucket: str | None
    transcript_key: str
    created: datetime
    started_at: float
    simulated_s: float
    status: str = "IN_PROGRESS"
    failure_reason: str = ""
    finished_at: float | None = None
    completed: datetime | None = None
    language_code: str | None = None
    language_score: float | None = None
    media_format: str | None = None
    sample_rate: int | None = None
    service_output: dict[str, bytes] = field(default_factory=dict)
    # Language identification runs once and ends before the job does (timers run on their own
    # threads, so the job's end waits for it rather than trusting the order they were due in).
    identify_started: bool = False
    identified: threading.Event = field(default_factory=threading.Event)

    @property
    def formats(self) -> list[str]:
        return list((self.request.get("Subtitles") or {}).get("Formats") or [])

    @property
    def subtitle_keys(self) -> list[str]:
        return [subtitle_key(self.transcript_key, fmt) for fmt in self.formats]


class TranscribeStandIn:
    """Batch transcription jobs of one account and region, on the world's simulated clock."""

    def __init__(
        self,
        *,
        clock: SimClock,
        account: str,
        region: str,
        partition: str = "aws",
        emit: Callable[[dict[str, Any]], None] | None = None,
        job_duration_s: float | None = None,
        fail_jobs: dict[str, str] | None = None,
    ) -> None:
        self.clock = clock
        self.account, self.region, self.partition = account, region, partition
        # Where events go (the world's asynchronous EventBridge deliveries); None: kept only.
        self.emit = emit
        # None: each job takes what the time model gives it; a number: every job takes that.
        self.job_duration_s = job_duration_s
        # Media key fragment -> FailureReason of a job that ends FAILED.
        self.fail_jobs = dict(fail_jobs or {})
        # Media key fragments whose events are never sent.
        self.lose_events: set[str] = set()
        # Operation -> the error codes its next calls fail with, in order.
        self.faults = FaultQueue(
            operations=OPERATIONS,
            status=FAULT_STATUS,
            messages=FAULT_MESSAGES,
            error=TranscribeError,
            service="Transcribe",
        )
        self.jobs: dict[str, _Job] = {}
        self._history: list[_Job] = []
        self.events: list[dict[str, Any]] = []
        self.lost: list[dict[str, Any]] = []
        # (operation, request, the calling Lambda function's name or None)
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []
        self._lock = threading.RLock()
        self._model = boto3.session.Session()._session.get_service_model("transcribe")
        self._codes = tuple(getattr(self._model.shape_for("LanguageCode"), "enum", ()))

    # -- switches ---------------------------------------------------------------------------------
    def throttle(
        self, operation: str, times: int = 1, code: str = "LimitExceededException"
    ) -> None:
        """The next ``times`` calls of ``operation`` fail with ``code`` (see FAULT_STATUS)."""
        self.faults.add(operation, times, code)

    @property
    def faults_raised(self) -> list[tuple[str, str]]:
        return self.faults.raised

    def reset_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.fail_jobs.clear()
            self.lose_events.clear()

    def _raise_fault(self, operation: str) -> None:
        self.faults.raise_next(operation)

    def _validate(self, operation: str, params: dict[str, Any]) -> None:
        shape = self._model.operation_model(operation).input_shape
        if shape is None:
            raise bad_request(f"{operation} takes no input")
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            raise bad_request(report.generate_report())
        problems = constraint_problems(params, shape)
        if problems:
            raise bad_request(validation_message(problems))

    def handle(
        self, operation: str, params: dict[str, Any], caller: iam.Identity | None = None
    ) -> dict[str, Any]:
        """One call of ``operation`` (the patched moto response's entry point)."""
        self._validate(operation, params)
        self._raise_fault(operation)
        with self._lock:
            self.calls.append((operation, params, current_function()))
        if operation == "StartTranscriptionJob":
            answer = self.start(params, caller)
        elif operation == "GetTranscriptionJob":
            answer = {"TranscriptionJob": self._describe(self._job(params["TranscriptionJobName"]))}
        elif operation == "ListTranscriptionJobs":
            answer = self._list(params)
        else:
            self._delete(params["TranscriptionJobName"])
            return {}
        return check_output("transcribe", operation, answer)

    # -- StartTranscriptionJob --------------------------------------------------------------------
    def _check_request(self, params: dict[str, Any]) -> None:
        for name in NOT_MODELLED:
            if params.get(name):
                raise bad_request(f"Not modelled by the local Transcribe stand-in: {name}.")
        for name in NOT_MODELLED_SETTINGS:
            if (params.get("Settings") or {}).get(name):
                raise bad_request(
                    f"Not modelled by the local Transcribe stand-in: Settings.{name}."
                )
        chosen = [n for n in ("LanguageCode", "IdentifyLanguage") if params.get(n)]
        if not chosen:
            raise bad_request(
                "You must specify one of LanguageCode, IdentifyLanguage or "
                "IdentifyMultipleLanguages in your request."
            )
        if len(chosen) > 1:
            raise bad_request(
                "LanguageCode can't be used with IdentifyLanguage: include only one of "
                "LanguageCode, IdentifyLanguage or IdentifyMultipleLanguages."
            )
        options = params.get("LanguageOptions")
        if options is not None:
            if not params.get("IdentifyLanguage"):
                raise bad_request("LanguageOptions can be used only with IdentifyLanguage.")
            if len(set(options)) < 2 or len(set(options)) != len(options):
                raise bad_request(
                    "LanguageOptions must contain two or more distinct language codes."
                )
        if params.get("OutputKey") and not params.get("OutputBucketName"):
            raise bad_request("OutputKey can be used only with OutputBucketName.")
        execution = params.get("JobExecutionSettings")
        if execution is not None and not (
            "AllowDeferredExecution" in execution and execution.get("DataAccessRoleArn")
        ):
            raise bad_request(
                "JobExecutionSettings must include AllowDeferredExecution and DataAccessRoleArn."
            )

    def start(self, params: dict[str, Any], caller: iam.Identity | None = None) -> dict[str, Any]:
        self._check_request(params)
        name = str(params["TranscriptionJobName"])
        with self._lock:
            if name in self.jobs:
                raise TranscribeError("ConflictException", CONFLICT)
        media = media_location(str(params["Media"]["MediaFileUri"]), self.region)
        if media is None:
            raise bad_request(NO_OBJECT)
        output_bucket = params.get("OutputBucketName")
        transcript = transcript_key(name, params.get("OutputKey"))
        formats = (params.get("Subtitles") or {}).get("Formats") or []
        if output_bucket is not None and not self._bucket_exists(str(output_bucket)):
            raise bad_request(NO_BUCKET.format(bucket=output_bucket))
        outputs = [transcript, *(subtitle_key(transcript, fmt) for fmt in formats)]
        self._authorize(params, caller, media, output_bucket, outputs)
        body = self.read_object(media.bucket, media.key)
        if body is None:
            raise bad_request(NO_OBJECT)
        if self.job_duration_s is not None:
            simulated = float(self.job_duration_s)
        else:
            with self.clock.paused():
                duration = media_duration(body)
            simulated = estimate_transcription_seconds(duration)
        with self._lock:
            if name in self.jobs:
                raise TranscribeError("ConflictException", CONFLICT)
            started = self.clock.seconds()
            job = _Job(
                name=name,
                request=params,
                media=media,
                output_bucket=str(output_bucket) if output_bucket else None,
                transcript_key=transcript,
                created=self.clock.datetime_at(started),
                started_at=started,
                simulated_s=simulated,
                language_code=params.get("LanguageCode"),
                media_format=params.get("MediaFormat"),
                sample_rate=params.get("MediaSampleRateHertz"),
            )
            self.jobs[name] = job
            self._history.append(job)
        if params.get("IdentifyLanguage"):
            self.clock.call_later(min(LANGUAGE_ID_S, simulated / 2), lambda: self._identify(job))
        self.clock.call_later(simulated, lambda: self._finish(job))
        return {"TranscriptionJob": self._describe(job)}

    def _authorize(
        self,
        params: dict[str, Any],
        caller: iam.Identity | None,
        media: S3Location,
        output_bucket: str | None,
        output_keys: Sequence[str],
    ) -> None:
        """The caller's (or the data access role's) S3 and KMS permissions, as Transcribe uses
        them; a refusal is recorded and answered as a BadRequestException."""
        store = iam.active()
        if store is None or caller is None:
            return  # no permissions modelled, or the world itself
        part = self.partition
        base: tuple[tuple[str, str], ...] = (
            ("aws:SecureTransport", "true"),
            ("aws:ViaAWSService", "true"),
        )
        actor = caller
        role = (params.get("JobExecutionSettings") or {}).get("DataAccessRoleArn")
        if role:
            try:
                store.require(caller, [pass_role_check(str(role))])
                actor = store.assume(
                    str(role), service=SERVICE, session="Transcribe", who="Transcribe job"
                )
            except iam.PermissionDenied as err:
                raise bad_request(NO_ROLE.format(role=role, reason=err.denials[0])) from None
            base = (("aws:SecureTransport", "true"),)
        bucket_arn = f"arn:{part}:s3:::{media.bucket}"
        reads = [
            iam.Check("s3:GetObject", f"{bucket_arn}/{media.key}", base, bucket_arn),
            *store._s3_read_kms(media.bucket, media.key, None),
        ]
        try:
            store.require(actor, reads)
        except iam.PermissionDenied:
            raise bad_request(NO_READ) from None
        if output_bucket is None:
            return
        out_arn = f"arn:{part}:s3:::{output_bucket}"
        kms = params.get("OutputEncryptionKMSKeyId")
        headers: dict[str, str] = {}
        if kms:
            headers["x-amz-server-side-encryption"] = "aws:kms"
            headers["x-amz-server-side-encryption-aws-kms-key-id"] = str(kms)
        key_ref, bucket_key = store._s3_write_key(out_arn, headers)
        for key in output_keys:
            context = store._s3_context(output_bucket, key, bucket_key)
            writes = [
                iam.Check("s3:PutObject", f"{out_arn}/{key}", base, out_arn),
                *store.kms_via("s3", key_ref, iam.S3_KMS_WRITE, context),
            ]
            try:
                store.require(actor, writes)
            except iam.PermissionDenied:
                raise bad_request(NO_WRITE.format(bucket=output_bucket, key=key)) from None

    # -- the job's course -------------------------------------------------------------------------
    def _listen(self, job: _Job) -> AudioTrack | str:
        with self.clock.paused():
            body = self.read_object(job.media.bucket, job.media.key)
            if body is None:
                return NO_OBJECT  # deleted since the start
            return listen(body)

    def _identify(self, job: _Job) -> None:
        """Language identification ends (before the transcription does); runs once per job."""
        with self._lock:
            if job.identify_started:
                return
            job.identify_started = True
        try:
            self._identified(job)
        finally:
            job.identified.set()

    def _identified(self, job: _Job) -> None:
        heard = self._listen(job)
        failure = self._failure(job, heard)
        with self._lock:
            if job.status != "IN_PROGRESS":
                return
            if failure is None and isinstance(heard, AudioTrack):
                spoken = clip_language(heard.language_tag, self._codes)
                ranked = identify_language(spoken, job.request.get("LanguageOptions"), heard.digest)
                job.language_code, job.language_score = ranked[0]
                status = "COMPLETED"
            else:
                status = "FAILED"
            event = language_identification_event(
                name=job.name,
                status=status,
                account=self.account,
                region=self.region,
                at=self.clock.now(),
                failure_reason=failure,
            )
            send = self._record(job, event)
        if send and self.emit is not None:
            self.emit(event)

    def _failure(self, job: _Job, heard: AudioTrack | str) -> str | None:
        forced = next((r for frag, r in self.fail_jobs.items() if frag in job.media.key), None)
        if forced is not None:
            return forced
        if isinstance(heard, str):
            return heard
        given = job.request.get("MediaFormat")
        detected = heard.media_format
        if given and detected is not None and given not in SAME_FORMAT.get(detected, {detected}):
            return FORMAT_MISMATCH
        rate = job.request.get("MediaSampleRateHertz")
        if rate and heard.sample_rate and int(rate) != heard.sample_rate:
            return SAMPLE_RATE_MISMATCH
        return None

    def _finish(self, job: _Job) -> None:
        if job.request.get("IdentifyLanguage"):
            self._identify(job)  # at once if its timer has not fired yet, else a no-op
            job.identified.wait()
        heard = self._listen(job)
        failure = self._failure(job, heard)
        ended = self.clock.seconds()
        if failure is None and isinstance(heard, AudioTrack):
            failure = self._transcribe(job, heard)
        with self._lock:  # the job's new state and its event, seen together
            job.finished_at = ended
            # The same moment as finished_at (the transcription above runs paused).
            job.completed = self.clock.datetime_at(ended)
            if failure is not None:
                job.status, job.failure_reason = "FAILED", failure
            else:
                job.status = "COMPLETED"
            event = job_state_change_event(
                name=job.name,
                status=job.status,
                account=self.account,
                region=self.region,
                at=job.completed,
                failure_reason=job.failure_reason or None,
            )
            send = self._record(job, event)
        if send and self.emit is not None:
            self.emit(event)

    def _transcribe(self, job: _Job, heard: AudioTrack) -> str | None:
        """Write the transcript and subtitles; a FailureReason if they cannot be written."""
        identification = None
        if job.request.get("IdentifyLanguage"):
            spoken = clip_language(heard.language_tag, self._codes)
            identification = identify_language(
                spoken, job.request.get("LanguageOptions"), heard.digest
            )
            language = identification[0][0]
        else:
            language = str(job.request["LanguageCode"])
        with self.clock.paused():
            sentences = sentences_for(heard, language)
            document = transcript_document(
                job_name=job.name,
                account=self.account,
                sentences=sentences,
                identification=identification,
            )
            outputs: dict[str, tuple[bytes, str]] = {
                job.transcript_key: (json.dumps(document).encode(), "application/json")
            }
            cues = cues_for(sentences)
            start_index = int((job.request.get("Subtitles") or {}).get("OutputStartIndex") or 0)
            for fmt, key in zip(job.formats, job.subtitle_keys, strict=True):
                if not cues:
                    continue  # "if your audio contains no speech, a subtitle file is not created"
                text = webvtt(cues, start_index) if fmt == "vtt" else subrip(cues, start_index)
                kind = "text/vtt" if fmt == "vtt" else "application/x-subrip"
                outputs[key] = (text.encode(), kind)
            try:
                for key, (body, kind) in outputs.items():
                    self._write(job, key, body, kind)
            except Exception as err:  # the bucket went away meanwhile
                return f"The output couldn't be written: {err}"
        with self._lock:
            job.language_code = language
            job.language_score = identification[0][1] if identification else None
            job.media_format = job.media_format or heard.media_format
            job.sample_rate = job.sample_rate or heard.sample_rate
        return None

    def _record(self, job: _Job, event: dict[str, Any]) -> bool:
        """Keep the event as sent or lost (under the lock); whether to send it."""
        if any(fragment in job.media.key for fragment in self.lose_events):
            self.lost.append(event)
            return False
        self.events.append(event)
        return True

    # -- reading jobs -----------------------------------------------------------------------------
    def _job(self, name: str) -> _Job:
        with self._lock:
            job = self.jobs.get(name)
        if job is None:
            raise TranscribeError("NotFoundException", NOT_FOUND)
        return job

    def _output_uri(self, job: _Job, key: str) -> str:
        if job.output_bucket:
            return https_uri(self.region, job.output_bucket, key)
        # A service-managed bucket: a placeholder of its presigned URL (never fetchable here).
        token = base64.urlsafe_b64encode(
            hashlib.sha256(key.encode(), usedforsecurity=False).digest()[:12]
        ).decode()
        path = f"{self.account}/{job.name}/{token}/asrOutput.{key.rsplit('.', 1)[-1]}"
        bucket = f"aws-transcribe-{self.region}-prod"
        return f"{https_uri(self.region, bucket, path)}?X-Amz-Expires=900"

    def _describe(self, job: _Job) -> dict[str, Any]:
        """The ``TranscriptionJob`` that Start and Get answer, as the job stands now."""
        with self._lock:
            request = job.request
            described: dict[str, Any] = {
                "TranscriptionJobName": job.name,
                "TranscriptionJobStatus": job.status,
            }
            if job.language_code:
                described["LanguageCode"] = job.language_code
            if job.sample_rate:
                described["MediaSampleRateHertz"] = job.sample_rate
            if job.media_format:
                described["MediaFormat"] = job.media_format
            described["Media"] = {"MediaFileUri": request["Media"]["MediaFileUri"]}
            if job.status == "COMPLETED":
                described["Transcript"] = {
                    "TranscriptFileUri": self._output_uri(job, job.transcript_key)
                }
            described["StartTime"] = _epoch(job.created)
            described["CreationTime"] = _epoch(job.created)
            if job.completed is not None:
                described["CompletionTime"] = _epoch(job.completed)
            if job.failure_reason:
                described["FailureReason"] = job.failure_reason
            described["Settings"] = {**DEFAULT_SETTINGS, **(request.get("Settings") or {})}
            if request.get("JobExecutionSettings"):
                described["JobExecutionSettings"] = request["JobExecutionSettings"]
            if request.get("IdentifyLanguage"):
                described["IdentifyLanguage"] = True
                if request.get("LanguageOptions"):
                    described["LanguageOptions"] = list(request["LanguageOptions"])
                if job.language_score is not None:
                    described["IdentifiedLanguageScore"] = job.language_score
            if request.get("Tags"):
                described["Tags"] = list(request["Tags"])
            if job.formats:
                described["Subtitles"] = self._subtitles(job)
            return described

    def _subtitles(self, job: _Job) -> dict[str, Any]:
        subtitles: dict[str, Any] = {"Formats": job.formats}
        if job.status == "COMPLETED":
            subtitles["SubtitleFileUris"] = [self._output_uri(job, k) for k in job.subtitle_keys]
        start_index = (job.request.get("Subtitles") or {}).get("OutputStartIndex") or 0
        subtitles["OutputStartIndex"] = int(start_index)
        return subtitles

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        status = params.get("Status")
        contains = str(params.get("JobNameContains") or "").lower()
        size = int(params.get("MaxResults") or 5)
        token = str(params.get("NextToken") or "0")
        offset = int(token) if token.isdigit() else 0
        with self._lock:
            jobs = sorted(self.jobs.values(), key=lambda j: (j.created, j.name), reverse=True)
            chosen = [
                j
                for j in jobs
                if (status is None or j.status == status) and contains in j.name.lower()
            ]
            page = chosen[offset : offset + size]
            summaries = []
            for job in page:
                summary: dict[str, Any] = {
                    "TranscriptionJobName": job.name,
                    "CreationTime": _epoch(job.created),
                    "StartTime": _epoch(job.created),
                    "TranscriptionJobStatus": job.status,
                    "OutputLocationType": (
                        "CUSTOMER_BUCKET" if job.output_bucket else "SERVICE_BUCKET"
                    ),
                }
                if job.completed is not None:
                    summary["CompletionTime"] = _epoch(job.completed)
                if job.language_code:
                    summary["LanguageCode"] = job.language_code
                if job.failure_reason:
                    summary["FailureReason"] = job.failure_reason
                if job.request.get("IdentifyLanguage"):
                    summary["IdentifyLanguage"] = True
                    if job.language_score is not None:
                        summary["IdentifiedLanguageScore"] = job.language_score
                summaries.append(summary)
        answer: dict[str, Any] = {"TranscriptionJobSummaries": summaries}
        if status:
            answer["Status"] = status
        if offset + size < len(chosen):
            answer["NextToken"] = str(offset + size)
        return answer

    def _delete(self, name: str) -> None:
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                raise bad_request(NOT_FOUND)
            if job.status not in ("COMPLETED", "FAILED"):
                raise bad_request(
                    f"The job {name} is {job.status}: a job can be deleted once it has finished."
                )
            del self.jobs[name]

    # -- for tests --------------------------------------------------------------------------------
    def job_records(self) -> list[TranscriptionJobRecord]:
        """Every job started so far (deleted ones too), in order."""
        with self._lock:
            return [
                TranscriptionJobRecord(
                    name=job.name,
                    bucket=job.media.bucket,
                    key=job.media.key,
                    started_s=job.started_at,
                    finished_s=job.finished_at,
                    simulated_s=job.simulated_s,
                    status=job.status,
                    failure_reason=job.failure_reason,
                    language_code=job.language_code,
                    language_score=job.language_score,
                    transcript_key=job.transcript_key if job.output_bucket else None,
                    subtitle_keys=tuple(job.subtitle_keys) if job.output_bucket else (),
                )
                for job in self._history
            ]

    def service_output(self, name: str) -> dict[str, bytes]:
        """What a job without ``OutputBucketName`` wrote to the service's bucket, by file name."""
        return dict(self._job(name).service_output)

    # -- S3, as the service reaches it ------------------------------------------------------------
    def _s3(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account][self.partition]

    def _bucket_exists(self, bucket: str) -> bool:
        try:
            self._s3().get_bucket(bucket)
        except Exception:  # moto raises MissingBucket
            return False
        return True

    def read_object(self, bucket: str, key: str) -> bytes | None:
        """The current version's bytes (None: no such bucket or object)."""
        try:
            found = self._s3().get_object(bucket, key)
        except Exception:  # any lookup failure means "not there"
            return None
        if found is None or getattr(found, "is_delete_marker", False):
            return None
        return bytes(found.value)

    def _write(self, job: _Job, key: str, body: bytes, content_type: str) -> None:
        if job.output_bucket is None:
            with self._lock:
                job.service_output[key.rsplit("/", 1)[-1]] = body
            return
        kms = job.request.get("OutputEncryptionKMSKeyId")
        stored = self._s3().put_object(
            job.output_bucket,
            key,
            body,
            encryption="aws:kms" if kms else None,
            kms_key_id=kms,
        )
        stored.set_metadata({"Content-Type": content_type})


def pass_role_check(role: str) -> iam.Check:
    """``iam:PassRole`` of a data access role to Transcribe."""
    return iam.Check("iam:PassRole", role, (("aws:SecureTransport", "true"),)).with_context(
        {"iam:PassedToService": SERVICE}
    )


def estimate_transcription_seconds(media_duration_s: float | None) -> float:
    """Simulated seconds a job takes on media of this duration (None: not media it can open)."""
    if media_duration_s is None:
        return TRANSCRIBE_MIN_S
    return TRANSCRIBE_MIN_S + TRANSCRIBE_SECONDS_PER_MEDIA_SECOND * media_duration_s


def _epoch(at: datetime) -> float:
    return round(at.timestamp(), 3)


# -- moto -----------------------------------------------------------------------------------------
_STATE: dict[str, TranscribeStandIn | None] = {"service": None}
_INSTALLED = False


def activate(service: TranscribeStandIn | None) -> None:
    """Route the four job operations to ``service`` (None: moto's own behaviour)."""
    _STATE["service"] = service


def _caller(response: Any) -> iam.Identity | None:
    """The role session that signed the request (None: the world itself, or no permissions)."""
    store = iam.active()
    signed = iam._credential_of(response)
    if store is None or signed is None:
        return None
    return store.identity(signed[0])


def install() -> None:
    """Patch moto's Transcribe job operations once per process (moto's while none is active)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.transcribe.responses import TranscribeResponse

    def make(operation: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def action(self: Any) -> Any:
            service = _STATE["service"]
            if service is None:
                return original(self)
            headers = {"Content-Type": "application/x-amz-json-1.1"}
            params = json.loads(self.body or "{}")
            try:
                body = service.handle(operation, params, _caller(self))
            except TranscribeError as err:
                # moto reads the status from the headers (a bare tuple status is answered 200).
                failed = {**headers, "status": str(err.status)}
                return err.status, failed, json.dumps({"__type": err.code, "Message": err.message})
            return 200, headers, json.dumps(body)

        action.__name__ = original.__name__
        return action

    for operation in OPERATIONS:
        name = "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
        setattr(TranscribeResponse, name, make(operation, getattr(TranscribeResponse, name)))
    _INSTALLED = True
