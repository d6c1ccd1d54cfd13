"""The HLS player: hls.js from the pinned npm package, inlined into one sandboxed iframe.

Chromium and Firefox play MP4 natively but HLS only through a player built on Media Source
Extensions; hls.js is that player. Its script comes from ``node_modules/hls.js`` (pinned in
``package.json`` and ``package-lock.json``, installed by ``npm ci``): nothing is fetched from a
CDN, so the page works offline against the local world. The full build is inlined once per page
into an ``st.iframe`` srcdoc: the light one has no subtitles, and the ladder carries Transcribe's
captions as a SUBTITLES rendition group (``lambdas/finalize/captions.py``), which hls.js renders
as a native text track on the ``<video>``.

hls.js fetches the multivariant playlist from its URL and every variant playlist and segment
relative to it. A presigned URL signs exactly one object, and the bucket is private, so those
relative requests are refused unsigned (by S3, and by moto, which checks the bucket's policy and
public access block for anonymous reads). The page therefore signs every object of the ladder
(``data.signed_ladder``: a few playlists and segments per clip) and the player swaps each URL
hls.js resolves for its signed twin (``xhrSetup``). Against the local world that is all it takes:
moto's server answers CORS for any origin. Deployed, the ladder is served by CloudFront
(``constructs_lib/delivery.py``: origin access control, CORS for players), so plain URLs work
and nothing is signed; with signed cookies, or without delivery, the page shows the MP4 proxy
from a presigned link and says why (``HLS_ON_AWS``).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HLS_JS = ROOT / "node_modules" / "hls.js" / "dist" / "hls.min.js"
PLAYER_TITLE = "HLS ladder player"
HLS_ON_AWS = (
    "The HLS ladder plays here only through CloudFront: a player fetches every playlist and "
    "segment relative to the first one, and a presigned URL signs only one object, so the "
    "private bucket refuses the rest. This deployment has no CloudFront delivery the page can "
    "use (`delivery.enabled` off, or signed cookies without the stack naming the signing key's "
    "secret); the MP4 proxy plays from a presigned URL."
)
MISSING_HLS_JS = (
    f"hls.js is not installed ({HLS_JS.relative_to(ROOT)} is missing): run `npm ci` "
    "(`make setup` does) to play the HLS ladder."
)


@functools.cache
def hls_script() -> str | None:
    """The pinned hls.js build, or None when ``npm ci`` has not run."""
    try:
        text = HLS_JS.read_text(encoding="utf-8")
    except OSError:
        return None
    # Inlined in a <script> element: a literal "</script" would end it early.
    return text.replace("</script", "<\\/script")


def player_html(url: str, signed: dict[str, str], script: str) -> str:
    """A page with one ``<video>`` that hls.js feeds from the multivariant playlist at ``url``.

    ``signed`` maps each object's URL without a query to its presigned URL; every request hls.js
    makes for one of them is sent signed. The video element carries what the player learned
    (``data-state``, ``data-levels``, ``data-captions``), so a browser test can read it without
    reaching into hls.js.
    """
    return f"""<!doctype html>
<html><head><meta charset="utf-8">
<style>
  html, body {{ margin: 0; overflow: hidden; font: 13px system-ui, sans-serif; color: #555; }}
  video {{ width: 100%; max-height: 340px; background: #000; display: block; }}
  p {{ margin: 6px 0 0; }}
</style></head>
<body>
<video id="hls" controls muted playsinline preload="auto" data-state="loading"></video>
<p id="hls-status">Loading the ladder...</p>
<script>{script}</script>
<script>
(() => {{
  const video = document.getElementById("hls");
  const status = document.getElementById("hls-status");
  const source = {json.dumps(url)};
  const signed = {json.dumps(signed)};
  const say = (state, text) => {{ video.dataset.state = state; status.textContent = text; }};
  // An attribute change makes Streamlit measure the frame again, now that the picture has a size.
  video.addEventListener("loadedmetadata", () => {{
    video.dataset.size = video.videoWidth + "x" + video.videoHeight;
  }});
  if (window.Hls && Hls.isSupported()) {{
    const hls = new Hls({{
      startLevel: 0,
      capLevelToPlayerSize: true,
      xhrSetup: (xhr, requested) => {{
        const url = signed[requested.split("?")[0]];
        if (url) xhr.open("GET", url, true);
      }},
    }});
    hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {{
      const rungs = data.levels.map((level) => level.height + "p");
      video.dataset.levels = rungs.join(",");
      const captions = (data.subtitleTracks || []).map((track) => track.lang || track.name);
      video.dataset.captions = captions.join(",");
      say(
        "ready",
        "HLS ladder: " + rungs.join(", ") +
          (captions.length ? "; captions: " + captions.join(", ") : "") +
          " (hls.js " + Hls.version + ")",
      );
    }});
    hls.on(Hls.Events.ERROR, (_, data) => {{
      if (data.fatal) say("error", "HLS error: " + data.type + " / " + data.details);
    }});
    hls.loadSource(source);
    hls.attachMedia(video);
  }} else if (video.canPlayType("application/vnd.apple.mpegurl")) {{
    video.src = source;
    say("ready", "HLS ladder (played natively)");
  }} else {{
    say("error", "This browser cannot play HLS (no Media Source Extensions).");
  }}
}})();
</script>
</body></html>
"""
