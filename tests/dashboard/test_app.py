"""The dashboard page, driven with Streamlit's AppTest against a moto server on loopback."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest

from dashboard_app import data
from dashboard_app import world as dashboard_world
from tests.dashboard.conftest import assert_label_search, deny, stored_config, write_world


def metrics(at: Any) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def errors(at: Any) -> list[str]:
    return [e.value for e in at.error]


def markdown(at: Any) -> str:
    return "\n".join(m.value for m in at.markdown)


# -- views ---------------------------------------------------------------------------------------
def test_page_shows_counters_executions_failures_summaries_and_gallery(world, app):
    # Given the demo world: travel active, 12 raw / 9 processed / 2 failed / 1 in progress
    # When the page renders
    at = app()

    # Then nothing failed and the counters come from the catalog's counter items
    assert not at.exception
    assert not errors(at)
    assert metrics(at) == {"Raw": "12", "Processed": "9", "Failed": "2", "In progress": "1"}
    per_campaign = at.dataframe[0].value
    assert per_campaign.set_index("campaign")["raw"].to_dict() == {
        "travel": 12,
        "tech": 4,
        "nature": 4,
        "uploads": 0,  # uploaded files are filed under their own campaign
    }
    # And the four seeded executions with campaign and batch size from their input
    runs = at.dataframe[1].value.set_index("name")
    assert {"schedule-weekly", "dashboard-nature-demo-2", "dashboard-tech-demo-3"} <= set(
        runs.index
    )
    assert runs.loc["dashboard-nature-demo-2", "campaign"] == "nature"
    assert runs.loc["dashboard-nature-demo-2", "batch size"] == "5"
    assert runs.loc["dashboard-tech-demo-3", "status"] == "FAILED"
    assert runs.loc["schedule-weekly", "campaign"] == "(configured)"
    assert set(runs.columns) >= {"status", "started", "stopped", "duration (s)"}
    # And the failed assets with their reason
    failed = at.dataframe[2].value
    assert len(failed) == 2
    assert failed["reason"].str.len().min() > 10
    # And a gallery of 9 clips with thumbnail, labels and a video preview from presigned URLs
    images = at.image
    assert len(images) == 9
    assert all("X-Amz-Signature=" in img.value[0] and ".jpg?" in img.value[0] for img in images)
    assert images[0].captions == ["Travel clip 9"]
    videos = at.get("video")
    assert len(videos) == 9
    assert all("X-Amz-Signature=" in v.proto.url and "_proxy.mp4?" in v.proto.url for v in videos)
    captions = [c.value for c in at.caption]
    assert sum(c.startswith("Labels: ") for c in captions) == 9
    # And three labels.json summaries: readable table and the raw document
    assert sum(c.startswith("license: ") for c in captions) == 3
    assert len(at.json) == 3
    raw = json.loads(at.json[0].value)
    assert raw["schema_version"] == "1.0"
    assert raw["summary"]["top_labels"]
    # And where the data comes from
    assert any("local world" in c for c in at.sidebar.caption.values)


def test_empty_catalog_says_so_and_invites_a_run(empty_world, tmp_path, clean_env, app):
    # Given a world without any asset
    clean_env.setenv("MEDIA_PIPELINE_WORLD", str(write_world(empty_world, tmp_path / "e.json")))

    # When the page renders
    at = app()

    # Then the counters are zero and the page says the catalog is empty
    assert not errors(at)
    assert metrics(at)["Raw"] == "0"
    assert any("no assets for campaign travel" in i.value for i in at.info)
    assert "Nothing processed yet." in at.caption.values
    assert not at.image


def test_search_by_label_uses_the_label_index(world, app, aws):
    # Given the demo world
    at = app()

    # When searching for a label in lower case
    at.text_input(key="label_search").input("beach").run()

    # Then every hit is an asset indexed under "Beach", with its catalog record
    assert_label_search(at, aws["dynamodb"], world.catalog_table)
    assert set(at.dataframe[-1].value["status"]) == {"PROCESSED"}


def test_search_without_hits_says_so(world, app):
    at = app()
    at.text_input(key="label_search").input("Submarine").run()
    assert any("No asset is labelled 'Submarine'" in i.value for i in at.info)


# -- controls ------------------------------------------------------------------------------------
def test_campaign_choice_is_saved_to_the_parameter(world, app, aws):
    # Given the page with travel active
    at = app()
    assert at.sidebar.selectbox(key="campaign").value == "travel"

    # When the editor picks nature
    at.sidebar.selectbox(key="campaign").select("nature").run()

    # Then the parameter says nature (so the next scheduled run uses it) and the rest is intact
    assert stored_config(aws, world) == {
        "active_campaign": "nature",
        "campaigns": ["travel", "tech", "nature"],
        "batch_sizes": {"video": 2},
    }
    # And the page shows nature's counters and confirms the change
    assert metrics(at)["Raw"] == "4"
    assert any("Active campaign is now **nature**" in s.value for s in at.sidebar.success)
    # And a new session starts from the stored choice
    assert app().sidebar.selectbox(key="campaign").value == "nature"


def test_batch_size_is_saved_to_the_parameter(world, app, aws):
    # Given the page with the stored batch size (2) on the slider
    at = app()
    assert at.sidebar.slider(key="batch_size").value == 2

    # When the editor sets 7
    at.sidebar.slider(key="batch_size").set_value(7).run()

    # Then the parameter holds 7 and the campaign is unchanged
    stored = stored_config(aws, world)
    assert stored["batch_sizes"] == {"video": 7}
    assert stored["active_campaign"] == "travel"
    assert any("batch size is now **7**" in s.value for s in at.sidebar.success)
    assert app().sidebar.slider(key="batch_size").value == 7


def test_run_now_starts_an_execution_with_the_chosen_input(world, app, aws):
    # Given tech chosen with batch size 4
    at = app()
    at.sidebar.selectbox(key="campaign").select("tech").run()
    at.sidebar.slider(key="batch_size").set_value(4).run()

    # When Run now is pressed
    at.sidebar.button(key="run_now").click().run()

    # Then one new execution exists, uniquely named, with the campaign and batch size as input
    listed = aws["stepfunctions"].list_executions(stateMachineArn=world.state_machine_arn)
    ours = [e for e in listed["executions"] if e["name"].startswith("dashboard-tech-2")]
    assert len(ours) == 1
    described = aws["stepfunctions"].describe_execution(executionArn=ours[0]["executionArn"])
    assert json.loads(described["input"]) == {"campaign": "tech", "batch_sizes": {"video": 4}}
    # And the page links to the execution in the console and lists it among recent executions
    started = " ".join(s.value for s in at.sidebar.success)
    assert (
        "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
        f"#/v2/executions/details/{ours[0]['executionArn']}"
    ) in started
    assert ours[0]["name"] in set(at.dataframe[1].value["name"])

    # When pressed again, a second execution with a different name starts
    at.sidebar.button(key="run_now").click().run()
    listed = aws["stepfunctions"].list_executions(stateMachineArn=world.state_machine_arn)
    assert len([e for e in listed["executions"] if e["name"].startswith("dashboard-tech-2")]) == 2


def test_refresh_rereads_the_catalog(world, app, aws):
    def count_failure(delta: int) -> None:
        aws["dynamodb"].update_item(
            TableName=world.catalog_table,
            Key={"pk": {"S": "CAMPAIGN#travel"}, "sk": {"S": "STATUS#FAILED"}},
            UpdateExpression="ADD #n :d",
            ExpressionAttributeNames={"#n": "count"},
            ExpressionAttributeValues={":d": {"N": str(delta)}},
        )

    # Given the page rendered once (counters cached)
    at = app()
    assert metrics(at)["Failed"] == "2"
    # And another failure recorded meanwhile
    count_failure(+1)
    try:
        # When the page reruns, the cached counters stay; when Refresh is pressed, they are read
        assert metrics(at.run())["Failed"] == "2"
        at.sidebar.button(key="refresh").click().run()

        # Then the new count shows
        assert metrics(at)["Failed"] == "3"
    finally:
        count_failure(-1)


def test_executions_are_reread_each_refresh_period(world, app, aws, clean_env):
    # Given the page open with a 2 s refresh period (executions are cached for 15 s otherwise)
    clean_env.setenv("MEDIA_PIPELINE_REFRESH_S", "2")
    at = app()
    assert "Refreshed every 2 s while this page is open." in [c.value for c in at.caption]
    names = set(at.dataframe[1].value["name"])
    # And a run started elsewhere (the schedule, the console) meanwhile
    started = aws["stepfunctions"].start_execution(
        stateMachineArn=world.state_machine_arn, name=f"console-{time.time_ns()}", input="{}"
    )["executionArn"]
    name = started.rsplit(":", 1)[1]
    assert name not in names

    # When the next period begins and the view reruns (the browser's timer does this; the
    # real timer is covered by the Chromium test)
    time.sleep(2 - time.time() % 2 + 0.05)
    at.run()

    # Then the new run is listed, well before the 15 s read cache would have expired
    assert name in set(at.dataframe[1].value["name"])


@pytest.mark.parametrize("value", ["0", "1.5", "soon", "86400", "²"])
def test_a_bad_refresh_interval_is_a_clear_message(world, app, clean_env, value):
    # Given a refresh interval that is not whole seconds from 2 to 3600
    clean_env.setenv("MEDIA_PIPELINE_REFRESH_S", value)

    # When the page renders
    at = app()

    # Then the executions section, under its heading, names the variable and the value, and the
    # rest still renders
    assert not at.exception
    assert "Recent executions" in [h.value for h in at.subheader]
    assert errors(at) and f"MEDIA_PIPELINE_REFRESH_S={value!r}" in errors(at)[0]
    assert metrics(at)["Raw"] == "12"


def test_run_now_is_disabled_without_a_state_machine(world, tmp_path, clean_env, app):
    # Given a world file without a state machine (Pipeline stack not deployed)
    path = write_world(world, tmp_path / "no-sfn.json", state_machine_arn="")
    clean_env.setenv("MEDIA_PIPELINE_WORLD", str(path))

    # When the page renders
    at = app()

    # Then the data still shows, and Run now is disabled with the reason
    assert metrics(at)["Raw"] == "12"
    assert at.sidebar.button(key="run_now").disabled
    assert any("Pipeline stack" in c for c in at.sidebar.caption.values)


# -- failures are messages, never stack traces -------------------------------------------------------
def test_missing_permission_on_the_catalog_is_a_clear_message(world, app, clean_env):
    # Given an identity that may not query the catalog
    deny(clean_env, "dynamodb", "Query")

    # When the page renders
    at = app()

    # Then it names the problem and the operation, without an exception
    assert not at.exception
    messages = errors(at)
    assert messages
    assert all("Permission denied" in m and "Query" in m for m in messages)
    # And sections that need other permissions still work
    assert len(at.dataframe[0].value) >= 4  # recent executions


def test_missing_permission_on_the_parameter_stops_the_page_with_a_message(world, app, clean_env):
    deny(clean_env, "ssm", "GetParameter")
    at = app()
    assert not at.exception
    assert len(errors(at)) == 1
    assert "Permission denied" in errors(at)[0]
    assert "GetParameter" in errors(at)[0]
    assert not at.sidebar.selectbox


def test_saving_without_permission_keeps_the_page_and_says_why(world, app, aws, clean_env):
    at = app()
    deny(clean_env, "ssm", "PutParameter")
    at.sidebar.selectbox(key="campaign").select("tech").run()
    assert not at.exception
    assert any("Permission denied" in e.value for e in at.sidebar.error)
    assert stored_config(aws, world)["active_campaign"] == "travel"


def test_missing_credentials_is_a_clear_message(moto_endpoint, world, app, clean_env, tmp_path):
    # Given explicit resource names, but no credentials anywhere
    clean_env.delenv("MEDIA_PIPELINE_WORLD")
    clean_env.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    clean_env.setenv("MEDIA_PIPELINE_CATALOG_TABLE", world.catalog_table)
    clean_env.setenv("MEDIA_PIPELINE_CONFIG_PARAMETER", world.config_parameter)
    clean_env.setenv("MEDIA_PIPELINE_PROCESSED_BUCKET", world.processed_bucket)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        clean_env.delenv(name, raising=False)
    clean_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    clean_env.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    clean_env.setenv("AWS_EC2_METADATA_DISABLED", "true")
    data.clear_all()  # sessions resolve credentials once

    # When the page renders
    at = app()

    # Then it says credentials are missing and how to fix it
    assert not at.exception
    assert len(errors(at)) == 1
    assert "No AWS credentials" in errors(at)[0]
    assert "make dashboard" in errors(at)[0]


def test_explicit_variables_are_used(moto_endpoint, world, app, clean_env):
    # Given the resource names as MEDIA_PIPELINE_* variables and AWS_ENDPOINT_URL (no world file)
    clean_env.delenv("MEDIA_PIPELINE_WORLD")
    clean_env.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    clean_env.setenv("MEDIA_PIPELINE_CATALOG_TABLE", world.catalog_table)
    clean_env.setenv("MEDIA_PIPELINE_CONFIG_PARAMETER", world.config_parameter)
    clean_env.setenv("MEDIA_PIPELINE_PROCESSED_BUCKET", world.processed_bucket)
    clean_env.setenv("MEDIA_PIPELINE_STATE_MACHINE_ARN", world.state_machine_arn)

    at = app()

    assert not errors(at)
    assert metrics(at)["Processed"] == "9"
    assert any("MEDIA_PIPELINE_* variables" in c for c in at.sidebar.caption.values)


def test_stack_not_found_is_a_clear_message(moto_endpoint, app, clean_env):
    # Given no world and no variables: discovery by environment name, and nothing deployed
    clean_env.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    clean_env.setenv("MEDIA_PIPELINE_ENV", "dev")

    at = app()

    assert not at.exception
    assert len(errors(at)) == 1
    assert "Stack not found" in errors(at)[0]
    assert "Dev-Stateful" in errors(at)[0]


def test_stack_outputs_are_discovered_by_environment_name(
    moto_endpoint, world, app, clean_env, aws
):
    # Given Prod stacks whose outputs name the world's resources
    clean_env.delenv("MEDIA_PIPELINE_WORLD")
    clean_env.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    clean_env.setenv("MEDIA_PIPELINE_ENV", "prod")
    cfn = dashboard_world._session().client("cloudformation", endpoint_url=moto_endpoint)
    outputs = {
        "Prod-Stateful": {
            "CatalogTableName": world.catalog_table,
            "CampaignParameterName": world.config_parameter,
            "ProcessedBucketName": world.processed_bucket,
            "RawBucketName": world.raw_bucket,
        },
        "Prod-Pipeline": {"StateMachineArn": world.state_machine_arn},
    }
    for name, values in outputs.items():
        template = {
            "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in values.items()},
        }
        with contextlib.suppress(cfn.exceptions.AlreadyExistsException):
            cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))

    # When the page renders
    at = app()

    # Then it found everything through the stack outputs
    assert not errors(at)
    assert metrics(at)["Raw"] == "12"
    assert not at.sidebar.button(key="run_now").disabled
    assert any("Prod-Stateful, Prod-Pipeline" in c for c in at.sidebar.caption.values)


def test_unknown_environment_name_is_a_clear_message(app, clean_env):
    clean_env.setenv("MEDIA_PIPELINE_ENV", "staging")
    at = app()
    assert not at.exception
    assert "not a known environment" in errors(at)[0]


def test_missing_world_file_is_a_clear_message(app, clean_env, tmp_path):
    clean_env.setenv("MEDIA_PIPELINE_WORLD", str(tmp_path / "absent.json"))
    at = app()
    assert "make demo" in errors(at)[0]


# -- helpers -------------------------------------------------------------------------------------
def test_execution_names_are_unique_readable_and_short():
    names = {data.execution_name("a-very-long-campaign-name-of-forty-chars") for _ in range(50)}
    assert len(names) == 50
    assert all(len(n) <= 80 and n.startswith("dashboard-a-very-long") for n in names)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("AccessDeniedException", data.AccessDenied),
        ("UnrecognizedClientException", data.MissingCredentials),
        ("ResourceNotFoundException", data.ResourceMissing),
        ("ThrottlingException", data.DashboardError),
    ],
)
def test_client_errors_become_messages(code, kind):
    from botocore.exceptions import ClientError

    err = ClientError({"Error": {"Code": code, "Message": "m"}}, "Query")
    translated = data.translate(err, "reading")
    assert type(translated) is kind
    assert "Query" in str(translated) or "reading" in str(translated)
