"""The dashboard page: controls in the sidebar, what landed in the main column.

Page code only arranges widgets: every AWS call goes through ``dashboard_app.data``, and every
failure arrives as a ``DashboardError`` shown as a message in the section it affects, so one
missing permission (say on the processed bucket) does not blank the whole page.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard_app import data
from dashboard_app import player as player_lib
from dashboard_app.data import DashboardError, Resources
from lambdas.shared.campaign_config import UPLOADS_CAMPAIGN

GALLERY_SIZE = 9
GALLERY_COLUMNS = 3
SUMMARIES_SHOWN = 3
FAILED_SHOWN = 25
NOTICE = "notice"
LAST_RUN = "last_run"
SEEN = "executions_seen"
DEFAULT_BATCH_SIZE = 2


def show_error(err: DashboardError) -> None:
    text = f"**{err.title}.** {err}"
    if err.hint:
        text += f"\n\n{err.hint}"
    st.error(text, icon="🚫")


@contextmanager
def section() -> Iterator[None]:
    """Render a part of the page; a failure becomes a message there, the rest still renders."""
    try:
        yield
    except DashboardError as err:
        show_error(err)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _notify(kind: str, text: str) -> None:
    st.session_state[NOTICE] = (kind, text)


def _save_schedule(res: Resources) -> None:
    """The "Save as scheduled campaign" button: the one place the page changes the parameter."""
    campaign = str(st.session_state["campaign"])
    size = int(st.session_state["batch_size"])
    images = int(st.session_state["image_batch_size"])
    try:
        data.save_config(res, campaign=campaign, batch_size=size, image_batch_size=images)
    except DashboardError as err:
        _notify("error", f"{err.title}: {err} {err.hint}")
    else:
        _notify(
            "success",
            f"Saved: scheduled runs now use **{campaign}** with video batch size **{size}** "
            f"and image batch size **{images}**.",
        )


def scheduled_batch_size(config: data.CampaignConfig) -> int:
    return int(config.batch_sizes.get("video", DEFAULT_BATCH_SIZE))


def scheduled_image_batch_size(config: data.CampaignConfig) -> int:
    return int(config.batch_sizes.get("image", 0))


def controls(res: Resources, config: data.CampaignConfig) -> tuple[str, int]:
    """What this page shows and Run now runs (campaign, batch size), saving them as what the
    schedule runs (an explicit button), Run now and Refresh.

    Choosing a campaign or a batch size changes nothing stored: the campaign parameter, which
    the weekly schedule reads, changes only with "Save as scheduled campaign".
    """
    sidebar = st.sidebar
    sidebar.header("Controls")
    campaigns = list(config.campaigns)
    scheduled, scheduled_size = config.active_campaign, scheduled_batch_size(config)
    scheduled_images = scheduled_image_batch_size(config)
    if st.session_state.get("campaign") not in campaigns:
        st.session_state["campaign"] = scheduled
    if "batch_size" not in st.session_state:
        st.session_state["batch_size"] = scheduled_size
    if "image_batch_size" not in st.session_state:
        st.session_state["image_batch_size"] = scheduled_images
    campaign = sidebar.selectbox(
        "Campaign",
        campaigns,
        key="campaign",
        format_func=lambda name: f"{name} (scheduled)" if name == scheduled else name,
        help="What this page shows and Run now runs. Scheduled runs use the saved campaign.",
    )
    batch_size = sidebar.slider(
        "Video batch size",
        min_value=data.MIN_BATCH,
        max_value=data.MAX_BATCH,
        key="batch_size",
        help="How many new clips one run ingests per source: for Run now, and for scheduled "
        "runs once saved.",
    )
    image_batch = sidebar.slider(
        "Image batch size",
        min_value=0,
        max_value=data.MAX_BATCH,
        key="image_batch_size",
        help="How many new images (Commons bitmaps, Pixabay photos) one run ingests; 0 searches "
        "none.",
    )
    sidebar.caption(
        f"Scheduled runs use **{scheduled}** with video batch size **{scheduled_size}** and "
        f"image batch size **{scheduled_images}**."
    )
    sidebar.button(
        "Save as scheduled campaign",
        key="save_schedule",
        on_click=_save_schedule,
        args=(res,),
        disabled=(campaign, int(batch_size), int(image_batch))
        == (scheduled, scheduled_size, scheduled_images),
        help="Store this campaign and batch size in the campaign parameter: the weekly "
        "schedule runs them from its next run on.",
    )
    if NOTICE in st.session_state:
        kind, text = st.session_state.pop(NOTICE)
        (sidebar.success if kind == "success" else sidebar.error)(text)

    no_machine = not res.state_machine_arn
    if sidebar.button(
        "Run now",
        key="run_now",
        type="primary",
        disabled=no_machine,
        help="Start the state machine now for this campaign and batch size (the schedule is "
        "not changed).",
    ):
        try:
            st.session_state[LAST_RUN] = data.start_run(
                res, campaign, int(batch_size), image_batch=int(image_batch)
            )
        except DashboardError as err:
            st.session_state.pop(LAST_RUN, None)
            with sidebar:
                show_error(err)
    if no_machine:
        sidebar.caption("Run now needs the Pipeline stack (its StateMachineArn output).")
    rows = watch_runs(res)
    run: data.RunStarted | None = st.session_state.get(LAST_RUN)
    if run is not None:
        mine = next((row for row in rows if row.arn == run.arn), None)
        state = ""
        if mine is not None:
            state = f" · now **{mine.outcome}**" + (f" ({mine.detail})" if mine.detail else "")
        sidebar.success(
            f"Started **{run.name}** at {when(run.started)}{state}.\n\n"
            f"[Open the execution in the console]({run.console_url})"
        )
    if sidebar.button("Refresh", key="refresh", help="Read everything again from AWS."):
        data.refresh()
    sidebar.caption(f"Connected to {res.found_in}, region {res.region}.")
    return str(campaign), int(batch_size)


def counters(res: Resources, config: data.CampaignConfig, campaign: str) -> data.Counts:
    st.subheader("Assets per campaign")
    # Uploaded files are filed under their own campaign; show them beside the themes.
    counts = data.campaign_counts(res, (*config.campaigns, UPLOADS_CAMPAIGN))
    mine = next(c for c in counts if c.campaign == campaign)
    cols = st.columns(4)
    cols[0].metric("Raw", mine.raw, help="Clips and images that reached the raw zone")
    cols[1].metric("Processed", mine.processed)
    cols[2].metric("Failed", mine.failed)
    cols[3].metric("In progress", mine.in_progress)
    st.dataframe(
        [
            {
                "campaign": c.campaign,
                "raw": c.raw,
                "processed": c.processed,
                "failed": c.failed,
                "in progress": c.in_progress,
            }
            for c in counts
        ],
        hide_index=True,
        width="stretch",
    )
    return mine


def _recent(res: Resources, interval: int) -> list[data.Execution]:
    return data.recent_executions(res, period=int(time.time() // interval))


def _saw_a_run_finish(rows: list[data.Execution]) -> bool:
    """Whether a run finished since this page last listed executions (and remember these).

    A run that was RUNNING then, or was not listed then, and is finished now: its assets have
    moved, so the catalog's counters and lists are stale. The first listing only remembers.
    """
    before: dict[str, str] | None = st.session_state.get(SEEN)
    st.session_state[SEEN] = {row.arn: row.status for row in rows}
    if before is None:
        return False
    return any(row.finished and before.get(row.arn) != row.status for row in rows)


def watch_runs(res: Resources) -> list[data.Execution]:
    """Before anything is drawn: the recent executions (the fragment's cached read, no extra
    call), forgetting the catalog reads if a run finished since this page last looked."""
    try:
        rows = _recent(res, data.refresh_interval_s())
    except DashboardError:
        return []  # the executions section shows the message
    if _saw_a_run_finish(rows):
        data.catalog_changed()
    return rows


def executions(res: Resources) -> None:
    """Recent executions, re-read on a timer (a fragment), so a started run is seen to finish."""
    st.subheader("Recent executions")
    interval = data.refresh_interval_s()
    st.fragment(_executions_view, run_every=interval)(res, interval)


def _executions_view(res: Resources, interval: int) -> None:
    with section():
        st.caption(f"Refreshed every {interval} s while this page is open.")
        rows = _recent(res, interval)
        if _saw_a_run_finish(rows):
            # On the fragment's own timer (a full run has seen it already, in watch_runs): the
            # counters above it are stale, so the whole page is drawn again with fresh reads.
            data.catalog_changed()
            st.rerun(scope="app")
        _executions_table(res, rows)


def _executions_table(res: Resources, rows: list[data.Execution]) -> None:
    if not rows:
        st.info("No executions yet." if res.state_machine_arn else "No state machine known.")
        return
    st.dataframe(
        [
            {
                # As the console lists executions: name first (a cause can be long, and a
                # column scrolled out of view is not read), then how the run ended.
                "name": e.name,
                "outcome": e.outcome or e.status,
                "details": e.detail,
                "campaign": e.campaign or "(configured)",
                "batch size": str(e.batch_size) if e.batch_size else "(configured)",
                "started": when(e.started),
                "stopped": when(e.stopped),
                "duration (s)": e.duration_s,
            }
            for e in rows
        ],
        hide_index=True,
        width="stretch",
        column_config={
            "outcome": st.column_config.TextColumn(
                help="How the run ended: PARTIAL when some assets failed, EMPTY when there was "
                "nothing new (Step Functions calls both SUCCEEDED)."
            )
        },
    )


def failed(res: Resources, campaign: str) -> None:
    st.subheader("Failed assets")
    items = data.campaign_assets(res, campaign, "FAILED", FAILED_SHOWN)
    if not items:
        st.caption(f"No failed assets in {campaign}.")
        return
    st.dataframe(
        [
            {
                "asset": item.get("asset_id"),
                "title": item.get("title"),
                "reason": item.get("failure_reason", ""),
                "failed at": item.get("updated_at"),
            }
            for item in items
        ],
        hide_index=True,
        width="stretch",
    )


def label_summary(res: Resources, item: dict[str, Any]) -> None:
    document = data.labels_document(res, item["labels_key"])
    asset = document.get("asset", {})
    summary = document.get("summary", {})
    video = document.get("video") or {}
    license_ = document.get("license") or {}
    title = asset.get("title") or item.get("title") or item["asset_id"]
    st.markdown(f"**{title}**  \n`{item['labels_key']}`")
    duration_ms = video.get("duration_ms")
    duration = (
        duration_ms / 1000 if isinstance(duration_ms, int | float) else item.get("duration_s")
    )
    size = f"{video['width']}x{video['height']}" if video.get("width") else "?"
    facts = [
        f"source: {asset.get('source') or item.get('source') or '?'}",
        f"license: {license_.get('name') or '?'}",
        f"duration: {duration if duration is not None else '?'} s",
        f"video: {video.get('codec') or '?'} {size}",
        f"labels: {summary.get('label_count', 0)}",
        f"shots: {len(summary.get('shots', []))}",
        f"moderation flags: {len((summary.get('moderation') or {}).get('flags', []))}",
    ]
    st.caption(" · ".join(facts))
    source_file = data.source_file(document)
    if source_file:
        st.caption(f"Source file: {source_file}")
    credit = (document.get("attribution") or {}).get("credit_line")
    if credit:
        st.caption(f"Credit: {credit}")
    top = summary.get("top_labels", [])
    if top:
        st.dataframe(
            [
                {
                    "label": label.get("name"),
                    "max confidence": label.get("max_confidence"),
                    "occurrences": label.get("occurrences"),
                    "categories": ", ".join(label.get("categories", [])),
                }
                for label in top
            ],
            hide_index=True,
            width="stretch",
        )
    with st.expander("Raw labels.json"):
        st.json(document, expanded=False)


def summaries(res: Resources, processed: list[dict[str, Any]]) -> None:
    st.subheader("Latest labels.json summaries")
    shown = [item for item in processed if item.get("labels_key")][:SUMMARIES_SHOWN]
    if not shown:
        st.caption("No labels yet.")
    for item in shown:
        with st.container(border=True), section():
            label_summary(res, item)


def title_of(item: dict[str, Any]) -> str:
    return str(item.get("title") or item["asset_id"])


def gallery(res: Resources, processed: list[dict[str, Any]]) -> None:
    """The newest processed clips: a real frame (the poster MediaConvert captured) and labels."""
    st.subheader("Gallery")
    if not processed:
        st.caption("Nothing processed yet.")
        return
    columns = st.columns(GALLERY_COLUMNS)
    for i, item in enumerate(processed):
        with columns[i % GALLERY_COLUMNS], st.container(border=True), section():
            title = title_of(item)
            if item.get("thumbnail_key"):
                st.image(data.media_url(res, item["thumbnail_key"]), caption=title)
            else:
                st.markdown(f"**{title}**")
            labels = item.get("top_labels") or []
            kind = "Image" if is_image(item) else "Clip"
            st.caption(f"{kind} · Labels: " + (", ".join(labels[:6]) if labels else "none"))


def is_image(item: dict[str, Any]) -> bool:
    return item.get("type") == "image"


def photos(res: Resources, processed: list[dict[str, Any]]) -> None:
    """One image as it landed: its web rendition, with what was read of it and found in it."""
    images = [item for item in processed if is_image(item) and item.get("image_key")]
    if not images:
        return
    st.subheader("Images")
    by_id = {item["asset_id"]: item for item in images}
    chosen = st.selectbox(
        "Image",
        list(by_id),
        format_func=lambda asset: title_of(by_id[asset]),
        key="photo_asset",
        help="One of the images in the gallery.",
    )
    item = by_id.get(str(chosen), images[0])
    with section():
        size = f"{item.get('width')} x {item.get('height')} px"
        st.image(data.media_url(res, str(item["image_key"])), caption=title_of(item))
        labels = ", ".join(item.get("top_labels") or []) or "none"
        facts = [f"{item.get('image_format', '?')}, {size}", f"Labels: {labels}"]
        if item.get("captured_at"):
            facts.append(f"Taken {item['captured_at']}")
        if item.get("moderation_flagged"):
            facts.append("Moderation: flagged")
        st.caption("  \n".join(facts) + f"  \n`{item['image_key']}`")


def player(res: Resources, processed: list[dict[str, Any]]) -> None:
    """One clip as it landed: the MP4 proxy and the HLS ladder, both from the processed bucket."""
    st.subheader("Player")
    processed = [item for item in processed if not is_image(item)]
    playable = [item for item in processed if item.get("mp4_key") or item.get("hls_key")]
    if not playable:
        st.caption("Nothing to play yet.")
        return
    by_id = {item["asset_id"]: item for item in playable}
    chosen = st.selectbox(
        "Clip",
        list(by_id),
        format_func=lambda asset: title_of(by_id[asset]),
        key="player_asset",
        help="One of the clips in the gallery.",
    )
    item = by_id.get(str(chosen), playable[0])
    mp4, hls = st.columns(2)
    with mp4, section():
        st.markdown("**MP4 proxy**")
        if item.get("mp4_key"):
            # Captions from Transcribe, when the clip was transcribed.
            vtt = item.get("speech_vtt_key")
            subtitles: dict[str, str | Path | bytes | io.BytesIO] | None = None
            if vtt:
                language = item.get("speech_language") or "?"
                subtitles = {f"Speech ({language})": data.captions(res, str(vtt))}
            st.video(data.media_url(res, item["mp4_key"]), subtitles=subtitles)
            st.caption(f"`{item['mp4_key']}`")
        else:
            st.caption("No MP4 proxy for this clip.")
    with hls, section():
        st.markdown("**HLS ladder**")
        hls_ladder(res, item)


def stories(res: Resources) -> None:
    """Ken Burns stories rendered from a project's images and narration (the stories unit)."""
    rendered = data.stories(res)
    if not rendered:
        return
    st.subheader("Stories")
    by_id = {story.project_id: story for story in rendered}
    chosen = st.selectbox(
        "Story",
        list(by_id),
        format_func=lambda project: by_id[project].title,
        key="story_project",
        help="Videos rendered from a project's images and narration, newest first.",
    )
    story = by_id.get(str(chosen), rendered[0])
    st.video(data.presigned_url(res, story.video_key, res.projects_bucket))
    facts = [
        f"{story.duration_s:.1f} s, {story.size}, {story.segments} images",
        f"Rendered {story.rendered_at}",
    ]
    if story.sent_to_pipeline:
        facts.append("Sent through the pipeline (labels under the uploads campaign)")
    st.caption("  \n".join(facts) + f"  \n`{story.video_key}`")


def hls_ladder(res: Resources, item: dict[str, Any]) -> None:
    key = item.get("hls_key")
    if not key:
        st.caption("No HLS ladder for this clip.")
        return
    ladder = data.hls_ladder(res, key)
    if not res.local and not res.public_delivery and not res.signed_delivery:
        st.info(player_lib.HLS_ON_AWS)
    else:
        script = player_lib.hls_script()
        if script is None:
            st.warning(player_lib.MISSING_HLS_JS)
        else:
            # Through public CloudFront every relative request is served as it is; signed
            # CloudFront and a private bucket need each request's URL swapped for its signed one.
            signed = {} if res.public_delivery else data.signed_ladder(res, ladder)
            st.iframe(
                player_lib.player_html(data.media_url(res, key), signed, script),
                height="content",
                alt=player_lib.PLAYER_TITLE,
            )
    rungs = ", ".join(rung.label for rung in ladder.rungs) or "none"
    captions = ", ".join(ladder.captions) or "none"
    st.caption(f"Rungs: {rungs}  \nCaptions: {captions}  \n`{key}`")


Row = dict[str, Any]


def hits_table(hits: list[Row], match: Callable[[Row], Row]) -> None:
    """A search's hits: the asset and its record, with what matched (``match``) in between."""
    st.dataframe(
        [
            {
                "asset": hit.get("asset_id"),
                "type": hit.get("type") or "video",
                "campaign": hit.get("campaign"),
                "title": hit.get("title"),
                **match(hit),
                "status": hit.get("status"),
                "labels_key": hit.get("labels_key"),
            }
            for hit in hits
        ],
        hide_index=True,
        width="stretch",
    )


def search(res: Resources) -> None:
    st.subheader("Search by label")
    label = st.text_input("Label", key="label_search", placeholder="e.g. Beach, Car, Mountain")
    if not label.strip():
        return
    hits = data.search_label(res, label)
    if not hits:
        st.info(f"No asset is labelled {label.strip()!r}.")
        return
    st.caption(f"{len(hits)} asset(s) labelled {label.strip()!r}")
    hits_table(hits, lambda hit: {"label": hit.get("label"), "confidence": hit.get("confidence")})


def clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


def search_speech(res: Resources) -> None:
    st.subheader("Search what is said")
    text = st.text_input(
        "Spoken words",
        key="word_search",
        placeholder="e.g. harbour, or two words said in the same clip",
        help="Looks the words up in the transcripts' word index: clips saying all of them.",
    )
    if not text.strip():
        return
    hits = data.search_words(res, text)
    if not hits:
        st.info(f"No transcript says {text.strip()!r}.")
        return
    st.caption(f"{len(hits)} asset(s) saying {text.strip()!r}")
    hits_table(
        hits,
        lambda hit: {
            "said": hit.get("said"),
            "first said at": clock(float(hit["first_said_s"])),
            "language": hit.get("speech_language"),
        },
    )


DEAD_LETTER_PLAN = "dead_letter_plan"


def dead_letters(res: Resources) -> None:
    """A dead-letter queue's messages, a dry run of their redrive, and the redrive itself.

    The button to send appears only after a dry run of the same queue, and sends what the
    redrive decides then (each message at most once: ``lambdas/operations/redrive.py``).
    """
    queues = data.dead_letter_queues(res)
    if not queues:
        return
    st.subheader("Dead letters")
    queue = str(
        st.selectbox(
            "Dead-letter queue",
            queues,
            key="dead_letter_queue",
            help="Each queue keeps one kind of message that could not be delivered or handled.",
        )
    )
    if st.button("Dry run", key="dead_letter_dry_run"):
        st.session_state[DEAD_LETTER_PLAN] = (queue, data.dead_letter_plan(res, queue))
    planned = st.session_state.get(DEAD_LETTER_PLAN)
    if not planned or planned[0] != queue:
        st.caption("A dry run lists the messages and what a redrive would do with each.")
        return
    rows = planned[1]
    if not rows:
        st.success(f"{queue} is empty.")
        return
    st.dataframe(
        [
            {
                "message": r["message_id"],
                "kept since": r["sent_at"],
                "error": r["error_class"],
                "about": r["subject"],
                "action": r["action"],
                "why": r["reason"],
            }
            for r in rows
        ],
        hide_index=True,
    )
    sends = sum(r["action"] == "send" for r in rows)
    if sends and st.button(f"Redrive {sends} message(s)", key="dead_letter_redrive"):
        outcomes = data.dead_letter_redrive(res, queue)
        st.session_state.pop(DEAD_LETTER_PLAN, None)
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome["result"]] = counts.get(outcome["result"], 0) + 1
        summary = ", ".join(f"{n} {result}" for result, n in sorted(counts.items()))
        _notify("success", f"Redrive of {queue}: {summary or 'nothing to send'}.")
        st.rerun()


def main() -> None:
    st.set_page_config(
        page_title="Media pipeline",
        page_icon="🎞️",
        layout="wide",
        initial_sidebar_state="expanded",
    )
    st.title("Media pipeline")
    try:
        res = data.resources()
        config = data.load_config(res)
    except DashboardError as err:
        show_error(err)
        st.stop()
        return
    campaign, _ = controls(res, config)
    scheduled = (
        "the scheduled campaign"
        if campaign == config.active_campaign
        else f"scheduled runs use **{config.active_campaign}**"
    )
    st.caption(f"Campaign **{campaign}** ({scheduled}) · configuration `{res.config_parameter}`")

    with section():
        mine = counters(res, config, campaign)
        if mine.raw == 0:
            st.info(
                f"The catalog has no assets for campaign {campaign} yet. "
                "Press **Run now** to ingest some."
            )
    with section():
        executions(res)
    with section():
        failed(res, campaign)
    processed: list[dict[str, Any]] = []
    with section():
        processed = data.campaign_assets(res, campaign, "PROCESSED", GALLERY_SIZE)
    gallery(res, processed)
    player(res, processed)
    photos(res, processed)
    with section():
        stories(res)
    summaries(res, processed)
    with section():
        search(res)
    with section():
        search_speech(res)
    with section():
        dead_letters(res)
    with st.expander("Configuration document"):
        st.code(config.to_json(), language="json")
