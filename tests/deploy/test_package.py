"""The merged CloudFormation template and the deployment zip, as ``chalice package`` makes them."""

from __future__ import annotations

import ast
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalice_app import static_site
from pbfm_tooling import deploy, resources

STAGES = ("dev", "prod")
ALLOWED_TYPES = {
    "AWS::IAM::Role",
    "AWS::Serverless::Function",
    "AWS::Serverless::Api",
    "AWS::Lambda::Permission",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::DynamoDB::Table",
}
TABLE_ARN = {"Fn::GetAtt": [deploy.TABLE_ID, "Arn"]}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statement_violations(statement: dict[str, Any], stage: deploy.Stage, table_arn: Any) -> list[str]:
    """What a Lambda role statement grants beyond the stage's queues, bucket, table and own logs."""
    problems = []
    if set(statement) - {"Sid", "Effect", "Action", "Resource"}:
        problems.append(f"unexpected keys {sorted(set(statement))} (NotAction/NotResource/Principal?)")
    if statement.get("Effect") != "Allow":
        problems.append(f"Effect {statement.get('Effect')!r}")
    bucket = f"arn:aws:s3:::{stage.bucket_name}"
    allowed: dict[str, list[Any]] = {
        "sqs": [stage.queue_arn],
        "dynamodb": [table_arn],
        "logs": [stage.log_group_arn, f"{stage.log_group_arn}:*"],
    }
    for action in _as_list(statement.get("Action", [])):
        if "*" in action:
            problems.append(f"wildcard action {action}")
            continue
        service = action.split(":")[0]
        if service == "s3":
            allowed_s3 = [bucket] if action == "s3:ListBucket" else [f"{bucket}/*"]
            expected = allowed_s3
        elif service in allowed:
            expected = allowed[service]
        else:
            problems.append(f"action of another service: {action}")
            continue
        for resource in _as_list(statement.get("Resource")):
            if resource not in expected:
                problems.append(f"{action} on {resource!r} (only {expected!r})")
    return problems


def template_violations(template: dict[str, Any], stage: deploy.Stage) -> list[str]:
    problems: list[str] = []
    roles = {k for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    for logical_id, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind not in ALLOWED_TYPES:
            problems.append(f"{logical_id}: resource type {kind} is not part of the design")
        if kind == "AWS::IAM::Role":
            assume = props["AssumeRolePolicyDocument"]["Statement"]
            if [(s["Principal"], s["Action"]) for s in assume] != [
                ({"Service": "lambda.amazonaws.com"}, "sts:AssumeRole")
            ]:
                problems.append(f"{logical_id}: assumable by {assume}")
            for key in ("ManagedPolicyArns", "PermissionsBoundary"):
                if key in props:
                    problems.append(f"{logical_id}: {key} present")
            for policy in props.get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    problems += [f"{logical_id}: {p}" for p in statement_violations(statement, stage, TABLE_ARN)]
        elif kind == "AWS::Serverless::Function":
            # SAM would turn a Policies property into another role; the role must be one of ours.
            if "Policies" in props or props["Role"] not in [{"Fn::GetAtt": [r, "Arn"]} for r in roles]:
                problems.append(f"{logical_id}: role {props.get('Role')} / policies {props.get('Policies')}")
            for event in props.get("Events", {}).values():
                if event["Type"] != "Schedule":
                    problems.append(f"{logical_id}: event source {event['Type']}")
        elif kind == "AWS::S3::BucketPolicy":
            statements = props["PolicyDocument"]["Statement"]
            expected = resources.public_static_policy(stage.bucket_name)["Statement"]
            if statements != expected:
                problems.append(f"{logical_id}: {statements}")
        elif kind == "AWS::Lambda::Permission" and (props["Principal"], props["Action"], props["FunctionName"]) != (
            "apigateway.amazonaws.com",
            "lambda:InvokeFunction",
            {"Ref": "APIHandler"},
        ):
            problems.append(f"{logical_id}: {props}")
    return problems


@pytest.fixture(params=STAGES)
def stage(request: pytest.FixtureRequest) -> deploy.Stage:
    return deploy.Stage.load(request.param)


def _template(packaged: Callable[[str], Path], stage: deploy.Stage) -> dict[str, Any]:
    return json.loads((packaged(stage.name) / "sam.json").read_text())


def test_cfn_lint_clean(packaged: Callable[[str], Path], stage: deploy.Stage) -> None:
    deploy.lint(packaged(stage.name) / "sam.json")  # any finding raises


def test_a_finding_of_cfn_lint_stops_the_deploy_and_names_its_rule(packaged: Callable[[str], Path],
                                                                   tmp_path: Path) -> None:
    template = json.loads((packaged("dev") / "sam.json").read_text())
    template["Resources"]["APIHandler"]["Properties"]["Runtime"] = "python2.7"
    broken = tmp_path / "sam.json"
    broken.write_text(json.dumps(template))
    with pytest.raises(deploy.DeployError, match=r"cfn-lint found 1 problem\(s\)[\s\S]*E2533"):
        deploy.lint(broken)


def test_template_grants_only_the_design(packaged: Callable[[str], Path], stage: deploy.Stage) -> None:
    template = _template(packaged, stage)
    assert template_violations(template, stage) == []
    roles = [v for v in template["Resources"].values() if v["Type"] == "AWS::IAM::Role"]
    assert len(roles) == len(deploy.FUNCTIONS)  # every function's role was replaced, none was left over
    for role in roles:
        assert [p["PolicyDocument"] for p in role["Properties"]["Policies"]] == [
            deploy.merge_template(stage)["Resources"]["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        ]


def test_checker_catches_excess() -> None:
    stage = deploy.Stage.load("dev")
    base = {"Effect": "Allow"}
    assert statement_violations({**base, "Action": "sqs:SendMessage", "Resource": "*"}, stage, TABLE_ARN)
    assert statement_violations(
        {**base, "Action": "s3:*", "Resource": f"arn:aws:s3:::{stage.bucket_name}/*"}, stage, TABLE_ARN
    )
    assert statement_violations({**base, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::other"}, stage, TABLE_ARN)
    assert statement_violations({**base, "Action": "iam:PassRole", "Resource": "*"}, stage, TABLE_ARN)
    assert statement_violations({**base, "NotAction": "s3:GetObject", "Resource": "*"}, stage, TABLE_ARN)
    table = "arn:aws:dynamodb:*:*:table/other"
    assert statement_violations({**base, "Action": "dynamodb:GetItem", "Resource": table}, stage, TABLE_ARN)


def test_template_resources_match_resources_module(packaged: Callable[[str], Path], stage: deploy.Stage) -> None:
    res = _template(packaged, stage)["Resources"]
    table = res[deploy.TABLE_ID]["Properties"]
    assert table == resources.table_properties(stage.table_name)
    bucket = res[deploy.BUCKET_ID]["Properties"]
    assert bucket["BucketName"] == stage.bucket_name
    (rule,) = bucket["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedMethods"] == ["GET", "HEAD"]
    assert rule["AllowedOrigins"] == [deploy.API_ORIGIN, *stage.page_origins]
    assert [r["Prefix"] for r in bucket["LifecycleConfiguration"]["Rules"]] == ["sessions/"]
    for function in deploy.FUNCTIONS:
        props = res[function]["Properties"]
        assert props["Timeout"] >= 25, "the 20 s long poll needs headroom"
        variables = props["Environment"]["Variables"]
        assert variables["PBFM_TABLE"] == stage.table_name and variables["PBFM_BUCKET"] == stage.bucket_name
        assert variables["PBFM_COOKIE_SECRET"] == {"Ref": "CookieSecret"}
    assert res["SweepSessions"]["Properties"]["Events"]["SweepSessionsEvent"]["Properties"] == {
        "Schedule": "rate(1 minute)"
    }


def test_policy_files_match_configuration(stage: deploy.Stage) -> None:
    """``chalice deploy`` reads these; they are generated from config.json and must not drift."""
    committed = json.loads(stage.policy_file().read_text())
    assert committed == deploy.stage_policy(stage)
    table = f"arn:aws:dynamodb:*:*:table/{stage.table_name}"
    for statement in committed["Statement"]:
        assert statement_violations(statement, stage, table) == []


def test_zip_holds_what_lambda_needs(packaged: Callable[[str], Path]) -> None:
    with zipfile.ZipFile(packaged("dev") / "deployment.zip") as archive:
        names = set(archive.namelist())
    tops = {n.split("/")[0] for n in names}
    assert {"app.py", "chalice", "chalice_app", "web_py", "pydantic", "pydantic_core", "pyscript.toml"} <= tops
    # Lambda provides boto3; mcp is not imported at run time; the runtime lives in S3.
    assert not tops & {"boto3", "botocore", "mcp", "moto"}
    assert not any(n.startswith("web_static/vendor/") for n in names)
    assert any(n.startswith("pydantic_core/") and n.endswith("x86_64-linux-gnu.so") for n in names)
    for name in static_site.STATIC_FILES | {"page.html", "landing.html", "not_found.html"}:
        assert f"web_static/{name}" in names
    page_modules = {n for n in static_site.PAGE_MODULES if (static_site.WEB_PY / n).is_file()}
    assert {f"web_py/{n}" for n in page_modules} <= names
    assert {f"chalice_app/{p.name}" for p in (deploy.ROOT / "chalice_app").glob("*.py")} <= names
    # The tooling is installed with the project but never shipped.
    assert not tops & {"pbfm_tooling", "bench", "tests", "scripts", "moto", "httpx", "mcp"}


RUNTIME_PACKAGES = ("chalice_app", "web_py")
TOOLING_IMPORTS = {"subprocess", "moto", "mcp", "httpx", "playwright", "pbfm_tooling", "bench", "tests"}


def test_runtime_code_imports_no_tooling() -> None:
    """The zipped packages import nothing of the tooling, not even lazily inside a function."""
    offenders = []
    for package in RUNTIME_PACKAGES:
        for path in sorted((deploy.ROOT / package).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in TOOLING_IMPORTS]
    assert offenders == []


def test_custom_domain_is_a_page_origin(tmp_path: Path) -> None:
    config = json.loads((deploy.ROOT / ".chalice" / "config.json").read_text())
    config["stages"]["dev"]["api_gateway_custom_domain"] = {
        "domain_name": "webpage.example.com",
        "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    stage = deploy.Stage.load("dev", tmp_path / "config.json")
    assert stage.page_origins == ("https://webpage.example.com",)
    rules = deploy.merge_template(stage)["Resources"][deploy.BUCKET_ID]["Properties"]["CorsConfiguration"]
    assert rules["CorsRules"][0]["AllowedOrigins"] == [deploy.API_ORIGIN, "https://webpage.example.com"]
