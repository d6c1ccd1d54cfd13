"""Delivery: a CloudFront distribution in front of the processed bucket, which stays private.

What is served: objects under ``video/`` of the processed bucket (the MP4 proxy, the HLS ladder,
thumbnails, captions and the clip's ``<stem>_labels.json``, which carries the license and
attribution a player must show next to CC BY media) and under ``image/`` (an image's renditions
and its labels.json). Nothing else: the bucket policy lets CloudFront read ``video/*`` and
``image/*`` only, so a request for ``scratch/...`` or any other prefix is refused by S3 (403)
whatever the path.

How:

* Origin access control (SigV4, always signed): the bucket keeps Block Public Access and has no
  website endpoint. The bucket-policy statement names ``cloudfront.amazonaws.com`` with
  ``AWS:SourceArn`` equal to this distribution's ARN. The origin is built from CDK's parts
  (``S3OriginAccessControl`` + ``S3BucketOrigin.with_bucket_defaults``) rather than
  ``S3BucketOrigin.with_origin_access_control``, because that helper grants the whole bucket
  (``arnForObjects("*")``) and this one must grant ``video/*`` and ``image/*`` only; the
  template has the same shape otherwise.
* SSE-KMS: CloudFront must also be allowed ``kms:Decrypt`` on the data key. A key policy naming
  the distribution would be a cycle *inside* the stack (key -> distribution -> bucket -> key),
  so the statement admits this account's distributions (``ArnLike .../distribution/*``, what CDK
  itself does) until ``key_policy_distribution_id`` pins it to the deployed one (AWS's
  recommendation; set it from the ``DeliveryDistributionId`` output after the first deploy).
  Unpinned, the bucket policy still lets only this distribution read, so no other distribution
  can get an object to decrypt.
* Viewers: HTTPS only (HTTP is redirected), HTTP/2 and HTTP/3, IPv6; with a custom domain
  TLS 1.2 minimum (``TLSv1.2_2021``, SNI). The default ``*.cloudfront.net`` certificate cannot be
  given a minimum protocol (CloudFront fixes it), which is why cdk-nag's CFR4 is acknowledged
  without a custom domain.
* Caching: ``*.m3u8`` (and anything not listed, such as labels.json, which a reprocess
  rewrites) short, ``*.ts``/``*.m4s``/``*.mp4``/``*.jpg``/``*.vtt`` long, and an image's
  ``*.webp``/``*.avif``/``*.jpg`` renditions long. No query string, header or cookie is part of
  the cache key; CloudFront serves byte ranges itself.
* A response headers policy: HSTS, nosniff, frame DENY, a strict referrer policy,
  ``X-XSS-Protection: 0`` (the header's filter is deprecated and can itself be abused), CORS for
  players (GET/HEAD/OPTIONS, the configured origins, ``Range`` allowed, ``Content-Length``/
  ``Content-Range`` exposed), and S3's encryption headers removed.
* Standard access logs to the access-log bucket under ``cloudfront/`` (that bucket is
  ``BucketOwnerPreferred``, so the ACL CloudFront's log delivery needs is possible; its
  lifecycle expires them with the other logs).
* Optional signed cookies for private libraries: a key group of one public key (from its PEM or
  an existing key id); every behavior then requires a valid ``CloudFront-*`` cookie set. The
  private key lives in a Secrets Manager secret the operator creates; the stack only names it
  (never creates or reads it at synth). ``lambdas/shared/cloudfront_cookies.py`` signs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.data_lake import IMAGE_PREFIX, VIDEO_PREFIX
from constructs_lib.nag import acknowledge_rule
from constructs_lib.props import require

# What the distribution may read from the processed bucket.
SERVED_PREFIXES = (VIDEO_PREFIX, IMAGE_PREFIX)
# Rewritten when captions are added: cached briefly so a player sees the new playlist soon.
SHORT_CACHED_EXTENSIONS = ("m3u8",)
# Written once per asset: cached long.
LONG_CACHED_EXTENSIONS = ("ts", "m4s", "mp4", "jpg", "vtt")
# An image's renditions (its labels.json falls to the default, short, behavior).
IMAGE_LONG_CACHED_EXTENSIONS = ("webp", "avif", "jpg")
LOG_PREFIX = "cloudfront/"
# CloudFront's names (as in the console and the template) and CDK's for them.
PRICE_CLASSES = {
    "PriceClass_100": cloudfront.PriceClass.PRICE_CLASS_100,
    "PriceClass_200": cloudfront.PriceClass.PRICE_CLASS_200,
    "PriceClass_All": cloudfront.PriceClass.PRICE_CLASS_ALL,
}
# S3 response headers that say how the object is encrypted (the key ARN among them).
REMOVED_HEADERS = (
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-bucket-key-enabled",
)
ONE_YEAR_S = 365 * 24 * 3600
HSTS_MAX_AGE_S = 2 * ONE_YEAR_S

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CERT_ARN_RE = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$")
_WEB_ACL_RE = re.compile(r"^arn:aws[a-z-]*:wafv2:([a-z0-9-]+):\d{12}:global/webacl/[\w-]+/[\w-]+$")
_ORIGIN_RE = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$")
_SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_KEY_ID_RE = re.compile(r"^K[A-Z0-9]{8,32}$")
_DISTRIBUTION_ID_RE = re.compile(r"^E[A-Z0-9]{8,20}$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
PEM_HEADER = "-----BEGIN PUBLIC KEY-----"


@dataclass(frozen=True)
class SignedCookies:
    """Configuration field ``delivery.signed_cookies``: only viewers with signed cookies play.

    Give the public key as PEM (the stack creates the CloudFront public key and key group) or
    the id of a public key already in CloudFront. The private key stays with the operator, in
    the Secrets Manager secret ``private_key_secret_name`` (created outside this app, never
    read at synth); whatever signs cookies reads it there.
    """

    private_key_secret_name: str
    public_key_pem: str | None = None
    public_key_id: str | None = None

    def __post_init__(self) -> None:
        name = "delivery.signed_cookies"
        require(
            (self.public_key_pem is None) != (self.public_key_id is None),
            f"{name}.public_key_pem",
            "give exactly one of public_key_pem and public_key_id",
        )
        if self.public_key_pem is not None:
            require(
                self.public_key_pem.strip().startswith(PEM_HEADER),
                f"{name}.public_key_pem",
                f"must be a PEM public key starting with {PEM_HEADER!r} "
                "(openssl rsa -pubout), never the private key",
            )
        if self.public_key_id is not None:
            require(
                bool(_KEY_ID_RE.match(self.public_key_id)),
                f"{name}.public_key_id",
                f"must be a CloudFront public key id (K...), got {self.public_key_id!r}",
            )
        require(
            bool(_SECRET_NAME_RE.match(self.private_key_secret_name)),
            f"{name}.private_key_secret_name",
            f"must be a Secrets Manager secret name, got {self.private_key_secret_name!r}",
        )


@dataclass(frozen=True)
class DeliveryConfig:
    """Configuration field ``delivery``: the CloudFront distribution of the processed bucket.

    On by default with the cheapest price class (North America and Europe edges); CloudFront
    costs nothing while idle.
    """

    enabled: bool = True
    price_class: str = "PriceClass_100"
    # A custom domain needs an ACM certificate in us-east-1 (CloudFront's rule) covering it;
    # the DNS record (CNAME or alias to the distribution) is the operator's.
    domain_name: str | None = None
    certificate_arn: str | None = None
    signed_cookies: SignedCookies | None = None
    # Playlists (and unlisted documents such as labels.json): seconds.
    playlist_default_ttl_s: int = 5
    playlist_max_ttl_s: int = 60
    # Segments, the MP4 proxy, thumbnails and captions: seconds.
    media_default_ttl_s: int = 24 * 3600
    media_max_ttl_s: int = ONE_YEAR_S
    cors_allowed_origins: tuple[str, ...] = ("*",)
    # ISO 3166-1 alpha-2 codes viewers may come from; empty: everywhere.
    geo_allowlist: tuple[str, ...] = ()
    # A WAFv2 web ACL (scope CLOUDFRONT, so in us-east-1) made outside this app.
    web_acl_arn: str | None = None
    # The deployed distribution's id (output DeliveryDistributionId): pins the data key's
    # CloudFront statement to it. Unset: any distribution of this account (see module doc).
    key_policy_distribution_id: str | None = None

    def __post_init__(self) -> None:
        require(
            self.price_class in PRICE_CLASSES,
            "delivery.price_class",
            f"one of {tuple(PRICE_CLASSES)}, got {self.price_class!r}",
        )
        require(
            (self.domain_name is None) == (self.certificate_arn is None),
            "delivery.domain_name",
            "domain_name and certificate_arn go together (give both or neither)",
        )
        if self.domain_name is not None:
            require(
                bool(_DOMAIN_RE.match(self.domain_name)),
                "delivery.domain_name",
                f"must be a lowercase DNS name, got {self.domain_name!r}",
            )
        if self.certificate_arn is not None:
            found = _CERT_ARN_RE.match(self.certificate_arn)
            require(
                found is not None,
                "delivery.certificate_arn",
                f"must be an ACM certificate ARN, got {self.certificate_arn!r}",
            )
            region = found.group(1) if found else ""
            require(
                region == "us-east-1",
                "delivery.certificate_arn",
                f"CloudFront uses ACM certificates from us-east-1 only, this one is in {region}",
            )
        self._check_ttls()
        require(len(self.cors_allowed_origins) > 0, "delivery.cors_allowed_origins", "empty")
        for origin in self.cors_allowed_origins:
            require(
                origin == "*" or bool(_ORIGIN_RE.match(origin)),
                "delivery.cors_allowed_origins",
                f"'*' or a scheme://host[:port] origin without a path, got {origin!r}",
            )
        if self.signed_cookies is not None:
            require(
                self.domain_name is not None,
                "delivery.signed_cookies",
                "needs domain_name: a site can set cookies for its own domain's subdomains, "
                "never for *.cloudfront.net",
            )
            require(
                "*" not in self.cors_allowed_origins,
                "delivery.cors_allowed_origins",
                "signed cookies travel only with credentialed requests, which browsers refuse "
                "with Access-Control-Allow-Origin '*': name the players' origins",
            )
        for code in self.geo_allowlist:
            require(
                bool(_COUNTRY_RE.match(code)),
                "delivery.geo_allowlist",
                f"ISO 3166-1 alpha-2 country codes, got {code!r}",
            )
        if self.web_acl_arn is not None:
            acl = _WEB_ACL_RE.match(self.web_acl_arn)
            require(
                acl is not None and acl.group(1) == "us-east-1",
                "delivery.web_acl_arn",
                "must be a WAFv2 web ACL of scope CLOUDFRONT (arn:aws:wafv2:us-east-1:"
                f"<account>:global/webacl/<name>/<id>), got {self.web_acl_arn!r}",
            )
        if self.key_policy_distribution_id is not None:
            require(
                bool(_DISTRIBUTION_ID_RE.match(self.key_policy_distribution_id)),
                "delivery.key_policy_distribution_id",
                f"must be a distribution id (E...), got {self.key_policy_distribution_id!r}",
            )

    def _check_ttls(self) -> None:
        for name in (
            "playlist_default_ttl_s",
            "playlist_max_ttl_s",
            "media_default_ttl_s",
            "media_max_ttl_s",
        ):
            value = getattr(self, name)
            require(
                isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                f"delivery.{name}",
                f"must be a whole number of seconds >= 0, got {value!r}",
            )
        require(
            self.playlist_default_ttl_s <= self.playlist_max_ttl_s <= 3600,
            "delivery.playlist_max_ttl_s",
            f"must be at least playlist_default_ttl_s ({self.playlist_default_ttl_s}) and at "
            "most 3600: playlists are rewritten when captions arrive",
        )
        require(
            self.media_default_ttl_s <= self.media_max_ttl_s <= ONE_YEAR_S,
            "delivery.media_max_ttl_s",
            f"must be at least media_default_ttl_s ({self.media_default_ttl_s}) and at most "
            f"{ONE_YEAR_S} (one year)",
        )


class Delivery(Construct):
    """The distribution, its policies, and the grants it needs on the bucket and its key.

    ``domain_name`` is what URLs use (the custom domain when configured, else the
    distribution's ``*.cloudfront.net`` name) and ``base_url`` is ``https://<domain_name>``: an
    object ``video/a/b.m3u8`` is served at ``<base_url>/video/a/b.m3u8``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        log_bucket: s3.IBucket,
        config: DeliveryConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self._stack = cdk.Stack.of(self)
        # The CloudFront-Key-Pair-Id cookie's value (with signed cookies).
        self.public_key_id: str | None = None
        self.key_group = self._key_group(config.signed_cookies)
        oac = cloudfront.S3OriginAccessControl(
            self,
            "OriginAccessControl",
            description="Signs CloudFront's requests to the processed bucket",
            signing=cloudfront.Signing.SIGV4_ALWAYS,
        )
        origin = origins.S3BucketOrigin.with_bucket_defaults(
            bucket, origin_access_control_id=oac.origin_access_control_id, origin_id="Processed"
        )
        short = self._cache_policy(
            "ShortCache",
            "Playlists and documents: cached briefly",
            default_s=config.playlist_default_ttl_s,
            max_s=config.playlist_max_ttl_s,
            compress=True,
        )
        long = self._cache_policy(
            "LongCache",
            "Segments, MP4, thumbnails and captions: written once, cached long",
            default_s=config.media_default_ttl_s,
            max_s=config.media_max_ttl_s,
            compress=False,
        )
        self.headers = self._headers_policy(config)
        behaviors = {
            f"{prefix}*.{extension}": self._behavior(origin, policy)
            for prefix, extensions, policy in (
                (VIDEO_PREFIX, SHORT_CACHED_EXTENSIONS, short),
                (VIDEO_PREFIX, LONG_CACHED_EXTENSIONS, long),
                (IMAGE_PREFIX, IMAGE_LONG_CACHED_EXTENSIONS, long),
            )
            for extension in extensions
        }
        certificate = (
            None
            if config.certificate_arn is None
            else acm.Certificate.from_certificate_arn(self, "Certificate", config.certificate_arn)
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Resource",
            comment=f"Media renditions of {self._stack.stack_name}",
            default_behavior=self._behavior(origin, short),
            additional_behaviors=behaviors,
            price_class=PRICE_CLASSES[config.price_class],
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_ipv6=True,
            domain_names=None if config.domain_name is None else [config.domain_name],
            certificate=certificate,
            minimum_protocol_version=(
                None if certificate is None else cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021
            ),
            ssl_support_method=None if certificate is None else cloudfront.SSLMethod.SNI,
            geo_restriction=(
                cloudfront.GeoRestriction.allowlist(*config.geo_allowlist)
                if config.geo_allowlist
                else None
            ),
            web_acl_id=config.web_acl_arn,
            enable_logging=True,
            log_bucket=log_bucket,
            log_file_prefix=LOG_PREFIX,
            log_includes_cookies=False,
        )
        self.distribution_id = self.distribution.distribution_id
        self.distribution_arn = self._stack.format_arn(
            service="cloudfront",
            region="",
            resource="distribution",
            resource_name=self.distribution.distribution_id,
        )
        self.domain_name = config.domain_name or self.distribution.distribution_domain_name
        self.base_url = f"https://{self.domain_name}"
        self._grant_read(bucket)
        self._acknowledge(config)

    # -- pieces ---------------------------------------------------------------------------------
    def _key_group(self, cookies: SignedCookies | None) -> cloudfront.IKeyGroup | None:
        if cookies is None:
            return None
        if cookies.public_key_pem is not None:
            public_key: cloudfront.IPublicKey = cloudfront.PublicKey(
                self,
                "PublicKey",
                encoded_key=cookies.public_key_pem.strip() + "\n",
                comment=f"Verifies signed cookies (private key: {cookies.private_key_secret_name})"[
                    :128
                ],
            )
        else:
            public_key = cloudfront.PublicKey.from_public_key_id(
                self, "PublicKey", str(cookies.public_key_id)
            )
        self.public_key_id = public_key.public_key_id
        return cloudfront.KeyGroup(
            self,
            "KeyGroup",
            items=[public_key],
            comment="Keys whose signed cookies may play this library",
        )

    def _cache_policy(
        self, construct_id: str, comment: str, *, default_s: int, max_s: int, compress: bool
    ) -> cloudfront.CachePolicy:
        return cloudfront.CachePolicy(
            self,
            construct_id,
            comment=comment,
            min_ttl=cdk.Duration.seconds(0),
            default_ttl=cdk.Duration.seconds(default_s),
            max_ttl=cdk.Duration.seconds(max_s),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.none(),
            header_behavior=cloudfront.CacheHeaderBehavior.none(),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
            enable_accept_encoding_gzip=compress,
            enable_accept_encoding_brotli=compress,
        )

    def _headers_policy(self, config: DeliveryConfig) -> cloudfront.ResponseHeadersPolicy:
        return cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment="Security headers and CORS for media players",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.seconds(HSTS_MAX_AGE_S),
                    include_subdomains=True,
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
                    override=True,
                ),
                xss_protection=cloudfront.ResponseHeadersXSSProtection(
                    protection=False, override=True
                ),
            ),
            cors_behavior=cloudfront.ResponseHeadersCorsBehavior(
                access_control_allow_credentials=config.signed_cookies is not None,
                access_control_allow_headers=["Range"],
                access_control_allow_methods=["GET", "HEAD", "OPTIONS"],
                access_control_allow_origins=list(config.cors_allowed_origins),
                access_control_expose_headers=["Content-Length", "Content-Range"],
                access_control_max_age=cdk.Duration.hours(1),
                origin_override=True,
            ),
            remove_headers=list(REMOVED_HEADERS),
        )

    def _behavior(
        self, origin: cloudfront.IOrigin, cache: cloudfront.ICachePolicy
    ) -> cloudfront.BehaviorOptions:
        return cloudfront.BehaviorOptions(
            origin=origin,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
            cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD_OPTIONS,
            cache_policy=cache,
            response_headers_policy=self.headers,
            compress=True,
            trusted_key_groups=None if self.key_group is None else [self.key_group],
        )

    def _grant_read(self, bucket: s3.IBucket) -> None:
        """This distribution may read ``SERVED_PREFIXES`` and decrypt what it reads there."""
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudFrontReadsServedPrefixes",
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in SERVED_PREFIXES],
                conditions={"StringEquals": {"AWS:SourceArn": self.distribution_arn}},
            )
        )
        key = bucket.encryption_key
        if key is None:
            return
        pinned = self.config.key_policy_distribution_id
        source = self._stack.format_arn(
            service="cloudfront",
            region="",
            resource="distribution",
            resource_name=pinned or "*",
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudFrontDecryptsServedObjects",
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions=(
                    {"StringEquals": {"AWS:SourceArn": source}}
                    if pinned
                    else {"ArnLike": {"AWS:SourceArn": source}}
                ),
            )
        )

    # -- cdk-nag --------------------------------------------------------------------------------
    def _acknowledge(self, config: DeliveryConfig) -> None:
        distribution = self.distribution
        if not config.geo_allowlist:
            acknowledge_rule(
                distribution,
                "AwsSolutions-CFR1",
                "The media is openly licensed (CC, public domain, Pixabay) with no territorial "
                "terms, so viewers are not limited by country; delivery.geo_allowlist adds "
                "a restriction where a library needs one.",
            )
        if config.web_acl_arn is None:
            acknowledge_rule(
                distribution,
                "AwsSolutions-CFR2",
                "Read-only static media from a private S3 origin (GET/HEAD/OPTIONS, no "
                "forms, no application behind it); a web ACL (USD 5/month plus rules and "
                "requests) is attached through delivery.web_acl_arn where rate limiting is "
                "wanted. CloudFront's Shield Standard applies regardless.",
            )
        if config.certificate_arn is None:
            acknowledge_rule(
                distribution,
                "AwsSolutions-CFR4",
                "Without a custom domain the distribution must use CloudFront's default "
                "*.cloudfront.net certificate, whose security policy CloudFront fixes; "
                "configuring delivery.domain_name with a certificate sets TLSv1.2_2021.",
            )
