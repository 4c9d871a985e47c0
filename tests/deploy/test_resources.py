"""``pbfm_tooling.resources`` against a real moto server: keys, TTL, lifecycle and CORS as S3 answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config

from pbfm_tooling import resources

PAGE_ORIGIN = "http://127.0.0.1:8000"


def _clients(endpoint: str, region: str) -> tuple[object, object]:
    config = Config(retries={"max_attempts": 1})
    kwargs = {"endpoint_url": endpoint, "region_name": region, "config": config}
    return boto3.client("s3", **kwargs), boto3.client("dynamodb", **kwargs)


def _preflight(endpoint: str, bucket: str, origin: str) -> tuple[int, str | None]:
    request = urllib.request.Request(
        f"{endpoint}/{bucket}/sessions/s1/prices/1.json",
        method="OPTIONS",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Access-Control-Allow-Origin")
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, exc.headers.get("Access-Control-Allow-Origin")


@pytest.mark.usefixtures("fake_aws_env")
@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_create_resources_on_moto(moto_endpoint: str, region: str) -> None:
    s3, dynamodb = _clients(moto_endpoint, region)
    suffix = uuid.uuid4().hex[:8]
    table, bucket = f"pbfm-test-{suffix}", f"pbfm-test-{suffix}"
    for _ in range(2):  # the second run proves idempotence
        resources.create_resources(
            s3, dynamodb, table_name=table, bucket_name=bucket, region=region, cors_origins=[PAGE_ORIGIN]
        )

    described = dynamodb.describe_table(TableName=table)["Table"]  # type: ignore[attr-defined]
    assert {k["AttributeName"]: k["KeyType"] for k in described["KeySchema"]} == {"PK": "HASH", "SK": "RANGE"}
    assert {a["AttributeName"]: a["AttributeType"] for a in described["AttributeDefinitions"]} == {
        "PK": "S",
        "SK": "S",
    }
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]  # type: ignore[attr-defined]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]  # type: ignore[attr-defined]
    assert [(r["Filter"]["Prefix"], r["Expiration"]["Days"]) for r in lifecycle] == [("sessions/", 2)]
    if region != "us-east-1":
        location = s3.get_bucket_location(Bucket=bucket)["LocationConstraint"]  # type: ignore[attr-defined]
        assert location == region

    assert _preflight(moto_endpoint, bucket, PAGE_ORIGIN) == (200, PAGE_ORIGIN)
    status, allowed = _preflight(moto_endpoint, bucket, "https://evil.example")
    assert status == 403 and allowed is None


@pytest.mark.usefixtures("fake_aws_env")
def test_public_static_policy_is_only_for_static(moto_endpoint: str) -> None:
    s3, dynamodb = _clients(moto_endpoint, "us-east-1")
    name = f"pbfm-test-{uuid.uuid4().hex[:8]}"
    resources.create_resources(
        s3,
        dynamodb,
        table_name=name,
        bucket_name=name,
        region="us-east-1",
        cors_origins=[],
        public_static=True,
    )

    policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])  # type: ignore[attr-defined]
    assert [s["Resource"] for s in policy["Statement"]] == [f"arn:aws:s3:::{name}/static/*"]
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]  # type: ignore[attr-defined]
    assert block["BlockPublicAcls"] and block["IgnorePublicAcls"]


def test_cfn_shapes() -> None:
    rules = resources.bucket_cors_rules(["https://a.example"])
    cfn = resources.cfn_cors_rules(rules)
    assert cfn[0]["MaxAge"] == 3600 and cfn[0]["Id"] == "page-reads"
    assert cfn[0]["ExposedHeaders"] == rules[0]["ExposeHeaders"]
    assert "MaxAgeSeconds" not in cfn[0]
    assert resources.bucket_cors_rules([]) == []
    lifecycle = resources.cfn_lifecycle_rules(resources.bucket_lifecycle_rules())
    assert lifecycle[0]["Prefix"] == "sessions/" and lifecycle[0]["ExpirationInDays"] == 2
    props = resources.table_properties("t")
    assert "TimeToLiveSpecification" not in resources.create_table_kwargs(props)
    assert resources.create_table_kwargs(props)["BillingMode"] == "PAY_PER_REQUEST"
