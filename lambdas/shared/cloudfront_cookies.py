"""CloudFront signed cookies for a private library (``delivery.signed_cookies`` in config).

A viewer holding the three cookies may fetch whatever the custom policy's ``Resource`` covers
(``https://media.example.com/video/*``, say) until it expires: CloudFront checks the signature
against the key group's public key at the edge. Cookies need the distribution's custom domain:
a site can set them for its own domain's subdomains, never for ``*.cloudfront.net``.

The same three values as query parameters (``Policy``, ``Signature``, ``Key-Pair-Id``) make a
signed URL with that custom policy (``as_query``): the dashboard, which cannot set cookies for
the distribution's domain, signs its links that way, one wildcard policy for every object it
shows, so a player's relative requests carry it too.

The policy is built by botocore's ``CloudFrontSigner`` (the format CloudFront documents, with
the statement's keys in the documented order) and signed RSA-SHA1 with PKCS#1 v1.5, what
CloudFront verifies for a 2048-bit RSA key (it also takes ECDSA P-256 keys, which this module
does not sign with). The private key is read by the caller (from
the Secrets Manager secret the stack names in ``DeliverySigningKeySecretName``) and passed as
PEM; it is never logged. Signing needs ``cryptography``, which the Lambda layer does not ship
today (``lambdas/requirements.txt``): it is imported when a key is loaded, not at import.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from botocore.signers import CloudFrontSigner

POLICY_COOKIE = "CloudFront-Policy"
SIGNATURE_COOKIE = "CloudFront-Signature"
KEY_PAIR_ID_COOKIE = "CloudFront-Key-Pair-Id"

Signer = Callable[[bytes], bytes]


class CookieSigningError(ValueError):
    """The cookies cannot be signed as asked (bad key, resource or times); retrying won't help."""


def url_safe_b64(data: bytes) -> str:
    """CloudFront's base64 for URLs and cookies: ``+`` -> ``-``, ``=`` -> ``_``, ``/`` -> ``~``."""
    return base64.b64encode(data).decode().translate(str.maketrans("+=/", "-_~"))


def from_url_safe_b64(text: str) -> bytes:
    return base64.b64decode(text.translate(str.maketrans("-_~", "+=/")))


def rsa_sha1_signer(private_key_pem: str | bytes) -> Signer:
    """A signer for ``CloudFrontSigner``: RSA PKCS#1 v1.5 over SHA-1 with the given key."""
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: PLC0415

    pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as err:
        raise CookieSigningError("the signing key is not an unencrypted PEM private key") from err
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CookieSigningError("this signer takes a 2048-bit RSA key; the key is not RSA")
    if key.key_size != 2048:
        raise CookieSigningError(f"CloudFront takes 2048-bit RSA keys, this one is {key.key_size}")

    def sign(message: bytes) -> bytes:
        # CloudFront verifies RSA signatures over SHA-1: its protocol, not a choice made here.
        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303

    return sign


@dataclass(frozen=True)
class SignedCookies:
    """The three cookie values, and the ``Set-Cookie`` headers that carry them."""

    policy: str
    signature: str
    key_pair_id: str
    expires_at: datetime

    def as_dict(self) -> dict[str, str]:
        return {
            POLICY_COOKIE: self.policy,
            SIGNATURE_COOKIE: self.signature,
            KEY_PAIR_ID_COOKIE: self.key_pair_id,
        }

    def as_query(self) -> str:
        """The signed-URL form: append to a covered URL (``url + "?" + query``)."""
        return f"Policy={self.policy}&Signature={self.signature}&Key-Pair-Id={self.key_pair_id}"

    def set_cookie_headers(self, *, domain: str, path: str = "/") -> list[str]:
        """One ``Set-Cookie`` value per cookie: for ``domain`` (the distribution's custom domain
        or its parent), HTTPS only, hidden from scripts, expiring with the policy."""
        expires = format_datetime(self.expires_at.astimezone(UTC), usegmt=True)
        attributes = f"Domain={domain}; Path={path}; Expires={expires}; Secure; HttpOnly"
        return [
            f"{name}={value}; {attributes}; SameSite=Lax" for name, value in self.as_dict().items()
        ]


def sign_cookies(
    *,
    resource: str,
    expires_at: datetime,
    key_pair_id: str,
    private_key_pem: str | bytes | None = None,
    signer: Signer | None = None,
    now: datetime,
    starts_at: datetime | None = None,
) -> SignedCookies:
    """Cookies for a custom policy: ``resource`` (a URL, ``*`` wildcards allowed) until
    ``expires_at`` (and not before ``starts_at``). Give the PEM key or a ready ``signer``."""
    if not resource.startswith("https://"):
        raise CookieSigningError(f"resource must be an https:// URL pattern, got {resource!r}")
    for name, moment in (("expires_at", expires_at), ("now", now), ("starts_at", starts_at)):
        if moment is not None and moment.tzinfo is None:
            raise CookieSigningError(f"{name} must be timezone-aware")
    if expires_at <= now:
        raise CookieSigningError(f"expires_at {expires_at.isoformat()} is not in the future")
    if starts_at is not None and starts_at >= expires_at:
        raise CookieSigningError("starts_at must come before expires_at")
    if not key_pair_id:
        raise CookieSigningError("key_pair_id (the CloudFront public key id) is empty")
    if (private_key_pem is None) == (signer is None):
        raise CookieSigningError("give exactly one of private_key_pem and signer")
    sign = signer if signer is not None else rsa_sha1_signer(private_key_pem or b"")
    cloudfront = CloudFrontSigner(key_pair_id, sign)
    policy = cloudfront.build_policy(resource, expires_at, date_greater_than=starts_at)
    payload = policy.encode()
    return SignedCookies(
        policy=url_safe_b64(payload),
        signature=url_safe_b64(sign(payload)),
        key_pair_id=key_pair_id,
        expires_at=expires_at,
    )
