"""The dashboard's one-line description of the source file, from labels.json's technical part."""

from __future__ import annotations

from dashboard_app.data import source_file


def test_the_source_line_names_container_codec_size_hdr_and_sound():
    document = {
        "technical": {
            "container": "mov",
            "video": [{"codec": "hevc", "width": 3840, "height": 2160, "hdr": "HLG"}],
            "audio": [{"codec": "aac"}],
        }
    }
    assert source_file(document) == "mov · hevc 3840x2160 · HDR HLG · audio aac"


def test_a_silent_clip_says_so_and_an_older_document_has_no_line():
    silent = {"technical": {"container": "webm", "video": [{"codec": "vp9", "width": 640,
              "height": 360}], "audio": []}}  # fmt: skip
    assert source_file(silent) == "webm · vp9 640x360 · no audio"
    assert source_file({"schema_version": "2.0"}) is None
