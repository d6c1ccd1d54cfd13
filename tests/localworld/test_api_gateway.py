"""The local API Gateway: the deployed HTTP API served on loopback as API Gateway v2 serves it.

One world for the module (``server_port=0``): the real jobs API handler behind the adapter,
callers are IAM users created in the world. The scenarios check what API Gateway itself
decides (signatures, ``execute-api:Invoke``, routes, limits, the 2.0 event and response) and
what the S3 guard in front of the world's server refuses; the pure pieces (route selection,
response translation, throttling) are checked without a world at the end.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
import requests
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from localworld import World, WorldOptions, runtime
from localworld.api_gateway import (
    GatewayError,
    Route,
    Throttle,
    _Bucket,
    check_event,
    create_invoker,
    match_route,
    translate_response,
)
from localworld.deploy import Deployer
from localworld.template import Resolver
from tests.conftest import SynthesizedApp

API_HANDLER = "lambdas.api.handler.handler"
# The top-level and requestContext fields of the payload format 2.0 event, as AWS documents
# them ("Working with AWS Lambda proxy integrations for HTTP APIs"); optional ones in brackets.
EVENT_FIELDS = {"version", "routeKey", "rawPath", "rawQueryString", "headers", "requestContext",
                "isBase64Encoded"}  # fmt: skip
OPTIONAL_EVENT_FIELDS = {"cookies", "queryStringParameters", "pathParameters", "stageVariables",
                         "body"}  # fmt: skip
CONTEXT_FIELDS = {"accountId", "apiId", "authorizer", "domainName", "domainPrefix", "http",
                  "requestId", "routeKey", "stage", "time", "timeEpoch"}  # fmt: skip
IAM_FIELDS = {"accessKey", "accountId", "callerId", "cognitoIdentity", "principalOrgId",
              "userArn", "userId"}  # fmt: skip


@pytest.fixture(scope="module")
def world(synthesized: SynthesizedApp) -> Iterator[World]:
    with World(synthesized.templates, WorldOptions(env="Dev", server_port=0)) as local:
        yield local
        assert not any(api.errors for api in local.apis.values())


@pytest.fixture(scope="module")
def caller(world: World) -> dict[str, str]:
    return world.api_user("api-test-device")


def call(world: World, user: dict[str, str], method: str, path: str, **kwargs: Any) -> Any:
    return world.call_api(user, method, path, **kwargs)


def api_events(since: int) -> list[dict[str, Any]]:
    """Events the API function got after the ``since``-th invocation of the world."""
    return [c.event for c in runtime.LOG.calls[since:] if c.handler == API_HANDLER]


def signed_headers(
    world: World, user: dict[str, str], method: str, path: str, *, at: datetime | None = None
) -> dict[str, str]:
    """SigV4 headers for a body-less request, signed at ``at`` (now by default)."""
    request = AWSRequest(method=method, url=f"{world.api_url}{path}")
    signer = SigV4Auth(
        Credentials(user["access_key_id"], user["secret_access_key"]), "execute-api", "us-east-1"
    )
    moment = (at or datetime.now(UTC)).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        signer.add_auth(request)
    return dict(request.headers.items())


# -- the 2.0 event -------------------------------------------------------------------------------
def test_the_handler_gets_the_payload_format_2_0_event_api_gateway_sends(
    world: World, caller: dict[str, str]
) -> None:
    # Given a signed request with a path parameter, a repeated query parameter and cookies
    since = len(runtime.LOG.calls)
    status, answer = call(world, caller, "GET", "/jobs/abc%20def?tag=a&tag=b&q=x%20y")
    assert world.api_url
    url = f"{world.api_url}/jobs/abc?x=1"
    headers = {**signed_headers(world, caller, "GET", "/jobs/abc?x=1"), "Cookie": "a=1; b=2"}
    with_cookies = requests.get(url, headers=headers, timeout=10)

    # Then the handler answered both (no such job) and got the documented event
    # (Powertools matches its own routes on rawPath, so it names the id as it came, encoded.)
    assert (status, answer) == (404, {"message": "no job 'abc%20def'"})
    assert with_cookies.status_code == 404
    first, second = api_events(since)
    for event in (first, second):
        check_event(event)  # Powertools' parser model of the 2.0 event
        assert EVENT_FIELDS <= set(event) <= EVENT_FIELDS | OPTIONAL_EVENT_FIELDS
        assert set(event["requestContext"]) == CONTEXT_FIELDS
        assert set(event["requestContext"]["authorizer"]) == {"iam"}
        assert set(event["requestContext"]["authorizer"]["iam"]) == IAM_FIELDS
    api_id = world.http_api.api_id
    assert first["version"] == "2.0" and first["routeKey"] == "GET /jobs/{job_id}"
    assert (first["rawPath"], first["rawQueryString"]) == ("/jobs/abc%20def", "tag=a&tag=b&q=x%20y")
    assert first["queryStringParameters"] == {"tag": "a,b", "q": "x y"}
    assert first["pathParameters"] == {"job_id": "abc def"}
    assert first["isBase64Encoded"] is False and "body" not in first and "cookies" not in first
    assert all(name == name.lower() for name in first["headers"])
    assert first["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", first["headers"]["x-amzn-trace-id"])
    context = first["requestContext"]
    assert context["accountId"] == world.options.account and context["apiId"] == api_id
    assert context["domainName"] == f"{api_id}.execute-api.{world.options.region}.amazonaws.com"
    assert context["domainPrefix"] == api_id
    assert (context["stage"], context["routeKey"]) == ("$default", "GET /jobs/{job_id}")
    assert context["http"] == {
        "method": "GET",
        "path": "/jobs/abc%20def",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": first["headers"]["user-agent"],
    }
    assert re.fullmatch(r"[A-Za-z0-9+/]{15}=", context["requestId"])
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["time"])
    assert abs(context["timeEpoch"] / 1000 - time.time()) < 60
    user = world.client("iam").get_user(UserName="api-test-device")["User"]
    assert context["authorizer"]["iam"] == {
        "accessKey": caller["access_key_id"],
        "accountId": world.options.account,
        "callerId": user["UserId"],
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": caller["arn"],
        "userId": user["UserId"],
    }
    # And the Cookie header became the cookies field, as Powertools reads it
    assert second["cookies"] == ["a=1", "b=2"] and "cookie" not in second["headers"]
    wrapped = APIGatewayProxyEventV2(second)
    assert (wrapped.path, wrapped.http_method, wrapped.path_parameters) == (
        "/jobs/abc",
        "GET",
        {"job_id": "abc"},
    )
    assert wrapped.resolved_cookies_field == {"a": "1", "b": "2"}
    assert wrapped.request_context.authorizer.iam.user_arn == caller["arn"]


def test_a_json_body_is_passed_as_text_and_a_query_reaches_the_handler(
    world: World, caller: dict[str, str]
) -> None:
    since = len(runtime.LOG.calls)
    # When the caller creates a job (a JSON body) and lists with a query the handler refuses
    created, job = call(
        world,
        caller,
        "POST",
        "/jobs",
        body={
            "filename": "clip.mp4",
            "content_type": "video/mp4",
            "size_bytes": 3,
            "sha256": hashlib.sha256(b"abc").hexdigest(),
        },
    )
    refused, message = call(world, caller, "GET", "/jobs?limit=0")
    listed, page = call(world, caller, "GET", "/jobs?limit=1")

    # Then the body arrived as text and each query was the handler's to judge
    assert created == 201 and job["status"] == "WAITING_FOR_UPLOAD"
    post = api_events(since)[0]
    assert post["isBase64Encoded"] is False and json.loads(post["body"])["filename"] == "clip.mp4"
    assert post["headers"]["content-type"] == "application/json"
    assert post["routeKey"] == "POST /jobs" and "pathParameters" not in post
    assert refused == 400 and "limit" in message["message"]
    assert listed == 200 and [j["job_id"] for j in page["jobs"]] == [job["job_id"]]


# -- what API Gateway refuses itself -------------------------------------------------------------
def test_an_unsigned_request_is_forbidden_before_the_handler(world: World) -> None:
    since = len(runtime.LOG.calls)
    assert world.api_url
    answer = requests.get(f"{world.api_url}/jobs", timeout=10)
    assert (answer.status_code, answer.json()) == (403, {"message": "Forbidden"})
    assert answer.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert answer.headers["apigw-requestid"]
    assert api_events(since) == []


def test_a_bad_signature_an_unknown_key_and_an_old_date_are_refused(
    world: World, caller: dict[str, str]
) -> None:
    since = len(runtime.LOG.calls)
    wrong = {**caller, "secret_access_key": "not-the-secret"}
    unknown = {**caller, "access_key_id": "AKIAUNKNOWN000000000"}
    bad_signature = call(world, wrong, "GET", "/jobs")
    bad_key = call(world, unknown, "GET", "/jobs")
    old = requests.get(
        f"{world.api_url}/jobs",
        headers=signed_headers(
            world, caller, "GET", "/jobs", at=datetime.now(UTC) - timedelta(minutes=20)
        ),
        timeout=10,
    )

    assert bad_signature[0] == 403
    assert bad_signature[1]["message"].startswith(
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method."
    )
    assert (
        "The Canonical String for this request should have been\n'GET\n/jobs\n"
        in (bad_signature[1]["message"])
    )
    assert bad_key == (403, {"message": "The security token included in the request is invalid."})
    assert old.status_code == 403 and old.json()["message"].startswith("Signature expired: ")
    assert api_events(since) == []


def test_a_caller_without_execute_api_invoke_is_refused_and_the_denial_recorded(
    world: World,
) -> None:
    # Given an IAM user with keys but no policy allowing execute-api:Invoke
    stranger = world.api_user("no-grant-device", may_invoke=False)
    since = len(runtime.LOG.calls)

    # When it calls the API, with a valid signature
    status, answer = call(world, stranger, "GET", "/jobs")

    # Then API Gateway refuses it as AWS does, naming the route's execute-api ARN
    resource = (
        f"arn:aws:execute-api:{world.options.region}:{world.options.account}:"
        f"{world.http_api.api_id}/$default/GET/jobs"
    )
    assert status == 403
    assert answer["Message"].startswith(
        f"User: {stranger['arn']} is not authorized to perform: execute-api:Invoke on "
        f"resource: {resource}"
    )
    assert api_events(since) == []
    # And the world recorded it like every other denial
    assert world.permissions is not None
    (denial,) = world.permissions.new_denials()
    assert (denial.action, denial.resource) == ("execute-api:Invoke", resource)
    assert denial.who == f"API caller {stranger['arn']}"


def test_a_grant_scoped_to_one_route_allows_that_route_only(world: World) -> None:
    # Given a user allowed GET on /jobs and /jobs/* only
    arn = (
        f"arn:aws:execute-api:{world.options.region}:{world.options.account}:"
        f"{world.http_api.api_id}/*/GET/jobs"
    )
    reader = create_invoker(world.client("iam"), "read-only-device", [arn, f"{arn}/*"])

    # Then listing works and creating a job is refused
    assert call(world, reader, "GET", "/jobs")[0] == 200
    status, answer = call(world, reader, "POST", "/jobs", body={})
    assert status == 403 and "/$default/POST/jobs" in answer["Message"]
    assert world.permissions is not None
    assert [d.action for d in world.permissions.new_denials()] == ["execute-api:Invoke"]


def test_an_unknown_route_is_not_found_and_a_large_payload_too_large(
    world: World, caller: dict[str, str]
) -> None:
    since = len(runtime.LOG.calls)
    unknown = call(world, caller, "DELETE", "/jobs")
    nested = call(world, caller, "GET", "/jobs/a/b/c")
    assert world.api_url
    large = requests.post(f"{world.api_url}/jobs", data=b"x" * (10 * 1024 * 1024 + 1), timeout=30)

    assert unknown == (404, {"message": "Not Found"}) and nested == unknown
    assert (large.status_code, large.json()) == (413, {"message": "Request Entity Too Large"})
    assert api_events(since) == []


def test_a_handler_exception_is_an_internal_server_error(
    world: World, caller: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import lambdas.api.handler as module

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the handler broke")

    monkeypatch.setattr(module.app, "resolve", broken)
    since = len(runtime.LOG.calls)

    status, answer = call(world, caller, "GET", "/jobs")

    assert (status, answer) == (500, {"message": "Internal Server Error"})
    (invocation,) = [c for c in runtime.LOG.calls[since:] if c.handler == API_HANDLER]
    assert invocation.error_type == "RuntimeError"


def test_api_gateway_invokes_the_function_only_as_its_resource_policy_allows(
    world: World, caller: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the function's policy without the template's AWS::Lambda::Permission statements
    assert world.permissions is not None
    (function,) = world.http_api.function_arns()
    monkeypatch.setitem(world.permissions.resource_policies, function, [])
    since = len(runtime.LOG.calls)

    status, answer = call(world, caller, "GET", "/jobs")

    assert (status, answer) == (500, {"message": "Internal Server Error"})
    assert api_events(since) == []
    (denial,) = world.permissions.new_denials()
    assert (denial.who, denial.action, denial.resource) == (
        "apigateway.amazonaws.com",
        "lambda:InvokeFunction",
        function,
    )


# -- what the world deployed ---------------------------------------------------------------------
def test_routes_stage_and_access_logs_come_from_the_template(
    world: World, synthesized: SynthesizedApp, caller: dict[str, str]
) -> None:
    resources = synthesized.templates["Dev/Pipeline"]["Resources"].values()
    declared = {
        r["Properties"]["RouteKey"] for r in resources if r["Type"] == "AWS::ApiGatewayV2::Route"
    }
    (stage,) = [r["Properties"] for r in resources if r["Type"] == "AWS::ApiGatewayV2::Stage"]

    api = world.http_api
    assert {r.route_key for r in api.routes} == declared
    assert all(r.authorization_type == "AWS_IAM" for r in api.routes)
    served = api.stages[stage["StageName"]]
    settings = stage["DefaultRouteSettings"]
    assert served.throttle == Throttle(
        float(settings["ThrottlingRateLimit"]), int(settings["ThrottlingBurstLimit"])
    )
    assert world.world_file()["api_url"] == world.api_url
    # And each request leaves an access-log line in the stage's format, in its log group
    call(world, caller, "GET", "/jobs")
    line = json.loads(world.apis[api.api_id].access_log[-1])
    assert (line["route"], line["status"], line["caller"]) == ("GET /jobs", "200", caller["arn"])
    group = str(served.access_log_destination).split(":log-group:", 1)[1].removesuffix(":*")
    logged = world.client("logs").get_log_events(
        logGroupName=group, logStreamName="api-gateway-access"
    )["events"]
    assert json.loads(logged[-1]["message"]) == line


def test_jwt_authorizers_and_cognito_are_skipped_with_the_routes_that_need_them(
    world: World,
) -> None:
    # Given an API whose /jobs route takes a Cognito JWT (what api.cognito=True synthesizes)
    template = {
        "Resources": {
            "Pool": {"Type": "AWS::Cognito::UserPool", "Properties": {}},
            "Api": {
                "Type": "AWS::ApiGatewayV2::Api",
                "Properties": {"Name": "Jwt", "ProtocolType": "HTTP"},
            },
            "Users": {
                "Type": "AWS::ApiGatewayV2::Authorizer",
                "Properties": {
                    "ApiId": {"Ref": "Api"},
                    "AuthorizerType": "JWT",
                    "JwtConfiguration": {"Issuer": {"Fn::GetAtt": ["Pool", "ProviderURL"]}},
                },
            },
            "Open": {
                "Type": "AWS::ApiGatewayV2::Route",
                "Properties": {"ApiId": {"Ref": "Api"}, "RouteKey": "GET /health"},
            },
            "Guarded": {
                "Type": "AWS::ApiGatewayV2::Route",
                "Properties": {
                    "ApiId": {"Ref": "Api"},
                    "RouteKey": "GET /jobs",
                    "AuthorizationType": "JWT",
                    "AuthorizerId": {"Ref": "Users"},
                },
            },
        }
    }
    deployer = Deployer(world._session, Resolver(world.options.region, world.options.account))

    # When the world deploys it (into the same moto, beside the jobs API)
    deployment = deployer.deploy("Jwt-Test", template)

    # Then Cognito and the authorizer are skipped with the reason, and so is the route using them
    assert "no Cognito user pools locally" in deployment.skipped["Pool"]
    assert "JWT and Lambda authorizers are not served" in deployment.skipped["Users"]
    assert deployment.skipped["Guarded"].startswith("AWS::ApiGatewayV2::Route (needs Users")
    (api,) = deployer.http_apis.values()
    assert [r.route_key for r in api.routes] == ["GET /health"]


# -- S3's checks in front of the world's server ---------------------------------------------------
def test_presigned_uploads_are_refused_as_s3_refuses_them(
    world: World, caller: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b"twelve bytes"
    _, job = call(
        world,
        caller,
        "POST",
        "/jobs",
        body={
            "filename": "probe.mp4",
            "content_type": "video/mp4",
            "size_bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        },
    )
    url, headers = job["upload"]["url"], job["upload"]["headers"]

    def put(data: bytes, **changes: str) -> requests.Response:
        return requests.put(url, data=data, headers={**headers, **changes}, timeout=10)

    wrong_bytes = put(b"twelve bytez")
    wrong_length = put(body + b"!", **{"Content-Length": str(len(body) + 1)})
    assert world._server is not None
    guard = world._server.guard
    monkeypatch.setattr(guard, "clock", lambda: time.time() + 3601)  # an hour later
    expired = put(body)
    monkeypatch.undo()

    assert wrong_bytes.status_code == 400 and "<Code>BadDigest</Code>" in wrong_bytes.text
    assert wrong_length.status_code == 403 and "SignatureDoesNotMatch" in wrong_length.text
    assert expired.status_code == 403 and "Request has expired" in expired.text
    assert world.keys(world.raw_bucket, f"uploads/jobs/{job['job_id']}/") == []
    assert put(body).status_code == 200


def test_only_objects_arriving_in_the_raw_bucket_are_announced(world: World) -> None:
    s3 = world.client("s3")
    served = world._session.client(
        "s3", region_name=world.options.region, endpoint_url=world.endpoint_url
    )
    before = len(world.drain_events())
    served.put_object(Bucket=world.processed_bucket, Key="video/probe/x.json", Body=b"{}")
    served.put_object(Bucket=world.raw_bucket, Key="scratch/probe.bin", Body=b"probe")
    s3.put_object(Bucket=world.raw_bucket, Key="scratch/in-process.bin", Body=b"probe")

    delivered = world.drain_events()[before:]
    (only,) = delivered  # in-process puts are the test's to deliver (World.upload)
    detail = only["event"]["detail"]
    assert (detail["bucket"]["name"], detail["object"]["key"]) == (
        world.raw_bucket,
        "scratch/probe.bin",
    )
    assert detail["reason"] == "PutObject" and detail["source-ip-address"] == "127.0.0.1"
    assert only["answers"] == []  # the upload trigger's rule matches uploads/ only


# -- the pure pieces -----------------------------------------------------------------------------
def routes(*keys: str) -> list[Route]:
    return [Route(str(i), key, "NONE", "integrations/x") for i, key in enumerate(keys)]


def test_route_selection_prefers_literals_then_variables_then_greedy_then_default() -> None:
    table = routes(
        "GET /jobs/{job_id}",
        "GET /jobs/new",
        "ANY /jobs/{job_id}",
        "GET /files/{path+}",
        "$default",
    )

    def chosen(method: str, path: str) -> tuple[str, dict[str, str]]:
        found = match_route(table, method, path)
        assert found is not None
        return found.route.route_key, found.path_parameters

    assert chosen("GET", "/jobs/new") == ("GET /jobs/new", {})
    assert chosen("GET", "/jobs/a%2Fb") == ("GET /jobs/{job_id}", {"job_id": "a/b"})
    assert chosen("POST", "/jobs/7") == ("ANY /jobs/{job_id}", {"job_id": "7"})
    assert chosen("GET", "/files/a/b/c.mp4") == ("GET /files/{path+}", {"path": "a/b/c.mp4"})
    assert chosen("GET", "/jobs/7/extra") == ("$default", {})
    assert match_route(routes("GET /jobs"), "GET", "/nope") is None


def test_response_translation_follows_the_2_0_format() -> None:
    full = json.dumps(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain"},
            "cookies": ["a=1; Secure"],
            "body": base64.b64encode(b"\x00binary").decode(),
            "isBase64Encoded": True,
        }
    ).encode()
    assert translate_response(full) == (
        201,
        [("Content-Type", "text/plain"), ("Set-Cookie", "a=1; Secure")],
        b"\x00binary",
    )
    # Without statusCode, API Gateway infers 200 and sends the JSON itself.
    assert translate_response(b'{"hello": "world"}') == (
        200,
        [("Content-Type", "application/json")],
        b'{"hello": "world"}',
    )
    for unreadable in (b"not json", b'{"statusCode": "200"}', b'{"statusCode": 200, "body": {}}'):
        with pytest.raises(GatewayError) as err:
            translate_response(unreadable)
        assert (err.value.status, err.value.message) == (500, "Internal Server Error")


def test_the_throttle_is_a_token_bucket_of_the_stage_settings() -> None:
    now = [100.0]
    bucket = _Bucket(Throttle(rate_per_s=2.0, burst=3), lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back at 2 per second
    assert [bucket.take() for _ in range(2)] == [True, False]
    assert _Bucket(Throttle(None, None), lambda: 0.0).take()
