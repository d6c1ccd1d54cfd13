"""The dashboard page: controls in the sidebar, what landed in the main column.

Page code only arranges widgets: every AWS call goes through ``dashboard_app.data``, and every
failure arrives as a ``DashboardError`` shown as a message in the section it affects, so one
missing permission (say on the processed bucket) does not blank the whole page.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
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


def _save_campaign(res: Resources) -> None:
    campaign = st.session_state["campaign"]
    try:
        data.save_config(res, campaign=campaign)
    except DashboardError as err:
        _notify("error", f"{err.title}: {err} {err.hint}")
    else:
        _notify("success", f"Active campaign is now **{campaign}**; scheduled runs use it.")


def _save_batch_size(res: Resources) -> None:
    size = int(st.session_state["batch_size"])
    try:
        data.save_config(res, batch_size=size)
    except DashboardError as err:
        _notify("error", f"{err.title}: {err} {err.hint}")
    else:
        _notify("success", f"Video batch size is now **{size}**; scheduled runs use it.")


def controls(res: Resources, config: data.CampaignConfig) -> tuple[str, int]:
    """Campaign and batch size (both persisted to the parameter), Run now and Refresh."""
    sidebar = st.sidebar
    sidebar.header("Controls")
    campaigns = list(config.campaigns)
    if st.session_state.get("campaign") not in campaigns:
        st.session_state["campaign"] = config.active_campaign
    if "batch_size" not in st.session_state:
        st.session_state["batch_size"] = config.batch_sizes.get("video", 2)
    campaign = sidebar.selectbox(
        "Campaign",
        campaigns,
        key="campaign",
        on_change=_save_campaign,
        args=(res,),
        help="Saved to the campaign parameter: the next scheduled run uses it too.",
    )
    batch_size = sidebar.slider(
        "Video batch size",
        min_value=data.MIN_BATCH,
        max_value=data.MAX_BATCH,
        key="batch_size",
        on_change=_save_batch_size,
        args=(res,),
        help="How many new clips one run ingests per source. Saved to the campaign parameter.",
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
        help="Start the state machine for this campaign and batch size.",
    ):
        try:
            st.session_state[LAST_RUN] = data.start_run(res, campaign, int(batch_size))
        except DashboardError as err:
            st.session_state.pop(LAST_RUN, None)
            with sidebar:
                show_error(err)
    if no_machine:
        sidebar.caption("Run now needs the Pipeline stack (its StateMachineArn output).")
    run: data.RunStarted | None = st.session_state.get(LAST_RUN)
    if run is not None:
        sidebar.success(
            f"Started **{run.name}** at {when(run.started)}.\n\n"
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
    cols[0].metric("Raw", mine.raw, help="Clips that reached the raw zone")
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


def executions(res: Resources) -> None:
    """Recent executions, re-read on a timer (a fragment), so a started run is seen to finish."""
    st.subheader("Recent executions")
    interval = data.refresh_interval_s()
    st.fragment(_executions_view, run_every=interval)(res, interval)


def _executions_view(res: Resources, interval: int) -> None:
    with section():
        st.caption(f"Refreshed every {interval} s while this page is open.")
        rows = data.recent_executions(res, period=int(time.time() // interval))
        _executions_table(res, rows)


def _executions_table(res: Resources, rows: list[data.Execution]) -> None:
    if not rows:
        st.info("No executions yet." if res.state_machine_arn else "No state machine known.")
        return
    st.dataframe(
        [
            {
                "status": e.status,
                "campaign": e.campaign or "(configured)",
                "batch size": str(e.batch_size) if e.batch_size else "(configured)",
                "started": when(e.started),
                "stopped": when(e.stopped),
                "duration (s)": e.duration_s,
                "name": e.name,
            }
            for e in rows
        ],
        hide_index=True,
        width="stretch",
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
                st.image(data.presigned_url(res, item["thumbnail_key"]), caption=title)
            else:
                st.markdown(f"**{title}**")
            labels = item.get("top_labels") or []
            st.caption("Labels: " + (", ".join(labels[:6]) if labels else "none"))


def player(res: Resources, processed: list[dict[str, Any]]) -> None:
    """One clip as it landed: the MP4 proxy and the HLS ladder, both from the processed bucket."""
    st.subheader("Player")
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
            st.video(data.presigned_url(res, item["mp4_key"]))
            st.caption(f"`{item['mp4_key']}`")
        else:
            st.caption("No MP4 proxy for this clip.")
    with hls, section():
        st.markdown("**HLS ladder**")
        hls_ladder(res, item)


def hls_ladder(res: Resources, item: dict[str, Any]) -> None:
    key = item.get("hls_key")
    if not key:
        st.caption("No HLS ladder for this clip.")
        return
    ladder = data.hls_ladder(res, key)
    if not res.local:
        st.info(player_lib.HLS_ON_AWS)
    else:
        script = player_lib.hls_script()
        if script is None:
            st.warning(player_lib.MISSING_HLS_JS)
        else:
            signed = data.signed_ladder(res, ladder)
            st.iframe(
                player_lib.player_html(data.presigned_url(res, key), signed, script),
                height="content",
                alt=player_lib.PLAYER_TITLE,
            )
    rungs = ", ".join(rung.label for rung in ladder.rungs) or "none"
    st.caption(f"Rungs: {rungs}  \n`{key}`")


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
    st.dataframe(
        [
            {
                "asset": hit.get("asset_id"),
                "campaign": hit.get("campaign"),
                "title": hit.get("title"),
                "label": hit.get("label"),
                "confidence": hit.get("confidence"),
                "status": hit.get("status"),
                "labels_key": hit.get("labels_key"),
            }
            for hit in hits
        ],
        hide_index=True,
        width="stretch",
    )


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
    st.caption(f"Campaign **{campaign}** · configuration `{res.config_parameter}`")

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
    summaries(res, processed)
    with section():
        search(res)
    with st.expander("Configuration document"):
        st.code(config.to_json(), language="json")
