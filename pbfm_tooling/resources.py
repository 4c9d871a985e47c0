"""The bucket, the table and their CORS/TTL/lifecycle: defined once, used twice.

The CloudFormation merge template (``pbfm_tooling/deploy.py``) and the local stack on moto (and the
``chalice deploy`` path, which creates no CloudFormation resources) both build their resources from
the functions below, so the table's keys or the bucket's CORS cannot drift between moto and AWS.

The definitions are CloudFormation-shaped (the richer of the two vocabularies); ``create_resources``
translates them into boto3 calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

PARTITION_KEY = "PK"
SORT_KEY = "SK"
TTL_ATTRIBUTE = "expires_at"

# Per-session content written by the app; nothing under these prefixes outlives its session for long.
EXPIRING_PREFIXES: tuple[str, ...] = ("sessions/",)
# Sessions live 24 h (``Settings.session_ttl_s``); a day of slack keeps a just-ended session's
# archive readable. S3 lifecycle counts whole days.
CONTENT_EXPIRY_DAYS = 2

# The PyScript/Pyodide runtime lives under this prefix and is the only publicly readable part.
STATIC_PREFIX = "static/"

CORS_METHODS: tuple[str, ...] = ("GET", "HEAD")
CORS_MAX_AGE_S = 3600

# Keys of AWS::DynamoDB::Table Properties that CreateTable accepts under the same name and shape.
_CREATE_TABLE_KEYS = ("TableName", "AttributeDefinitions", "KeySchema", "BillingMode")


def table_properties(table_name: str) -> dict[str, Any]:
    """``AWS::DynamoDB::Table`` Properties: string PK/SK, on-demand, TTL on ``expires_at``."""
    return {
        "TableName": table_name,
        "AttributeDefinitions": [
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": SORT_KEY, "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
    }


def create_table_kwargs(properties: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation table Properties -> ``create_table`` kwargs (TTL is a separate API call)."""
    return {key: properties[key] for key in _CREATE_TABLE_KEYS if key in properties}


def bucket_cors_rules(origins: Sequence[str]) -> list[dict[str, Any]]:
    """CORS rules in boto3's ``put_bucket_cors`` shape; ``cfn_cors_rules`` converts them.

    Only GET/HEAD: the page reads presigned content and the runtime; it never writes to the bucket.
    No origins means no rule at all (S3 rejects a rule with an empty origin list).
    """
    if not origins:
        return []
    return [
        {
            "ID": "page-reads",
            "AllowedMethods": list(CORS_METHODS),
            "AllowedOrigins": list(origins),
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag", "Content-Length", "Content-Type"],
            "MaxAgeSeconds": CORS_MAX_AGE_S,
        }
    ]


# boto3 and CloudFormation spell three of the CORS fields differently.
_CFN_CORS_NAMES = {"ID": "Id", "ExposeHeaders": "ExposedHeaders", "MaxAgeSeconds": "MaxAge"}


def cfn_cors_rules(rules: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """boto3 CORS rules -> ``AWS::S3::Bucket`` ``CorsConfiguration.CorsRules``."""
    return [{_CFN_CORS_NAMES.get(key, key): value for key, value in rule.items()} for rule in rules]


def bucket_lifecycle_rules(
    prefixes: Sequence[str] = EXPIRING_PREFIXES, days: int = CONTENT_EXPIRY_DAYS
) -> list[dict[str, Any]]:
    """Lifecycle rules in boto3's ``put_bucket_lifecycle_configuration`` shape."""
    return [
        {
            "ID": f"expire-{prefix.strip('/').replace('/', '-')}",
            "Status": "Enabled",
            "Filter": {"Prefix": prefix},
            "Expiration": {"Days": days},
            # Uploads abandoned mid-way would otherwise be billed forever.
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
        for prefix in prefixes
    ]


def cfn_lifecycle_rules(rules: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """boto3 lifecycle rules -> ``AWS::S3::Bucket`` ``LifecycleConfiguration.Rules``."""
    return [
        {
            "Id": rule["ID"],
            "Status": rule["Status"],
            "Prefix": rule["Filter"]["Prefix"],
            "ExpirationInDays": rule["Expiration"]["Days"],
            "AbortIncompleteMultipartUpload": rule["AbortIncompleteMultipartUpload"],
        }
        for rule in rules
    ]


def public_static_policy(bucket_name: str, prefix: str = STATIC_PREFIX) -> dict[str, Any]:
    """Bucket policy letting anyone GET the runtime under ``static/`` and nothing else.

    The page loads Pyodide by relative URLs from ``pyodide.mjs``, which presigned URLs cannot
    express; the runtime is public open-source code, session content stays private (presigned).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicReadStaticRuntime",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket_name}/{prefix}*",
            }
        ],
    }


# Blocks public ACLs everywhere but lets the one bucket policy above make ``static/`` public.
PUBLIC_ACCESS_BLOCK: dict[str, bool] = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": False,
}


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _create_table(dynamodb: Any, table_name: str, sleep: Callable[[float], None], timeout_s: float) -> None:
    props = table_properties(table_name)
    try:
        dynamodb.create_table(**create_table_kwargs(props))
    except ClientError as exc:
        if _error_code(exc) != "ResourceInUseException":
            raise
    # A waiter would poll every 20 s; moto is active at once and AWS within seconds.
    deadline = time.monotonic() + timeout_s
    while dynamodb.describe_table(TableName=table_name)["Table"]["TableStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {table_name} not ACTIVE after {timeout_s:.0f} s")
        sleep(1.0)
    ttl = props["TimeToLiveSpecification"]
    current = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    # Enabling twice is a ValidationException in AWS; so is changing it while ENABLING.
    if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return
    dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)


def _create_bucket(s3: Any, bucket_name: str, region: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": bucket_name}
    # us-east-1 is the one region that rejects an explicit LocationConstraint.
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if _error_code(exc) != "BucketAlreadyOwnedByYou":
            raise


def create_resources(
    s3: Any,
    dynamodb: Any,
    *,
    table_name: str,
    bucket_name: str,
    region: str,
    cors_origins: Sequence[str],
    public_static: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    table_timeout_s: float = 120.0,
) -> None:
    """Create (or bring up to date) the table and the bucket with boto3 clients passed in.

    Idempotent: safe on every start of the local stack and on every deploy. ``public_static`` adds
    the public-read policy for ``static/`` (AWS deploys; the local stack serves the runtime itself).
    """
    _create_table(dynamodb, table_name, sleep, table_timeout_s)
    _create_bucket(s3, bucket_name, region)
    rules = bucket_cors_rules(cors_origins)
    if rules:
        s3.put_bucket_cors(Bucket=bucket_name, CORSConfiguration={"CORSRules": rules})
    else:
        s3.delete_bucket_cors(Bucket=bucket_name)
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket_name, LifecycleConfiguration={"Rules": bucket_lifecycle_rules()}
    )
    if public_static:
        # The access block must allow policies before the policy itself is accepted.
        s3.put_public_access_block(
            Bucket=bucket_name, PublicAccessBlockConfiguration=dict(PUBLIC_ACCESS_BLOCK)
        )
        s3.put_bucket_policy(Bucket=bucket_name, Policy=json.dumps(public_static_policy(bucket_name)))
