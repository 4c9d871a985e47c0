"""The deployment zip, unpacked next to only what the Lambda Python runtime provides, serves requests.

This is the handler Lambda would call (``app.app``), driven with API-Gateway-proxy events, with
moto standing in for SQS/DynamoDB/S3. It proves the zip is complete (``chalice package`` silently
leaves out anything outside app.py/chalicelib/vendor) and needs no library Lambda lacks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalice_app import static_site
from pbfm_tooling import deploy, resources

# What the python3.11 Lambda runtime has besides the standard library (boto3 and its dependencies).
LAMBDA_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
CHILD = Path(__file__).with_name("lambda_child.py")
SECRETS = {"CookieSecret": "c" * 48, "McpToken": "t" * 40}


def lambda_runtime(target: Path) -> Path:
    """A directory holding only the Lambda-provided libraries (links into this venv)."""
    target.mkdir()
    for name in LAMBDA_PROVIDED:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (target / source.name).symlink_to(source)
    return target


def resolve(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return SECRETS[value["Ref"]]
    assert isinstance(value, str), value
    return value


@pytest.fixture(scope="module")
def report(
    packaged: Callable[[str], Path], moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Run ``lambda_child.py`` once against the unpacked zip; its report, for the tests below."""
    tmp_path = tmp_path_factory.mktemp("lambda")
    package_dir = packaged("dev")
    stage = deploy.Stage.load("dev")
    task = tmp_path / "task"
    with zipfile.ZipFile(package_dir / "deployment.zip") as archive:
        archive.extractall(task)
    runtime = lambda_runtime(tmp_path / "runtime")

    region = "us-east-1"
    fake = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    clients = {s: boto3.client(s, endpoint_url=moto_endpoint, region_name=region, **fake) for s in ("s3", "dynamodb")}
    resources.create_resources(
        clients["s3"],
        clients["dynamodb"],
        table_name=stage.table_name,
        bucket_name=stage.bucket_name,
        region=region,
        cors_origins=["https://abc123.execute-api.us-east-1.amazonaws.com"],
    )

    template = json.loads((package_dir / "sam.json").read_text())
    handlers = {
        "api": template["Resources"]["APIHandler"]["Properties"]["Handler"],
        "schedule": template["Resources"]["SweepSessions"]["Properties"]["Handler"],
    }
    function_env = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    env = {name: resolve(value) for name, value in function_env.items()}
    env.update(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "LAMBDA_TASK_ROOT": str(task),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            # The one variable that differs from AWS: every boto3 client goes to moto.
            "PBFM_AWS_ENDPOINT_URL": moto_endpoint,
        }
    )
    # -I -S: no site-packages, no PYTHONPATH, no user site, no script directory -- then the same
    # search path order as Lambda: the task root, then the runtime's boto3.
    bootstrap = (
        "import runpy, sys;"
        f"sys.path[:0] = [{str(task)!r}, {str(runtime)!r}];"
        f"sys.argv = [{str(CHILD)!r}, {str(task)!r}, {json.dumps(handlers)!r}];"
        f"runpy.run_path({str(CHILD)!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", bootstrap],
        cwd=task,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-6000:]
    result_report: dict[str, Any] = json.loads(lines[-1].removeprefix("REPORT "))
    result_report["task"], result_report["runtime"] = str(task), str(runtime)
    return result_report


def test_imports_come_from_the_zip_and_the_lambda_runtime(report: dict[str, Any]) -> None:
    task, runtime = Path(report["task"]), Path(report["runtime"])
    assert report["app_file"] == str(task / "app.py")
    for name in ("chalice", "chalice_app", "web_py", "pydantic", "pydantic_core"):
        assert report["modules"][name].startswith(str(task)), (name, report["modules"][name])
    assert report["modules"]["boto3"].startswith(str(runtime))
    assert report["has_mcp"] is False
    assert report["tooling_imported"] == []


def test_create_join_poll(report: dict[str, Any]) -> None:
    assert report["create_without_token"] == 401
    assert report["created"]["status"] == 200, report["created"]
    assert report["created"]["body"]["session_id"] == "lambda-zip"
    joined = report["joined"]
    assert joined["status"] == 200, joined
    assert joined["body"]["role"] == "master" and report["cookie"].startswith("pbfm_lambda-zip=")
    polled = report["polled"]
    assert polled["status"] == 200, polled
    bodies = [m["body"] if isinstance(m["body"], dict) else json.loads(m["body"]) for m in polled["body"]["messages"]]
    types = [body["type"] for body in bodies]
    assert types and types[-1] == "END_OF_HISTORY", types


def test_page_points_at_the_bucket(report: dict[str, Any]) -> None:
    stage = deploy.Stage.load("dev")
    # The page served from the zip loads the runtime from this stage's bucket, by version.
    assert report["page"]["status"] == 200
    core_js = static_site.runtime_url(static_site.Settings(asset_base_url=stage.asset_base_url), "pyscript", "core.js")
    assert core_js.startswith(f"https://{stage.bucket_name}.s3.") and core_js in report["page"]["head"]


def test_scheduled_sweeper_handler(report: dict[str, Any]) -> None:
    # The scheduled sweeper's handler (``app.sweep_sessions``) must be importable from app.py too.
    assert "swept_error" not in report, report["swept_error"]
    assert isinstance(report["swept"], dict)
