"""CloudFront signed cookies (``lambdas/shared/cloudfront_cookies.py``), checked the way
CloudFront checks them: the signature verifies against the public key over the decoded policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from lambdas.shared.cloudfront_cookies import (
    KEY_PAIR_ID_COOKIE,
    POLICY_COOKIE,
    SIGNATURE_COOKIE,
    CookieSigningError,
    from_url_safe_b64,
    sign_cookies,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RESOURCE = "https://media.example.com/video/*"
KEY_PAIR_ID = "K2JCJMDEHXQW5F"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_the_cookies_carry_a_custom_policy_whose_signature_the_public_key_verifies(key):
    # Given the operator's private key (as PEM text, as read from Secrets Manager)
    expires = NOW + timedelta(hours=2)

    # When cookies are signed for the library's video prefix
    cookies = sign_cookies(
        resource=RESOURCE,
        expires_at=expires,
        key_pair_id=KEY_PAIR_ID,
        private_key_pem=_pem(key).decode(),
        now=NOW,
    )

    # Then the three cookies are there, in CloudFront's URL-safe base64 alphabet
    values = cookies.as_dict()
    assert set(values) == {POLICY_COOKIE, SIGNATURE_COOKIE, KEY_PAIR_ID_COOKIE}
    assert values[KEY_PAIR_ID_COOKIE] == KEY_PAIR_ID
    for name in (POLICY_COOKIE, SIGNATURE_COOKIE):
        assert not set(values[name]) & set("+=/"), name
    # the policy grants the resource until the expiry, as CloudFront's custom policy says
    policy = from_url_safe_b64(values[POLICY_COOKIE])
    assert json.loads(policy) == {
        "Statement": [
            {
                "Resource": RESOURCE,
                "Condition": {"DateLessThan": {"AWS:EpochTime": int(expires.timestamp())}},
            }
        ]
    }
    # and the signature is RSA-SHA1 (PKCS#1 v1.5) over exactly those policy bytes
    signature = from_url_safe_b64(values[SIGNATURE_COOKIE])
    key.public_key().verify(signature, policy, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303


def test_a_start_time_is_part_of_the_signed_policy(key):
    starts = NOW + timedelta(minutes=5)
    cookies = sign_cookies(
        resource=RESOURCE,
        expires_at=NOW + timedelta(hours=1),
        starts_at=starts,
        key_pair_id=KEY_PAIR_ID,
        private_key_pem=_pem(key),
        now=NOW,
    )
    policy = json.loads(from_url_safe_b64(cookies.policy))
    condition = policy["Statement"][0]["Condition"]
    assert condition["DateGreaterThan"] == {"AWS:EpochTime": int(starts.timestamp())}


def test_a_tampered_policy_no_longer_verifies(key):
    # Given signed cookies, When someone widens the policy's resource
    cookies = sign_cookies(
        resource=RESOURCE,
        expires_at=NOW + timedelta(hours=1),
        key_pair_id=KEY_PAIR_ID,
        private_key_pem=_pem(key),
        now=NOW,
    )
    forged = from_url_safe_b64(cookies.policy).replace(b"/video/*", b"/*")
    # Then the signature does not match it
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        key.public_key().verify(
            from_url_safe_b64(cookies.signature),
            forged,
            padding.PKCS1v15(),
            hashes.SHA1(),  # noqa: S303
        )


def test_set_cookie_headers_are_for_the_domain_https_only_and_expire_with_the_policy(key):
    cookies = sign_cookies(
        resource=RESOURCE,
        expires_at=datetime(2026, 5, 1, 14, 0, tzinfo=UTC),
        key_pair_id=KEY_PAIR_ID,
        private_key_pem=_pem(key),
        now=NOW,
    )
    headers = cookies.set_cookie_headers(domain="media.example.com")
    assert [h.split("=", 1)[0] for h in headers] == [
        POLICY_COOKIE,
        SIGNATURE_COOKIE,
        KEY_PAIR_ID_COOKIE,
    ]
    for header in headers:
        attributes = header.split("; ")[1:]
        assert attributes == [
            "Domain=media.example.com",
            "Path=/",
            "Expires=Fri, 01 May 2026 14:00:00 GMT",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
        ]


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"resource": "http://media.example.com/*"}, "https:// URL pattern"),
        ({"expires_at": NOW}, "not in the future"),
        ({"expires_at": datetime(2026, 5, 2)}, "timezone-aware"),
        ({"starts_at": NOW + timedelta(days=2)}, "starts_at must come before"),
        ({"key_pair_id": ""}, "key_pair_id"),
        ({"private_key_pem": b"not a key"}, "not an unencrypted PEM private key"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(key, overrides, said):
    request = {
        "resource": RESOURCE,
        "expires_at": NOW + timedelta(days=1),
        "key_pair_id": KEY_PAIR_ID,
        "private_key_pem": _pem(key),
        "now": NOW,
    } | overrides
    with pytest.raises(CookieSigningError, match=said):
        sign_cookies(**request)


def test_keys_cloudfront_would_not_verify_are_refused():
    larger = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    with pytest.raises(CookieSigningError, match="2048-bit RSA keys, this one is 3072"):
        sign_cookies(
            resource=RESOURCE,
            expires_at=NOW + timedelta(hours=1),
            key_pair_id=KEY_PAIR_ID,
            private_key_pem=_pem(larger),
            now=NOW,
        )
    with pytest.raises(CookieSigningError, match="not RSA"):
        sign_cookies(
            resource=RESOURCE,
            expires_at=NOW + timedelta(hours=1),
            key_pair_id=KEY_PAIR_ID,
            private_key_pem=_pem(ec.generate_private_key(ec.SECP256R1())),
            now=NOW,
        )
