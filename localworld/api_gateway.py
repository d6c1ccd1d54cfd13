"""API Gateway HTTP APIs on loopback: the deployed jobs API, served as API Gateway v2 serves it.

The deployer (``localworld.deploy``) creates each ``AWS::ApiGatewayV2::Api``, ``Integration``,
``Route`` and ``Stage`` in moto and records them here (``HttpApi``): route keys (``POST
/jobs/{job_id}``, ``ANY /x``, ``$default``), each route's ``AuthorizationType`` and integration
(the Lambda function, the payload format version), the stage's throttling and access-log
settings. ``ApiGatewayServer`` serves one API on 127.0.0.1 (a free port), nothing hard-coded.
For each request, in API Gateway's order:

1. the body: over the HTTP API quota of 10 MB, 413 ``{"message":"Request Entity Too Large"}``;
2. the stage (``$default`` at ``/``, a named stage at ``/<name>/``) and its throttling, a token
   bucket per route (the stage's ``DefaultRouteSettings``, a route's ``RouteSettings``): 429
   ``{"message":"Too Many Requests"}``;
3. the route: method and path, with ``{param}`` (one segment) and ``{proxy+}`` (the rest)
   variables, the most specific match first (literal segments before variables, a method
   before ``ANY``), then ``$default``; none: 404 ``{"message":"Not Found"}``;
4. an ``AWS_IAM`` route: the SigV4 ``Authorization`` header (service ``execute-api``, the
   API's region, the date within 15 minutes), the access key's secret looked up as AWS looks it
   up (``localworld.iam.principal_for_key``: an IAM user's key or an STS session in moto, or the
   world's administrator as the account's root user) and the signature recomputed with
   botocore's ``SigV4Auth`` over exactly the signed headers. Answers as API Gateway's: 403
   ``{"message":"Forbidden"}`` without an ``Authorization`` header, 403 ``"The security token
   included in the request is invalid."`` for an unknown key or a wrong session token, 403
   ``"The request signature we calculated does not match the signature you provided. ..."``
   (with the canonical request and string to sign, as API Gateway gives them), 403 ``"Signature
   expired: ..."``, ``"Credential should be scoped to ..."``; then ``execute-api:Invoke`` on
   ``arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<path>`` is decided by the
   world's IAM (``Permissions.require_actor``, the caller's identity policies; a denial is
   recorded like every other and raised by the world later) and refused with 403
   ``{"Message":"User: <arn> is not authorized to perform: execute-api:Invoke on resource:
   <arn> because no identity-based policy allows the execute-api:Invoke action"}``;
5. the payload format 2.0 event, exactly: ``version``, ``routeKey``, ``rawPath``,
   ``rawQueryString``, ``cookies`` (the ``Cookie`` headers, split; they leave ``headers``),
   ``headers`` (lower-cased, repeated ones comma-joined, plus the ``x-forwarded-*`` and
   ``x-amzn-trace-id`` API Gateway adds), ``queryStringParameters`` (decoded, repeated ones
   comma-joined), ``pathParameters``, ``stageVariables``, ``requestContext`` (``accountId``,
   ``apiId``, ``authorizer.iam`` with ``accessKey``, ``accountId``, ``callerId``,
   ``cognitoIdentity: null``, ``principalOrgId: null``, ``userArn``, ``userId``; ``domainName``,
   ``domainPrefix``, ``http`` with ``method``, ``path``, ``protocol``, ``sourceIp``,
   ``userAgent``; ``requestId``, ``routeKey``, ``stage``, ``time``, ``timeEpoch``), ``body``
   and ``isBase64Encoded`` (text content types as text, anything else base64), each optional
   field left out when empty as API Gateway leaves it out; validated against Powertools'
   ``APIGatewayProxyEventV2Model`` before it is sent;
6. the invocation, as ``apigateway.amazonaws.com``: the function's resource policy
   (``AWS::Lambda::Permission``, with ``aws:SourceArn`` =
   ``arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<route path>``) must allow
   it (else 500, and a recorded denial); an event over Lambda's 6 MB synchronous payload limit,
   a function error or an answer API Gateway cannot read is 500
   ``{"message":"Internal Server Error"}``;
7. the answer: a 2.0 response (``statusCode``, ``headers``, ``cookies`` as ``Set-Cookie``
   headers, ``body``, ``isBase64Encoded``), or any other JSON as 200 ``application/json`` with
   that JSON as the body, as API Gateway "infers" it. Every answer carries ``apigw-requestid``;
   API Gateway's own errors carry ``x-amzn-ErrorType``;
8. one access-log line in the stage's ``AccessLogSettings.Format`` (``$context.*`` variables),
   kept (``access_log``) and written to its log group.

Not faithful: JWT and Lambda authorizers are not served (the deployer skips
``AWS::ApiGatewayV2::Authorizer`` and Cognito, and the routes that use them, see
``localworld.deploy``), nor are payload format 1.0, non-Lambda integrations, WebSocket APIs,
CORS preflight answers, custom domains, mutual TLS, SigV4 in the query string, stage variables
in integrations, the account-level throttle (10,000 requests per second) and the 30 s
integration timeout. Account ids are not masked in error messages (AWS masks some). The
throttle is one token bucket per route and stage in this process; AWS's is distributed and
approximate. ``domainName`` is the API's ``execute-api`` host (the loopback address stands in for
it); the ``host`` header is what the client sent, since that is what it signed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from localworld import iam

SERVICE = "execute-api"
# API Gateway's HTTP API quota: a request payload of at most 10 MB.
PAYLOAD_LIMIT_BYTES = 10 * 1024 * 1024
# Lambda: a synchronous invocation's request (the event) is at most 6 MB.
LAMBDA_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
# SigV4: a request is valid 15 minutes either side of its X-Amz-Date.
SIGNATURE_WINDOW = timedelta(minutes=15)
SERVED_AUTHORIZATION = frozenset({"NONE", "AWS_IAM"})
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
# Bodies API Gateway passes as text (isBase64Encoded false); anything else is base64.
_TEXT_TYPE = re.compile(
    r"^(text/[\w.+-]+|application/(json|xml|javascript|x-www-form-urlencoded|[\w.+-]+\+(json|xml)))"
    r"\s*(;.*)?$",
    re.IGNORECASE,
)
_VARIABLE = re.compile(r"^\{([A-Za-z0-9._-]+)(\+?)\}$")
_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_.]+)")
_AUTH_PARAM = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]+)")
# (payload, function error or None) of one synchronous invocation.
Invoke = Callable[[str, bytes], tuple[bytes, str | None]]
KeyLookup = Callable[[str], iam.Principal | None]


# -- what the templates declare -----------------------------------------------------------------
@dataclass
class Integration:
    integration_id: str
    integration_type: str
    uri: str  # the Lambda function's ARN, for AWS_PROXY
    payload_format_version: str
    timeout_ms: int = 30_000


@dataclass
class Route:
    route_id: str
    route_key: str  # "POST /jobs/{job_id}", "ANY /x" or "$default"
    authorization_type: str
    target: str | None  # "integrations/<integration id>"

    @property
    def method(self) -> str:
        return "*" if self.route_key == "$default" else self.route_key.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return "$default" if self.route_key == "$default" else self.route_key.split(" ", 1)[1]

    @property
    def integration_id(self) -> str | None:
        if not self.target or not self.target.startswith("integrations/"):
            return None
        return self.target.removeprefix("integrations/")


@dataclass(frozen=True)
class Throttle:
    rate_per_s: float | None
    burst: int | None


@dataclass
class Stage:
    name: str
    throttle: Throttle = field(default_factory=lambda: Throttle(None, None))
    route_throttles: dict[str, Throttle] = field(default_factory=dict)
    access_log_destination: str | None = None
    access_log_format: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class HttpApi:
    """One ``AWS::ApiGatewayV2::Api`` with what the templates attach to it."""

    logical_id: str
    api_id: str
    name: str
    protocol_type: str
    endpoint: str  # https://<id>.execute-api.<region>.amazonaws.com
    disable_execute_api_endpoint: bool = False
    integrations: dict[str, Integration] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    stages: dict[str, Stage] = field(default_factory=dict)

    def function_arns(self) -> set[str]:
        """The Lambda functions the routes invoke."""
        return {
            self.integrations[r.integration_id].uri
            for r in self.routes
            if r.integration_id in self.integrations
        }

    def domain_name(self) -> str:
        return urlsplit(self.endpoint).hostname or f"{self.api_id}.execute-api.amazonaws.com"


def invoke_arn(
    api_id: str, *, region: str, account: str, partition: str = "aws", resource: str = "*/*/*"
) -> str:
    """``arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<path>``; the default
    ``*/*/*`` is what ``HttpApi.arn_for_execute_api()`` (so ``Api.grant_invoke``) grants."""
    return f"arn:{partition}:execute-api:{region}:{account}:{api_id}/{resource}"


# -- requests and answers -------------------------------------------------------------------------
@dataclass(frozen=True)
class Incoming:
    """One request as it came off the socket."""

    method: str
    target: str  # the request-target: raw path and query, percent-encoded as sent
    headers: tuple[tuple[str, str], ...]
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    # The body was over the payload limit: read and dropped, never kept.
    oversized: bool = False


@dataclass
class Outgoing:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class GatewayError(Exception):
    """An answer API Gateway gives itself, before or instead of the integration's."""

    def __init__(self, status: int, message: str, error_type: str, *, key: str = "message") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.key = key


def _not_found() -> GatewayError:
    return GatewayError(404, "Not Found", "NotFoundException")


def _internal() -> GatewayError:
    return GatewayError(500, "Internal Server Error", "InternalServerErrorException")


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]


def _specificity(path: str) -> tuple[int, ...]:
    """Literal segments rank above ``{variables}``, which rank above a greedy ``{proxy+}``."""
    ranks = []
    for part in path.split("/")[1:]:
        found = _VARIABLE.match(part)
        ranks.append(2 if found is None else (0 if found.group(2) else 1))
    return tuple(ranks)


def _match_path(pattern: str, segments: list[str]) -> dict[str, str] | None:
    parts = pattern.split("/")[1:]
    parameters: dict[str, str] = {}
    for index, part in enumerate(parts):
        variable = _VARIABLE.match(part)
        if variable is not None and variable.group(2):  # {name+}: the rest, at least one segment
            rest = segments[index:]
            if not rest or rest == [""]:
                return None
            parameters[variable.group(1)] = unquote("/".join(rest))
            return parameters
        if index >= len(segments):
            return None
        if variable is not None:
            if not segments[index]:
                return None
            parameters[variable.group(1)] = unquote(segments[index])
        elif part != unquote(segments[index]):
            return None
    return parameters if len(segments) == len(parts) else None


def match_route(routes: Sequence[Route], method: str, path: str) -> RouteMatch | None:
    """The route API Gateway selects for ``method`` and ``path`` (None: no route, no $default)."""
    segments = path.split("/")[1:]
    best: tuple[tuple[tuple[int, ...], bool], RouteMatch] | None = None
    default: Route | None = None
    for route in routes:
        if route.route_key == "$default":
            default = route
            continue
        if route.method not in (method, "ANY"):
            continue
        parameters = _match_path(route.path, segments)
        if parameters is None:
            continue
        rank = (_specificity(route.path), route.method != "ANY")
        if best is None or rank > best[0]:
            best = (rank, RouteMatch(route, parameters))
    if best is not None:
        return best[1]
    return RouteMatch(default, {}) if default is not None else None


# -- SigV4 ----------------------------------------------------------------------------------------
class _SignedHeadersOnly(SigV4Auth):
    """botocore's SigV4 over exactly the headers the client named in ``SignedHeaders``.

    botocore's own ``headers_to_sign`` picks the request's headers minus a few it never signs
    (``user-agent``...), which is right for a client and wrong for a verifier: API Gateway signs
    what the client says it signed.
    """

    def __init__(self, credentials: Credentials, region: str, signed: list[str]) -> None:
        super().__init__(credentials, SERVICE, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or []:
                chosen[name] = value
        return chosen


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names, repeated headers comma-joined (as API Gateway merges them)."""
    merged: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
    return merged


def _incomplete(missing: list[str], authorization: str) -> GatewayError:
    wanted = {
        "Credential": "Authorization header requires 'Credential' parameter.",
        "Signature": "Authorization header requires 'Signature' parameter.",
        "SignedHeaders": "Authorization header requires 'SignedHeaders' parameter.",
        "X-Amz-Date": "Authorization header requires existence of either a 'X-Amz-Date' or a "
        "'Date' header.",
    }
    text = " ".join(wanted[name] for name in missing)
    return GatewayError(
        403, f"{text} Authorization={authorization}", "IncompleteSignatureException"
    )


def _check_date(amz_date: str, scope_date: str, now: datetime) -> None:
    """The request's ``X-Amz-Date`` against its credential scope and the clock."""
    try:
        signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise GatewayError(
            403,
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not "
            f"{amz_date}",
            "InvalidSignatureException",
        ) from None
    if scope_date != amz_date[:8]:
        raise GatewayError(
            403,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
            f"HTTP: '{scope_date}' != '{amz_date[:8]}', from '{amz_date}'.",
            "InvalidSignatureException",
        )
    if signed_at < now - SIGNATURE_WINDOW:
        earliest = (now - SIGNATURE_WINDOW).strftime(_AMZ_DATE)
        raise GatewayError(
            403,
            f"Signature expired: {amz_date} is now earlier than {earliest} "
            f"({now.strftime(_AMZ_DATE)} - 15 min.)",
            "InvalidSignatureException",
        )
    if signed_at > now + SIGNATURE_WINDOW:
        latest = (now + SIGNATURE_WINDOW).strftime(_AMZ_DATE)
        raise GatewayError(
            403,
            f"Signature not yet current: {amz_date} is still later than {latest} "
            f"({now.strftime(_AMZ_DATE)} + 15 min.)",
            "InvalidSignatureException",
        )


def authenticate(
    request: Incoming, *, region: str, lookup: KeyLookup, now: datetime
) -> iam.Principal:
    """The caller of a SigV4-signed request, or the ``GatewayError`` API Gateway answers."""
    headers = _header_map(request.headers)
    authorization = headers.get("authorization", "")
    if not authorization:
        raise GatewayError(403, "Forbidden", "ForbiddenException")
    parameters = dict(_AUTH_PARAM.findall(authorization))
    missing = [n for n in ("Credential", "Signature", "SignedHeaders") if n not in parameters]
    amz_date = headers.get("x-amz-date", "")
    if not amz_date:
        missing.append("X-Amz-Date")
    if not authorization.startswith("AWS4-HMAC-SHA256 ") or missing:
        raise _incomplete(missing or ["Credential"], authorization)
    scope = parameters["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise _incomplete(["Credential"], authorization)
    access_key, date, scoped_region, service, _ = scope
    if service != SERVICE:
        raise GatewayError(
            403,
            f"Credential should be scoped to correct service: '{SERVICE}'. ",
            "InvalidSignatureException",
        )
    if scoped_region != region:
        raise GatewayError(
            403,
            f"Credential should be scoped to a valid region, not '{scoped_region}'. ",
            "InvalidSignatureException",
        )
    _check_date(amz_date, date, now)
    principal = lookup(access_key)
    token = headers.get("x-amz-security-token")
    if principal is None or token != principal.token:
        raise GatewayError(
            403,
            "The security token included in the request is invalid.",
            "UnrecognizedClientException",
        )
    signed = parameters["SignedHeaders"].lower().split(";")
    if "host" not in signed:
        raise GatewayError(
            403,
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            "InvalidSignatureException",
        )
    aws_request = AWSRequest(
        method=request.method,
        url=f"http://{headers.get('host', '')}{request.target}",
        data=request.body,
    )
    for name, value in request.headers:
        aws_request.headers[name.lower()] = value  # appends: repeated headers stay repeated
    aws_request.context["timestamp"] = amz_date
    signer = _SignedHeadersOnly(
        Credentials(access_key, principal.secret_key, principal.token), region, signed
    )
    canonical = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical)
    if not secrets.compare_digest(
        signer.signature(string_to_sign, aws_request), parameters["Signature"]
    ):
        raise GatewayError(
            403,
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.\n\nThe Canonical String for this request should have "
            f"been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n",
            "InvalidSignatureException",
        )
    return principal


# -- the 2.0 event and response ------------------------------------------------------------------
def _is_text(content_type: str | None) -> bool:
    return content_type is None or bool(_TEXT_TYPE.match(content_type))


def request_id() -> str:
    """An id shaped like API Gateway's (``apigw-requestid``): 16 base64 characters."""
    return base64.b64encode(os.urandom(11)).decode()


def build_event(
    request: Incoming,
    *,
    api: HttpApi,
    stage: Stage,
    match: RouteMatch,
    principal: iam.Principal | None,
    account: str,
    request_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends the integration for this request."""
    split = urlsplit(request.target)
    raw_path = split.path or "/"
    cookies, headers = _event_headers(request, now)
    context: dict[str, Any] = {
        "accountId": account,
        "apiId": api.api_id,
        "domainName": api.domain_name(),
        "domainPrefix": api.domain_name().split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": match.route.route_key,
        "stage": stage.name,
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if principal is not None:
        context["authorizer"] = {
            "iam": {
                "accessKey": principal.access_key,
                "accountId": principal.account,
                "callerId": principal.user_id,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": principal.arn,
                "userId": principal.user_id,
            }
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.route_key,
        "rawPath": raw_path,
        "rawQueryString": split.query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if split.query:
        query: dict[str, str] = {}
        for name, value in parse_qsl(split.query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        event["queryStringParameters"] = query
    event["requestContext"] = context
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    if stage.variables:
        event["stageVariables"] = dict(stage.variables)
    if request.body:
        event["body"], event["isBase64Encoded"] = _event_body(
            request.body, headers.get("content-type")
        )
    else:
        event["isBase64Encoded"] = False
    return event


def _event_headers(request: Incoming, now: datetime) -> tuple[list[str], dict[str, str]]:
    """(cookies, headers) of the event: ``Cookie`` headers split into the cookies field, the
    rest merged, plus what API Gateway adds (``x-forwarded-*``, ``x-amzn-trace-id``)."""
    cookies: list[str] = []
    plain: list[tuple[str, str]] = []
    for name, value in request.headers:
        if name.lower() == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
        else:
            plain.append((name, value))
    headers = _header_map(plain)
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = (
        f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip
    )
    host = headers.get("host", "")
    headers["x-forwarded-port"] = host.rsplit(":", 1)[1] if ":" in host else "80"
    headers["x-forwarded-proto"] = "http"
    headers["x-amzn-trace-id"] = f"Root=1-{int(now.timestamp()):08x}-{uuid.uuid4().hex[:24]}"
    if request.body:
        headers.setdefault("content-length", str(len(request.body)))
    return cookies, headers


def _event_body(body: bytes, content_type: str | None) -> tuple[str, bool]:
    """(body, isBase64Encoded): text content types as text, anything else base64."""
    if _is_text(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode(), True


def check_event(event: Mapping[str, Any]) -> None:
    """Raise unless ``event`` has the shape Powertools reads a 2.0 event with (its parser model,
    the one ``APIGatewayHttpResolver``'s event class wraps)."""
    APIGatewayProxyEventV2Model.model_validate(dict(event))


def translate_response(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """What API Gateway answers for the function's 2.0 response (``GatewayError`` when it cannot
    read it)."""
    try:
        answer = json.loads(payload or b"null")
    except ValueError:
        raise _internal() from None
    if not isinstance(answer, dict) or "statusCode" not in answer:
        # No statusCode: API Gateway infers 200, application/json, the JSON as the body.
        return 200, [("Content-Type", "application/json")], payload
    status = answer.get("statusCode")
    headers = answer.get("headers") or {}
    cookies = answer.get("cookies") or []
    body = answer.get("body")
    if (
        not isinstance(status, int)
        or isinstance(status, bool)
        or not 100 <= status <= 599
        or not isinstance(headers, dict)
        or not isinstance(cookies, list)
        or not (body is None or isinstance(body, str))
    ):
        raise _internal()
    out = [(str(k), str(v)) for k, v in headers.items()]
    out += [("Set-Cookie", str(c)) for c in cookies]
    raw = b""
    if body:
        try:
            raw = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
        except ValueError:
            raise _internal() from None
    return status, out, raw


# -- the adapter -----------------------------------------------------------------------------------
class _Bucket:
    """A token bucket: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(self, throttle: Throttle, clock: Callable[[], float]) -> None:
        self.rate = throttle.rate_per_s
        self.burst = throttle.burst
        self.tokens = float(throttle.burst or 0)
        self.clock = clock
        self.at = clock()
        self.lock = threading.Lock()

    def take(self) -> bool:
        if self.rate is None and self.burst is None:
            return True
        with self.lock:
            now = self.clock()
            capacity = float(self.burst if self.burst is not None else 1 << 30)
            self.tokens = min(capacity, self.tokens + (now - self.at) * float(self.rate or 0))
            self.at = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


def check_served(api: HttpApi) -> None:
    """Refuse, at start, an API this adapter would serve wrongly."""
    if api.protocol_type != "HTTP":
        raise ValueError(f"API {api.name} is a {api.protocol_type} API; only HTTP APIs are served")
    for route in api.routes:
        integration = api.integrations.get(route.integration_id or "")
        if integration is None:
            raise ValueError(f"route {route.route_key!r} has no integration the world deployed")
        if integration.integration_type != "AWS_PROXY" or ":lambda:" not in integration.uri:
            raise ValueError(
                f"route {route.route_key!r}: only Lambda proxy integrations are served, not "
                f"{integration.integration_type} {integration.uri}"
            )
        if integration.payload_format_version != "2.0":
            raise ValueError(
                f"route {route.route_key!r} uses payload format "
                f"{integration.payload_format_version}; only 2.0 is served"
            )
        if route.authorization_type not in SERVED_AUTHORIZATION:
            raise ValueError(
                f"route {route.route_key!r}: {route.authorization_type} authorization is not "
                "served (JWT and Lambda authorizers are not emulated)"
            )


class ApiGatewayServer:
    """One deployed HTTP API, served on 127.0.0.1 for as long as it runs."""

    def __init__(
        self,
        api: HttpApi,
        *,
        region: str,
        account: str,
        invoke: Invoke,
        lookup: KeyLookup,
        permissions: iam.Permissions | None = None,
        partition: str = "aws",
        log_sink: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        check_served(api)
        self.api = api
        self.region, self.account, self.partition = region, account, partition
        self.invoke = invoke
        self.lookup = lookup
        self.permissions = permissions
        self.log_sink = log_sink
        self.clock = clock
        self._monotonic = monotonic
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._inflight = 0
        self._idle = threading.Condition()
        # (method, path, route key or None, status) of every request, oldest first.
        self.requests: list[tuple[str, str, str | None, int]] = []
        self.access_log: list[str] = []
        # Exceptions this adapter raised answering a request (each answered 500): its own bugs.
        self.errors: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the API is not being served (start() it)")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self, port: int = 0) -> str:
        gateway = self

        class Handler(_RequestHandler):
            server_of = gateway

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        # Connection threads are not joined (a client's idle keep-alive connection would hold
        # stop() forever); stop() waits for the requests being answered instead.
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"api-{self.api.api_id}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop accepting requests, then wait for the ones being answered."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout_s)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    # -- one request ----------------------------------------------------------------------------
    def handle(self, request: Incoming) -> Outgoing:
        """API Gateway's answer to ``request`` (see the module's docstring for the steps)."""
        with self._idle:
            self._inflight += 1
        try:
            return self._handle(request)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _handle(self, request: Incoming) -> Outgoing:
        started = self._monotonic()
        now = datetime.fromtimestamp(self.clock(), UTC)
        rid = request_id()
        facts: dict[str, str] = {}
        route_key: str | None = None
        stage: Stage | None = None
        try:
            if request.oversized or len(request.body) > PAYLOAD_LIMIT_BYTES:
                raise GatewayError(413, "Request Entity Too Large", "RequestEntityTooLarge")
            stage, path = self._stage_of(request)
            match = match_route(self.api.routes, request.method, path)
            route_key = match.route.route_key if match is not None else None
            self._throttle(stage, route_key)
            if match is None:
                raise _not_found()
            principal = None
            if match.route.authorization_type == "AWS_IAM":
                principal = authenticate(request, region=self.region, lookup=self.lookup, now=now)
                facts["userArn"] = principal.arn
                self._authorize(principal, stage, request.method, path)
            event = build_event(
                request,
                api=self.api,
                stage=stage,
                match=match,
                principal=principal,
                account=self.account,
                request_id=rid,
                now=now,
            )
            check_event(event)
            status, headers, body = self._integrate(
                match.route, stage, request.method, event, facts
            )
        except GatewayError as err:
            facts["error"] = err.message
            status, body = err.status, json.dumps({err.key: err.message}).encode()
            headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", err.error_type)]
        except Exception as err:  # a bug here: answered as API Gateway's 500, and kept
            self.errors.append("".join(traceback.format_exception(err)))
            facts["error"] = "Internal Server Error"
            status, body = 500, json.dumps({"message": "Internal Server Error"}).encode()
            headers = [("Content-Type", "application/json")]
        headers.append(("apigw-requestid", rid))
        with self._lock:
            self.requests.append((request.method, urlsplit(request.target).path, route_key, status))
        if stage is not None:
            self._log(
                stage,
                request,
                rid=rid,
                now=now,
                route_key=route_key,
                status=status,
                length=len(body),
                started=started,
                facts=facts,
            )
        return Outgoing(status, headers, body)

    def _stage_of(self, request: Incoming) -> tuple[Stage, str]:
        path = urlsplit(request.target).path or "/"
        first = path.split("/")[1] if path.count("/") >= 1 else ""
        if first and first in self.api.stages and first != "$default":
            rest = path[len(first) + 1 :] or "/"
            return self.api.stages[first], rest
        if self.api.disable_execute_api_endpoint or "$default" not in self.api.stages:
            raise _not_found()
        return self.api.stages["$default"], path

    def _throttle(self, stage: Stage, route_key: str | None) -> None:
        throttle = stage.route_throttles.get(route_key or "", stage.throttle)
        key = (stage.name, route_key or "")
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(throttle, self._monotonic)
        if not bucket.take():
            raise GatewayError(429, "Too Many Requests", "TooManyRequestsException")

    def _authorize(self, principal: iam.Principal, stage: Stage, method: str, path: str) -> None:
        """``execute-api:Invoke`` on this method and path, by the caller's identity policies."""
        resource = invoke_arn(
            self.api.api_id,
            region=self.region,
            account=self.account,
            partition=self.partition,
            resource=f"{stage.name}/{method}/{path.lstrip('/')}",
        )
        if self.permissions is None or principal.kind == "root":
            return  # permissions off, or the account's root user: nothing to decide
        try:
            self.permissions.require_actor(
                principal.actor,
                f"API caller {principal.arn}",
                [iam.Check("execute-api:Invoke", resource)],
            )
        except iam.PermissionDenied as err:
            explicit = err.denials[0].reason.startswith("explicitly denied")
            why = (
                " with an explicit deny in an identity-based policy"
                if explicit
                else " because no identity-based policy allows the execute-api:Invoke action"
            )
            raise GatewayError(
                403,
                f"User: {principal.arn} is not authorized to perform: execute-api:Invoke on "
                f"resource: {resource}{why}",
                "AccessDeniedException",
                key="Message",
            ) from None

    def _integrate(
        self,
        route: Route,
        stage: Stage,
        method: str,
        event: dict[str, Any],
        facts: dict[str, str],
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Invoke the route's function as API Gateway does, and read its answer."""
        integration = self.api.integrations[route.integration_id or ""]
        function = integration.uri
        if self.permissions is not None:
            # The source ARN names the route's path as declared ({job_id}, not the value).
            where = (
                "$default"
                if route.route_key == "$default"
                else f"{method}/{route.path.lstrip('/')}"
            )
            source = invoke_arn(
                self.api.api_id,
                region=self.region,
                account=self.account,
                partition=self.partition,
                resource=f"{stage.name}/{where}",
            )
            check = iam.Check(
                "lambda:InvokeFunction",
                function,
                (("aws:SourceAccount", self.account), ("aws:SourceArn", source)),
                policy_of=function,
            )
            if self.permissions.allowed_for_service("apigateway.amazonaws.com", check) is not None:
                facts["integrationError"] = "API Gateway may not invoke the function"
                raise _internal()
        payload = json.dumps(event).encode()
        if len(payload) > LAMBDA_PAYLOAD_LIMIT_BYTES:
            facts["integrationError"] = "the event is over Lambda's 6 MB request payload limit"
            raise _internal()
        answer, function_error = self.invoke(function, payload)
        if function_error:
            facts["integrationError"] = f"The function returned an error: {function_error}"
            raise _internal()
        return translate_response(answer)

    def _log(
        self,
        stage: Stage,
        request: Incoming,
        *,
        rid: str,
        now: datetime,
        route_key: str | None,
        status: int,
        length: int,
        started: float,
        facts: Mapping[str, str],
    ) -> None:
        if not stage.access_log_format:
            return
        values = {
            "requestId": rid,
            "extendedRequestId": rid,
            "apiId": self.api.api_id,
            "stage": stage.name,
            "domainName": self.api.domain_name(),
            "identity.sourceIp": request.source_ip,
            "identity.userArn": facts.get("userArn", "-"),
            "identity.userAgent": _header_map(request.headers).get("user-agent", "-"),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": str(int(now.timestamp() * 1000)),
            "httpMethod": request.method,
            "path": urlsplit(request.target).path,
            "protocol": request.protocol,
            "routeKey": route_key or "-",
            "status": str(status),
            "responseLength": str(length),
            "responseLatency": str(int((self._monotonic() - started) * 1000)),
            "error.message": facts.get("error", "-"),
            "error.messageString": json.dumps(facts["error"]) if "error" in facts else "-",
            "integrationErrorMessage": facts.get("integrationError", "-"),
        }
        line = _CONTEXT_VARIABLE.sub(
            lambda m: values.get(m.group(1), "-").replace('"', '\\"'), stage.access_log_format
        )
        with self._lock:
            self.access_log.append(line)
        if self.log_sink is not None and stage.access_log_destination:
            self.log_sink(stage.access_log_destination, line)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_of: ApiGatewayServer

    def _read_body(self) -> bytes | None:
        """The body, or None when it is over the payload limit (read and dropped, so that the
        client gets the 413 instead of a reset connection)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunk = self.rfile.read(size)
                self.rfile.readline()
                total += size
                if total <= PAYLOAD_LIMIT_BYTES:
                    chunks.append(chunk)
            return b"".join(chunks) if total <= PAYLOAD_LIMIT_BYTES else None
        length = int(self.headers.get("Content-Length") or 0)
        if length <= PAYLOAD_LIMIT_BYTES:
            return self.rfile.read(length) if length else b""
        left = length
        while left > 0:
            piece = self.rfile.read(min(left, 1024 * 1024))
            if not piece:
                break
            left -= len(piece)
        return None

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError:  # a Content-Length or chunk size that is not a number
            bad = b'{"message":"Bad Request"}'
            self._send(Outgoing(400, [("Content-Type", "application/json")], bad))
            return
        request = Incoming(
            method=self.command,
            target=self.path,
            headers=tuple((str(k), str(v)) for k, v in self.headers.items()),
            body=body if body is not None else b"",
            source_ip=str(self.client_address[0]),
            protocol=self.request_version,
            oversized=body is None,
        )
        self._send(self.server_of.handle(request))

    def _send(self, answer: Outgoing) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() not in ("content-length", "connection", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_DELETE = do_GET = do_HEAD = do_OPTIONS = do_PATCH = do_POST = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


def create_invoker(
    iam_client: Any, name: str, policy_resources: Sequence[str] | None
) -> dict[str, str]:
    """An IAM user ``name`` with an access key; with ``policy_resources``, an inline policy that
    allows ``execute-api:Invoke`` on them (what ``Api.grant_invoke`` gives a principal). Returns
    ``arn``, ``access_key_id`` and ``secret_access_key``."""
    user = iam_client.create_user(UserName=name)["User"]
    if policy_resources:
        iam_client.put_user_policy(
            UserName=name,
            PolicyName="InvokeJobsApi",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "execute-api:Invoke",
                            "Resource": list(policy_resources),
                        }
                    ],
                }
            ),
        )
    key = iam_client.create_access_key(UserName=name)["AccessKey"]
    return {
        "arn": str(user["Arn"]),
        "access_key_id": str(key["AccessKeyId"]),
        "secret_access_key": str(key["SecretAccessKey"]),
    }


def signed_call(
    url: str,
    method: str,
    path: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    token: str | None = None,
    body: Any = None,
    timeout_s: float = 30.0,
) -> tuple[int, Any]:
    """One request to an API served here, SigV4-signed as any IAM client signs it (service
    ``execute-api``); (status, the JSON answer, or the text when it is not JSON).

    For tests and the demo: the edge uploader's own client covers only the routes it uses.
    """
    data = json.dumps(body).encode() if body is not None else b""
    target = url.rstrip("/") + path
    request = AWSRequest(
        method=method,
        url=target,
        data=data,
        headers={"Content-Type": "application/json"} if body is not None else {},
    )
    SigV4Auth(Credentials(access_key, secret_key, token), SERVICE, region).add_auth(request)
    answer = requests.request(
        method, target, data=data, headers=dict(request.headers.items()), timeout=timeout_s
    )
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, answer.text
