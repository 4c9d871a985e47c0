"""SigV4 verification for the local AWS gateway, by recomputing the signature with botocore's signer.

moto checks no signature; AWS does. ``read_signature`` reads what a request claims (query
authentication, ``X-Amz-Credential``…, or an ``Authorization`` header); ``Verifier.verify`` rebuilds
the request as botocore would have signed it (method, path, the query minus ``X-Amz-Signature``
canonicalised from its decoded pairs, the signed headers, the same ``X-Amz-Date``), computes the
signature with botocore's ``SigV4QueryAuth``/``S3SigV4QueryAuth``/``SigV4Auth``/``S3SigV4Auth`` and
compares with ``hmac.compare_digest``. Then the time: a query-signed S3 request lives ``X-Amz-Expires``
seconds (1..604800); an SQS one the earlier of that and 15 minutes (see ``aws_gateway``'s docstring);
a header-signed one 15 minutes either way. Each refusal is the error the service would answer.
Pure: no I/O; the clock is injected.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from pbfm_tooling.aws_wire import AwsError, Incoming

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
MAX_PRESIGN_EXPIRES_S = 604_800  # SigV4: a week
SQS_SIGNATURE_LIFETIME_S = 900  # SQS honours a signed request ~15 minutes (see aws_gateway's docstring)
CLOCK_SKEW_S = 900
_AUTH_HEADER = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-fA-F]+)\s*$"
)


class Malformed(AwsError):
    """A signature that cannot even be read (SQS's IncompleteSignature; the gateway renames it for S3)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "IncompleteSignature", message)


@dataclass(frozen=True)
class SignedBy:
    """What a request claims about its signature (query or Authorization header)."""

    in_query: bool
    access_key: str
    scope_date: str
    region: str
    service: str
    amz_date: str
    signed_headers: str
    signature: str
    session_token: str | None
    expires_s: int | None  # query auth only


def read_signature(request: Incoming) -> SignedBy | None:
    """The signature a request claims, or None when it is unsigned; Malformed when it cannot be read."""
    query = dict(request.query)
    authorization = request.header("authorization")
    if "X-Amz-Credential" in query:
        if authorization:
            raise Malformed("only one auth mechanism allowed: the query or the Authorization header")
        for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                     "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"):
            if sum(1 for key, _ in request.query if key == name) > 1:
                raise Malformed(f"{name} appears more than once")
        missing = [name for name in ("X-Amz-Algorithm", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                                     "X-Amz-Signature") if name not in query]
        if missing:
            raise Malformed(f"query-string authentication requires {', '.join(missing)}")
        if query["X-Amz-Algorithm"] != ALGORITHM:
            raise Malformed(f"X-Amz-Algorithm only supports {ALGORITHM!r}")
        try:
            expires = int(query["X-Amz-Expires"])
        except ValueError:
            raise Malformed("X-Amz-Expires should be a number") from None
        return _signed_by(True, query["X-Amz-Credential"], query["X-Amz-Date"], query["X-Amz-SignedHeaders"],
                          query["X-Amz-Signature"], query.get("X-Amz-Security-Token"), expires)
    if authorization:
        match = _AUTH_HEADER.match(authorization)
        if not match:
            raise Malformed("the Authorization header is not a SigV4 header")
        amz_date = request.header("x-amz-date")
        if not amz_date:
            raise Malformed("header authentication requires X-Amz-Date")
        return _signed_by(False, match["credential"], amz_date, match["signed"], match["signature"],
                          request.header("x-amz-security-token"), None)
    return None


def _signed_by(in_query: bool, credential: str, amz_date: str, signed_headers: str, signature: str,
               token: str | None, expires: int | None) -> SignedBy:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise Malformed(f"the credential {credential!r} is not <key>/<date>/<region>/<service>/aws4_request")
    return SignedBy(in_query, parts[0], parts[1], parts[2], parts[3], amz_date, signed_headers, signature,
                    token, expires)


@dataclass(frozen=True)
class Verifier:
    """Checks a request's SigV4 signature against the one key this local AWS accepts."""

    access_key: str
    secret_key: str
    session_token: str | None
    region: str
    clock: Callable[[], float] = time.time

    def verify(self, request: Incoming, signed: SignedBy, host: str) -> None:
        """Return when ``request`` is signed by our key and still valid; raise AwsError otherwise."""
        s3 = signed.service == "s3"
        if not hmac.compare_digest(signed.access_key.encode(), self.access_key.encode()):
            if s3:
                raise AwsError(403, "InvalidAccessKeyId",
                               "The AWS Access Key Id you provided does not exist in our records.",
                               {"AWSAccessKeyId": signed.access_key})
            raise AwsError(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        if self.session_token is not None and not hmac.compare_digest(
                (signed.session_token or "").encode(), self.session_token.encode()):
            if s3:
                raise AwsError(400, "InvalidToken", "The provided token is malformed or otherwise invalid.")
            raise AwsError(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        if signed.region != self.region:
            if s3:
                where = "X-Amz-Credential parameter" if signed.in_query else "Authorization header"
                raise AwsError(400, "AuthorizationQueryParametersError" if signed.in_query
                               else "AuthorizationHeaderMalformed",
                               f"Error parsing the {where}; the region '{signed.region}' is wrong; "
                               f"expecting '{self.region}'", {"Region": self.region})
            raise AwsError(403, "SignatureDoesNotMatch", "Credential should be scoped to a valid region. ")
        self._check_time(signed)
        canonical, string_to_sign, expected = self._expected_signature(request, signed, host)
        if not hmac.compare_digest(expected.encode(), signed.signature.lower().encode()):
            if s3:
                raise AwsError(403, "SignatureDoesNotMatch",
                               "The request signature we calculated does not match the signature you provided. "
                               "Check your key and signing method.",
                               {"AWSAccessKeyId": signed.access_key, "StringToSign": string_to_sign,
                                "SignatureProvided": signed.signature, "CanonicalRequest": canonical})
            raise AwsError(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature you provided. "
                           "Check your AWS Secret Access Key and signing method. "
                           "Consult the service documentation for details.")

    def _check_time(self, signed: SignedBy) -> None:
        s3 = signed.service == "s3"
        try:
            signed_at = datetime.strptime(signed.amz_date, AMZ_DATE).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise Malformed(f"X-Amz-Date must be in the ISO8601 Long Format yyyyMMdd'T'HHmmss'Z': "
                             f"{signed.amz_date!r}") from None
        if signed.scope_date != signed.amz_date[:8]:
            raise AwsError(403, "SignatureDoesNotMatch",
                           f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                           f"from HTTP: '{signed.scope_date}' != '{signed.amz_date[:8]}'")
        now = int(self.clock())
        if signed.expires_s is not None and not 1 <= signed.expires_s <= MAX_PRESIGN_EXPIRES_S:
            if s3:
                raise AwsError(400, "AuthorizationQueryParametersError",
                               "X-Amz-Expires must be less than a week (in seconds); that is, the given "
                               "X-Amz-Expires must be less than 604800 seconds")
            raise AwsError(400, "InvalidQueryParameter",
                           f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_EXPIRES_S} seconds")
        if signed_at > now + CLOCK_SKEW_S:
            if s3:
                raise AwsError(403, "AccessDenied", "Request is not valid yet")
            raise AwsError(403, "SignatureDoesNotMatch",
                           f"Signature not yet current: {signed.amz_date} is still later than "
                           f"{_amz(now + CLOCK_SKEW_S)} ({_amz(now)} + 15 min.)")
        if signed.expires_s is None:
            lifetime, what = CLOCK_SKEW_S, "15 min."
        elif s3:
            lifetime, what = signed.expires_s, f"{signed.expires_s} sec."
        else:
            lifetime = min(signed.expires_s, SQS_SIGNATURE_LIFETIME_S)
            what = "15 min." if lifetime == SQS_SIGNATURE_LIFETIME_S else f"{lifetime} sec."
        if now > signed_at + lifetime:
            if s3 and signed.in_query:
                raise AwsError(403, "AccessDenied", "Request has expired",
                               {"X-Amz-Expires": str(signed.expires_s), "Expires": _iso(signed_at + lifetime),
                                "ServerTime": _iso(now)})
            if s3:
                raise AwsError(403, "RequestTimeTooSkewed",
                               "The difference between the request time and the current time is too large.",
                               {"RequestTime": signed.amz_date, "ServerTime": _iso(now)})
            raise AwsError(403, "SignatureDoesNotMatch",
                           f"Signature expired: {signed.amz_date} is now earlier than "
                           f"{_amz(now - lifetime)} ({_amz(now)} - {what})")

    def _expected_signature(self, request: Incoming, signed: SignedBy, host: str) -> tuple[str, str, str]:
        """botocore's canonical request, string to sign and signature for what was received."""
        signer_class: Any
        if signed.in_query:
            signer_class = S3SigV4QueryAuth if signed.service == "s3" else SigV4QueryAuth
        else:
            signer_class = S3SigV4Auth if signed.service == "s3" else SigV4Auth
        signer = signer_class(Credentials(self.access_key, self.secret_key, self.session_token),
                              signed.service, signed.region)
        names = [name for name in signed.signed_headers.lower().split(";") if name]
        if "host" not in names:
            raise Malformed("the host header must be signed")
        headers = {name: host if name == "host" else request.headers.get(name, "") for name in names}
        aws_request = AWSRequest(method=request.method, url=f"http://{host}{request.path}", headers=headers,
                                 data=request.body or None)
        # Canonicalised from the decoded pairs, as AWS does: a client may have percent-encoded differently.
        aws_request.params = [(key, value) for key, value in request.query if key != "X-Amz-Signature"]
        aws_request.context["timestamp"] = signed.amz_date
        if not signed.in_query and signed.service == "s3":
            claimed = request.header("x-amz-content-sha256") or ""
            if re.fullmatch(r"[0-9a-f]{64}", claimed) and claimed != hashlib.sha256(request.body).hexdigest():
                raise AwsError(400, "XAmzContentSHA256Mismatch",
                               "The provided 'x-amz-content-sha256' header does not match what was computed.")
        canonical = signer.canonical_request(aws_request)
        if canonical.split("\n")[-2] != signed.signed_headers.lower():
            # A header botocore never signs (user-agent, expect, …) was named: we cannot reproduce it.
            raise AwsError(403, "SignatureDoesNotMatch", f"unsupported signed headers {signed.signed_headers!r}")
        string_to_sign = signer.string_to_sign(aws_request, canonical)
        return canonical, string_to_sign, str(signer.signature(string_to_sign, aws_request))


def _amz(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime(AMZ_DATE)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
