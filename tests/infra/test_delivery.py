"""CloudFront delivery as synthesized: a private processed bucket read through origin access
control (``video/`` only), HTTPS viewers, caching by file kind, security and CORS headers,
standard logs; and with a custom domain and signed cookies, aliases, TLS 1.2 and key groups."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from cfnlint.api import ManualArgs, lint

from constructs_lib.delivery import DeliveryConfig, SignedCookies
from constructs_lib.hygiene import silence_cdk_handler_lint
from constructs_lib.props import ConfigError
from localworld.template import cdk_context
from stacks.config import build_environments
from stacks.stateful import StatefulStack
from tests.conftest import TEST_ACCOUNT, TEST_REGION

ENVS = ["Dev", "Prod"]
DAY_S = 24 * 3600
YEAR_S = 365 * DAY_S
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
WEB_ACL = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/media/0a1b2c3d-4e5f-6a7b-8c9d"
PINNED_ID = "E2QWRUHAPOMQZL"
# A 2048-bit RSA public key (test material only; its private half was thrown away).
PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA66h4v1XWleF+n6WZEuyP
SJ2F5VjhqKYuoG+K3OStONpQXlyeQ/cZNQCfcDv28dLUJ6AWsMkGBpUBTNVTpbTw
p/djjJsA3NRwPqSkNVwmq+sve+Jb0mQHKbJympkAdHGG5/ylZfwlU0y3zdfnvpd3
+FPwFtLitpRV5i6YxmpHbMXyo1ivHURpchwKEXsdTobW6n3+UTyTFd8osdkkz3+1
1YG9T3MEZlzs5JQfO9AH+JvbY7D7ZmAJOhopfhO3I4WAKrIY4ZQwGkuqVg0A9ms+
7yW2ybDqIAdkQIfGyaCJikJBx9tStrifX6Ly4u3F4aStFOtIWyCVZQ6Qv/t4wmKw
bQIDAQAB
-----END PUBLIC KEY-----
"""
SHORT = ("video/*.m3u8",)
LONG = (
    "video/*.ts", "video/*.m4s", "video/*.mp4", "video/*.jpg", "video/*.vtt",
    "image/*.webp", "image/*.avif", "image/*.jpg",
)  # fmt: skip


# -- helpers -------------------------------------------------------------------------------------
def _of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _one(template: dict[str, Any], kind: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    (found,) = [(k, v) for k, v in _of(template, kind).items() if k.startswith(prefix)]
    return found


def _distribution(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    logical_id, resource = _one(template, "AWS::CloudFront::Distribution")
    return logical_id, resource["Properties"]["DistributionConfig"]


def _cache_ttls(template: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """(min, default, max) TTL of each cache policy, by logical id."""
    out = {}
    for logical_id, policy in _of(template, "AWS::CloudFront::CachePolicy").items():
        config = policy["Properties"]["CachePolicyConfig"]
        out[logical_id] = (config["MinTTL"], config["DefaultTTL"], config["MaxTTL"])
    return out


def _behaviors(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    behaviors = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    return behaviors | {"*": config["DefaultCacheBehavior"]}


def _distribution_arn(distribution_id: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [f"arn:aws:cloudfront::{TEST_ACCOUNT}:distribution/", {"Ref": distribution_id}],
        ]
    }


def _cloudfront_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for s in document["Statement"]
        if s.get("Principal", {}).get("Service") == "cloudfront.amazonaws.com"
    ]


def _stateful(synthesized: Any, env: str) -> dict[str, Any]:
    return synthesized.templates[f"{env}/Stateful"]


# -- the default: every environment --------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_only_this_distribution_may_read_and_only_under_video_and_image(synthesized, env):
    template = _stateful(synthesized, env)
    distribution_id, _ = _distribution(template)
    processed_id, processed = _one(template, "AWS::S3::Bucket", "DataLakeProcessed")
    # Then the processed bucket's policy has one CloudFront statement: read video/* and
    # image/* objects, for this distribution's ARN exactly
    _, policy = _one(template, "AWS::S3::BucketPolicy", "DataLakeProcessedPolicy")
    assert _cloudfront_statements(policy["Properties"]["PolicyDocument"]) == [
        {
            "Sid": "CloudFrontReadsServedPrefixes",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": [
                {"Fn::Join": ["", [{"Fn::GetAtt": [processed_id, "Arn"]}, f"/{prefix}/*"]]}
                for prefix in ("image", "video")  # (CDK sorts them)
            ],
            "Condition": {"StringEquals": {"AWS:SourceArn": _distribution_arn(distribution_id)}},
        }
    ]
    # and no other bucket grants CloudFront, or anyone anonymous, anything
    for logical_id, other in _of(template, "AWS::S3::BucketPolicy").items():
        statements = other["Properties"]["PolicyDocument"]["Statement"]
        if not logical_id.startswith("DataLakeProcessed"):
            assert _cloudfront_statements(other["Properties"]["PolicyDocument"]) == []
        for statement in statements:
            if statement["Effect"] == "Allow":
                assert statement["Principal"] != {"AWS": "*"}, logical_id
                assert statement["Principal"] != "*", logical_id
    # and the bucket stays private: Block Public Access, no website endpoint, no ACLs
    props = processed["Properties"]
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert "WebsiteConfiguration" not in props
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


@pytest.mark.parametrize("env", ENVS)
def test_cloudfront_may_decrypt_with_the_data_key_only_as_a_distribution_of_this_account(
    synthesized, env
):
    template = _stateful(synthesized, env)
    _, key = _one(template, "AWS::KMS::Key")
    # The key cannot name the distribution (key -> distribution -> bucket -> key would be a
    # cycle); until key_policy_distribution_id pins it, it admits this account's distributions
    assert _cloudfront_statements(key["Properties"]["KeyPolicy"]) == [
        {
            "Sid": "CloudFrontDecryptsServedObjects",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {
                "ArnLike": {"AWS:SourceArn": f"arn:aws:cloudfront::{TEST_ACCOUNT}:distribution/*"}
            },
        }
    ]


@pytest.mark.parametrize("env", ENVS)
def test_the_origin_is_the_processed_bucket_signed_by_origin_access_control(synthesized, env):
    template = _stateful(synthesized, env)
    _, config = _distribution(template)
    processed_id, _ = _one(template, "AWS::S3::Bucket", "DataLakeProcessed")
    oac_id, oac = _one(template, "AWS::CloudFront::OriginAccessControl")
    (origin,) = config["Origins"]
    assert origin == {
        "Id": "Processed",
        "DomainName": {"Fn::GetAtt": [processed_id, "RegionalDomainName"]},
        "OriginAccessControlId": {"Fn::GetAtt": [oac_id, "Id"]},
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    oac_config = oac["Properties"]["OriginAccessControlConfig"]
    assert oac_config["OriginAccessControlOriginType"] == "s3"
    assert oac_config["SigningBehavior"] == "always"
    assert oac_config["SigningProtocol"] == "sigv4"


@pytest.mark.parametrize("env", ENVS)
def test_playlists_are_cached_briefly_and_segments_mp4_thumbnails_captions_long(synthesized, env):
    template = _stateful(synthesized, env)
    _, config = _distribution(template)
    ttls = _cache_ttls(template)
    behaviors = _behaviors(config)
    assert set(behaviors) == {*SHORT, *LONG, "*"}
    by_pattern = {p: ttls[b["CachePolicyId"]["Ref"]] for p, b in behaviors.items()}
    for pattern in (*SHORT, "*"):  # labels.json and other documents: like playlists
        assert by_pattern[pattern] == (0, 5, 60), pattern
    for pattern in LONG:
        assert by_pattern[pattern] == (0, DAY_S, YEAR_S), pattern
    # and no query string, header or cookie splits the cache
    for policy in _of(template, "AWS::CloudFront::CachePolicy").values():
        key = policy["Properties"]["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
        assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
        assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
        assert key["CookiesConfig"] == {"CookieBehavior": "none"}


@pytest.mark.parametrize("env", ENVS)
def test_viewers_use_https_http2_and_3_ipv6_and_the_configured_price_class(synthesized, env):
    _, config = _distribution(_stateful(synthesized, env))
    for pattern, behavior in _behaviors(config).items():
        assert behavior["ViewerProtocolPolicy"] == "redirect-to-https", pattern
        assert behavior["AllowedMethods"] == ["GET", "HEAD", "OPTIONS"], pattern
        assert "TrustedKeyGroups" not in behavior, pattern
    assert config["HttpVersion"] == "http2and3"
    assert config["IPV6Enabled"] is True
    assert config["PriceClass"] == "PriceClass_100"
    # without a custom domain: no aliases and CloudFront's default certificate
    assert "Aliases" not in config
    assert "ViewerCertificate" not in config
    assert "WebACLId" not in config
    assert "Restrictions" not in config


@pytest.mark.parametrize("env", ENVS)
def test_every_behavior_adds_security_headers_and_cors_for_players(synthesized, env):
    template = _stateful(synthesized, env)
    _, config = _distribution(template)
    headers_id, headers = _one(template, "AWS::CloudFront::ResponseHeadersPolicy")
    for pattern, behavior in _behaviors(config).items():
        assert behavior["ResponseHeadersPolicyId"] == {"Ref": headers_id}, pattern
    policy = headers["Properties"]["ResponseHeadersPolicyConfig"]
    security = policy["SecurityHeadersConfig"]
    assert security["StrictTransportSecurity"] == {
        "AccessControlMaxAgeSec": 2 * YEAR_S,
        "IncludeSubdomains": True,
        "Override": True,
    }
    assert security["ContentTypeOptions"] == {"Override": True}
    assert security["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == "strict-origin-when-cross-origin"
    assert security["XSSProtection"] == {"Override": True, "Protection": False}
    cors = policy["CorsConfig"]
    assert cors["AccessControlAllowOrigins"] == {"Items": ["*"]}
    assert cors["AccessControlAllowMethods"] == {"Items": ["GET", "HEAD", "OPTIONS"]}
    assert cors["AccessControlAllowHeaders"] == {"Items": ["Range"]}
    assert cors["AccessControlExposeHeaders"] == {"Items": ["Content-Length", "Content-Range"]}
    assert cors["AccessControlAllowCredentials"] is False
    removed = {h["Header"] for h in policy["RemoveHeadersConfig"]["Items"]}
    assert "x-amz-server-side-encryption-aws-kms-key-id" in removed


@pytest.mark.parametrize("env", ENVS)
def test_standard_logs_go_to_the_access_log_bucket_which_allows_their_acl(synthesized, env):
    template = _stateful(synthesized, env)
    _, config = _distribution(template)
    logs_id, logs = _one(template, "AWS::S3::Bucket", "DataLakeAccessLogs")
    assert config["Logging"] == {
        "Bucket": {"Fn::GetAtt": [logs_id, "RegionalDomainName"]},
        "IncludeCookies": False,
        "Prefix": "cloudfront/",
    }
    # CloudFront's log delivery writes through an ACL grant: ACLs must not be disabled there
    ownership = logs["Properties"]["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    # and SSE-S3, which log delivery can write (it cannot use a customer key)
    [rule] = logs["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


@pytest.mark.parametrize("env", ENVS)
def test_the_outputs_name_the_domain_and_the_distribution(synthesized, env):
    template = _stateful(synthesized, env)
    distribution_id, _ = _distribution(template)
    outputs = template["Outputs"]
    assert outputs["DeliveryDomainName"]["Value"] == {"Fn::GetAtt": [distribution_id, "DomainName"]}
    assert outputs["DeliveryDistributionId"]["Value"] == {"Ref": distribution_id}
    assert "DeliveryKeyPairId" not in outputs
    # the distribution's logical id is a contract (the lead's URL plumbing and diffs rely on it)
    assert distribution_id.startswith("Delivery")
    assert len(distribution_id) == len("Delivery") + 8


def test_the_python_attributes_give_the_base_url(synthesized):
    stack = synthesized.stacks["Dev/Stateful"]
    delivery = stack.delivery
    assert delivery is not None
    resolved = stack.resolve(delivery.base_url)
    assert resolved == {
        "Fn::Join": [
            "",
            [
                "https://",
                {
                    "Fn::GetAtt": [
                        stack.get_logical_id(delivery.distribution.node.default_child),
                        "DomainName",
                    ]
                },
            ],
        ]
    }


def test_the_acknowledged_findings_are_the_default_certificate_geo_and_waf(synthesized):
    acknowledged: dict[str, set[str]] = {}
    for directory in synthesized.assembly_dirs:
        for metadata_file in directory.glob("*Stateful*.metadata.json"):
            for path, entries in json.loads(metadata_file.read_text()).items():
                if "/Delivery/" not in path:
                    continue
                for entry in entries:
                    if entry["type"] == "aws:cdk:acknowledged-rules":
                        acknowledged.setdefault(path, set()).update(
                            rule.removeprefix("Annotation::") for rule in entry["data"]
                        )
    assert acknowledged, "expected the delivery acknowledgments in the assembly"
    for path, rules in acknowledged.items():
        assert path.endswith("/Delivery/Resource"), path
        assert rules == {"AwsSolutions-CFR1", "AwsSolutions-CFR2", "AwsSolutions-CFR4"}, path


# -- a custom domain with signed cookies: one extra synthesis ------------------------------------
PRIVATE_LIBRARY = DeliveryConfig(
    price_class="PriceClass_All",
    domain_name="media.example.com",
    certificate_arn=CERTIFICATE,
    cors_allowed_origins=("https://app.example.com",),
    signed_cookies=SignedCookies(
        private_key_secret_name="media-pipeline/cookie-signing-key",
        public_key_pem=PUBLIC_KEY_PEM,
    ),
    geo_allowlist=("DE", "FR"),
    web_acl_arn=WEB_ACL,
    key_policy_distribution_id=PINNED_ID,
)


@pytest.fixture(scope="module")
def private_library() -> dict[str, Any]:
    config = dataclasses.replace(build_environments()["dev"], delivery=PRIVATE_LIBRARY)
    app = cdk.App(context=cdk_context())
    # the same checks as every synthesis: an unacknowledged finding fails it
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    env = cdk.Environment(account=TEST_ACCOUNT, region=TEST_REGION)
    stack = StatefulStack(app, "Private", config=config, env=env)
    silence_cdk_handler_lint(stack)
    return dict(app.synth().get_stack_artifact(stack.artifact_id).template)


def test_a_custom_domain_gets_its_alias_the_us_east_1_certificate_and_tls_1_2(private_library):
    distribution_id, config = _distribution(private_library)
    assert config["Aliases"] == ["media.example.com"]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": CERTIFICATE,
        "MinimumProtocolVersion": "TLSv1.2_2021",
        "SslSupportMethod": "sni-only",
    }
    assert config["PriceClass"] == "PriceClass_All"
    assert config["Restrictions"] == {
        "GeoRestriction": {"Locations": ["DE", "FR"], "RestrictionType": "whitelist"}
    }
    assert config["WebACLId"] == WEB_ACL
    outputs = private_library["Outputs"]
    assert outputs["DeliveryDomainName"]["Value"] == "media.example.com"
    # the record the operator points at the distribution
    assert outputs["DeliveryDistributionDomainName"]["Value"] == {
        "Fn::GetAtt": [distribution_id, "DomainName"]
    }


def test_signed_cookies_protect_every_behavior_with_the_key_group(private_library):
    _, config = _distribution(private_library)
    key_id, key = _one(private_library, "AWS::CloudFront::PublicKey")
    group_id, group = _one(private_library, "AWS::CloudFront::KeyGroup")
    assert key["Properties"]["PublicKeyConfig"]["EncodedKey"] == PUBLIC_KEY_PEM
    assert group["Properties"]["KeyGroupConfig"]["Items"] == [{"Ref": key_id}]
    for pattern, behavior in _behaviors(config).items():
        assert behavior["TrustedKeyGroups"] == [{"Ref": group_id}], pattern
    outputs = private_library["Outputs"]
    assert outputs["DeliveryKeyPairId"]["Value"] == {"Ref": key_id}
    # the stack names the operator's secret; it neither creates nor reads it
    assert outputs["DeliverySigningKeySecretName"]["Value"] == "media-pipeline/cookie-signing-key"
    assert len(_of(private_library, "AWS::SecretsManager::Secret")) == 1  # the Pixabay key only
    # cookies travel only on credentialed CORS requests from the named origins
    _, headers = _one(private_library, "AWS::CloudFront::ResponseHeadersPolicy")
    cors = headers["Properties"]["ResponseHeadersPolicyConfig"]["CorsConfig"]
    assert cors["AccessControlAllowCredentials"] is True
    assert cors["AccessControlAllowOrigins"] == {"Items": ["https://app.example.com"]}


def test_a_pinned_distribution_id_narrows_the_key_policy_to_it(private_library):
    _, key = _one(private_library, "AWS::KMS::Key")
    [statement] = _cloudfront_statements(key["Properties"]["KeyPolicy"])
    assert statement["Condition"] == {
        "StringEquals": {
            "AWS:SourceArn": f"arn:aws:cloudfront::{TEST_ACCOUNT}:distribution/{PINNED_ID}"
        }
    }


def test_the_private_library_template_is_lint_clean(private_library):
    matches = lint(
        json.dumps(private_library), config=ManualArgs(regions=["us-east-1", "eu-west-1"])
    )
    assert [f"{m.rule.id} {m.message}" for m in matches] == []


def test_an_environment_without_delivery_has_no_distribution():
    # Given delivery switched off, When the stack is built (no synthesis needed)
    config = dataclasses.replace(
        build_environments()["dev"], delivery=DeliveryConfig(enabled=False)
    )
    app = cdk.App(context=cdk_context())
    env = cdk.Environment(account=TEST_ACCOUNT, region=TEST_REGION)
    stack = StatefulStack(app, "NoDelivery", config=config, env=env)
    # Then there is no distribution, no CloudFront grant and no delivery output
    assert stack.delivery is None
    kinds = {
        node.cfn_resource_type
        for node in stack.node.find_all()
        if isinstance(node, cdk.CfnResource)
    }
    assert not {k for k in kinds if k.startswith("AWS::CloudFront::")}
    assert stack.node.try_find_child("DeliveryDomainName") is None


# -- configuration ---------------------------------------------------------------------------------
COOKIES = SignedCookies(private_key_secret_name="k", public_key_pem=PUBLIC_KEY_PEM)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price_class": "PriceClass_300"}, "delivery.price_class"),
        ({"domain_name": "media.example.com"}, "delivery.domain_name"),
        ({"certificate_arn": CERTIFICATE}, "delivery.domain_name"),
        (
            {"domain_name": "Media.Example.com", "certificate_arn": CERTIFICATE},
            "delivery.domain_name",
        ),
        (
            {
                "domain_name": "media.example.com",
                "certificate_arn": CERTIFICATE.replace("us-east-1", "eu-west-1"),
            },
            "delivery.certificate_arn",
        ),
        (
            {"domain_name": "media.example.com", "certificate_arn": "arn:aws:iam::1:x"},
            "delivery.certificate_arn",
        ),
        ({"playlist_default_ttl_s": 120}, "delivery.playlist_max_ttl_s"),
        ({"playlist_max_ttl_s": 7200}, "delivery.playlist_max_ttl_s"),
        ({"media_max_ttl_s": 2 * YEAR_S}, "delivery.media_max_ttl_s"),
        ({"media_default_ttl_s": -1}, "delivery.media_default_ttl_s"),
        ({"cors_allowed_origins": ("https://app.example.com/player",)}, "cors_allowed_origins"),
        ({"cors_allowed_origins": ()}, "delivery.cors_allowed_origins"),
        ({"signed_cookies": COOKIES}, "delivery.signed_cookies"),
        (
            {
                "signed_cookies": COOKIES,
                "domain_name": "media.example.com",
                "certificate_arn": CERTIFICATE,
            },
            "delivery.cors_allowed_origins",
        ),
        ({"geo_allowlist": ("de",)}, "delivery.geo_allowlist"),
        ({"web_acl_arn": WEB_ACL.replace("us-east-1", "eu-west-1")}, "delivery.web_acl_arn"),
        ({"key_policy_distribution_id": "d123"}, "delivery.key_policy_distribution_id"),
    ],
)
def test_a_bad_delivery_setting_is_named(overrides, field):
    with pytest.raises(ConfigError) as raised:
        DeliveryConfig(**overrides)
    assert field in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "public_key_pem"),
        ({"public_key_pem": PUBLIC_KEY_PEM, "public_key_id": "K2JCJMDEHXQW5F"}, "public_key_pem"),
        ({"public_key_pem": "-----BEGIN PRIVATE KEY-----\n..."}, "public_key_pem"),
        ({"public_key_id": "not-an-id"}, "public_key_id"),
    ],
)
def test_a_bad_signed_cookie_setting_is_named(kwargs, field):
    with pytest.raises(ConfigError, match=f"delivery.signed_cookies.{field}"):
        SignedCookies(private_key_secret_name="media/cookie-key", **kwargs)


def test_a_bad_secret_name_is_named():
    with pytest.raises(ConfigError, match="private_key_secret_name"):
        SignedCookies(private_key_secret_name="has spaces", public_key_id="K2JCJMDEHXQW5F")
