"""``pbfm-webpage deploy`` end to end on moto, with only ``chalice deploy`` itself replaced.

moto cannot take Chalice's API (it imports OpenAPI 3 only; Chalice sends Swagger 2.0), so the
deployer is a stand-in that returns what Chalice records. Everything around it is real: packaging,
cfn-lint, credentials check, resources, runtime upload with content types, CORS for the API origin.
"""

from __future__ import annotations

import json
import shutil
import stat
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalice_app import static_site
from pbfm_tooling import deploy
from pbfm_tooling.local_stack import LocalStack

pytestmark = pytest.mark.slow

API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/api/"
API_ORIGIN = "https://abc123.execute-api.us-east-1.amazonaws.com"
RUNTIME_FILES = {
    "pyodide": ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"),
    "pyscript": ("core.js", "core.css"),
}


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chalice keeps the Lambda's dependencies (pip's download) in .chalice/deployments/, under a hash
    of requirements.txt and the code: as in a checkout that deploys again, this module's copies share
    one, so only the first packaging downloads them."""
    return tmp_path_factory.mktemp("chalice-deployments")


def copy_project(target: Path, deployments: Path) -> Path:
    """The files a deploy reads, outside the checkout, so nothing the test writes lands in it."""
    root = deploy.ROOT
    target.mkdir()
    for name in ("app.py", "pyscript.toml", "requirements.txt"):
        shutil.copy2(root / name, target / name)
    for package in ("chalice_app", "web_py"):
        shutil.copytree(root / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "web_static").mkdir()
    for path in (root / "web_static").iterdir():
        if path.is_file():
            shutil.copy2(path, target / "web_static" / path.name)
    (target / ".chalice").mkdir()
    for path in (root / ".chalice").glob("*.json"):
        shutil.copy2(path, target / ".chalice" / path.name)
    (target / ".chalice" / "deployments").symlink_to(deployments)
    return target


def fake_runtime(target: Path) -> Path:
    for runtime, names in RUNTIME_FILES.items():
        directory = target / runtime
        directory.mkdir(parents=True)
        (directory / "VERSION").write_text(static_site.RUNTIME_VERSIONS[runtime] + "\n")
        for name in names:
            (directory / name).write_bytes(b"x" * 64)
    return target


class FakeChaliceDeploy:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []

    def __call__(self, stage: deploy.Stage, extra_env: Mapping[str, str], project_dir: Path) -> dict[str, Any]:
        self.calls.append((stage.name, dict(extra_env)))
        return {"resources": [{"name": "rest_api", "resource_type": "rest_api", "rest_api_url": API_URL}]}


def anonymous_get(endpoint: str, bucket: str, key: str, origin: str) -> tuple[int, str | None, str | None]:
    """A browser's unsigned cross-origin GET: status, Access-Control-Allow-Origin, Content-Type."""
    request = urllib.request.Request(f"{endpoint}/{bucket}/{key}", headers={"Origin": origin})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            headers = response.headers
            return int(response.status), headers.get("Access-Control-Allow-Origin"), headers.get("Content-Type")
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code), None, None


@pytest.mark.usefixtures("fake_aws_env")
def test_deploy_on_moto(moto_endpoint: str, tmp_path: Path, deployments: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore sends every client here (boto3 and Chalice alike); no request can reach AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    project = copy_project(tmp_path / "project", deployments)
    runtime = fake_runtime(tmp_path / "runtime")
    fake = FakeChaliceDeploy()
    run = {
        "dry_run": False,
        "project_dir": project,
        "runtime_dir": runtime,
        "deployer": fake,
        "environ": {"PBFM_MCP_TOKEN": "token-from-the-environment-" + "x" * 20},
    }
    assert deploy._deploy("dev", tmp_path / "out", **run) == 0  # type: ignore[arg-type]
    stage = deploy.Stage.load("dev", project / ".chalice" / "config.json")

    s3 = boto3.client("s3", region_name=deploy.DEFAULT_REGION)
    expected_types = {
        "pyodide.asm.wasm": "application/wasm",
        "pyodide.mjs": "text/javascript",
        "core.js": "text/javascript",
        "python_stdlib.zip": "application/zip",
        "pyodide-lock.json": "application/json",
        "core.css": "text/css",
    }
    for runtime_name, names in RUNTIME_FILES.items():
        version = static_site.RUNTIME_VERSIONS[runtime_name]
        for name in names:
            key = f"static/{runtime_name}/{version}/{name}"
            head = s3.head_object(Bucket=stage.bucket_name, Key=key)
            if name in expected_types:
                assert head["ContentType"].split(";")[0] == expected_types[name], key
            assert "immutable" in head["CacheControl"]
    # The key layout is the URL layout the page builds below PBFM_ASSET_BASE_URL.
    url = static_site.runtime_url(static_site.Settings(asset_base_url=stage.asset_base_url), "pyodide", "pyodide.mjs")
    assert url.endswith("/static/pyodide/314.0.7/pyodide.mjs")

    # What the page does: an unsigned cross-origin GET of the runtime (no preflight: a simple
    # request). moto enforces the bucket policy for anonymous callers, so this checks it too.
    wasm = "static/pyodide/314.0.7/pyodide.asm.wasm"
    assert anonymous_get(moto_endpoint, stage.bucket_name, wasm, API_ORIGIN) == (200, API_ORIGIN, "application/wasm")
    assert anonymous_get(moto_endpoint, stage.bucket_name, wasm, "https://elsewhere.example")[1] is None
    s3.put_object(Bucket=stage.bucket_name, Key="sessions/s1/prices/1.json", Body=b"{}")
    assert anonymous_get(moto_endpoint, stage.bucket_name, "sessions/s1/prices/1.json", API_ORIGIN)[0] == 403
    policy = json.loads(s3.get_bucket_policy(Bucket=stage.bucket_name)["Policy"])
    assert [s["Resource"] for s in policy["Statement"]] == [f"arn:aws:s3:::{stage.bucket_name}/static/*"]
    ttl = boto3.client("dynamodb", region_name=deploy.DEFAULT_REGION).describe_time_to_live(TableName=stage.table_name)
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"

    # Secrets: the environment's token is used; the cookie secret is made once and kept private.
    ((stage_name, secrets),) = fake.calls
    assert stage_name == "dev" and secrets["PBFM_MCP_TOKEN"] == run["environ"]["PBFM_MCP_TOKEN"]  # type: ignore[index]
    assert len(secrets["PBFM_COOKIE_SECRET"]) >= 32
    store = project / ".chalice" / "deployed" / "secrets-dev.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600

    # A second deploy uploads nothing new and keeps the same secrets (cookies stay valid).
    uploads: list[str] = []
    real_upload = deploy.upload_assets
    monkeypatch.setattr(deploy, "upload_assets", lambda *a: uploads.append("x") or real_upload(*a))
    assert deploy._deploy("dev", tmp_path / "out", **run) == 0  # type: ignore[arg-type]
    assert fake.calls[1][1] == secrets
    assert deploy.upload_assets(s3, stage.bucket_name, deploy.runtime_assets(runtime)) == 0


class DeployedAt(FakeChaliceDeploy):
    """chalice deploy, reporting ``url`` as the API it made (the local stack stands in for AWS)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def __call__(self, stage: deploy.Stage, extra_env: Mapping[str, str], project_dir: Path) -> dict[str, Any]:
        super().__call__(stage, extra_env, project_dir)
        return {"resources": [{"name": "rest_api", "resource_type": "rest_api", "rest_api_url": self.url}]}


@pytest.mark.usefixtures("fake_aws_env")
def test_test_flag_smoke_tests_the_deployed_url(moto_endpoint: str, stack: LocalStack, tmp_path: Path,
                                                deployments: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    run = {"dry_run": False, "test": True, "project_dir": copy_project(tmp_path / "project", deployments),
           "runtime_dir": fake_runtime(tmp_path / "runtime"), "environ": {}}
    assert deploy._deploy("dev", tmp_path / "out", deployer=DeployedAt(stack.base_url + "/"), **run) == 0
    printed = capsys.readouterr().out
    assert "smoke test passed" in printed and "ok  the browser receives it" in printed

    # Nothing answers there: the smoke test, and so the deploy that ran it above, fails naming the step.
    with pytest.raises(deploy.DeployError, match="smoke test FAILED: create a session over MCP"):
        deploy.smoke_test("http://127.0.0.1:9/api/", None)


def test_dry_run_needs_no_aws(tmp_path: Path, deployments: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = copy_project(tmp_path / "project", deployments)

    def no_deploy(*_: object) -> dict[str, Any]:
        raise AssertionError("--dry-run must not deploy")

    # No endpoint, no credentials: any AWS call would fail.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "")
    out = tmp_path / "out"
    # Output of an earlier build (a module since deleted, say): kept, unless --clean.
    leftover = out / "package" / "stale-from-an-earlier-build.txt"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("old")
    assert deploy._deploy("prod", out, dry_run=True, project_dir=project, deployer=no_deploy) == 0
    assert (out / "package" / "sam.json").is_file() and (out / "package" / "deployment.zip").is_file()
    assert leftover.exists()
    assert deploy._deploy("prod", out, dry_run=True, clean=True, project_dir=project, deployer=no_deploy) == 0
    assert not leftover.exists() and (out / "package" / "deployment.zip").is_file()


def test_command_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy.deploy_main(["--stage", "nope", "--dry-run"]) == 1
    assert "stage 'nope'" in capsys.readouterr().err


def test_asset_base_url_must_match_bucket_and_region() -> None:
    stage = deploy.Stage.load("dev")
    deploy.check_asset_base_url(stage, "us-west-1")
    with pytest.raises(deploy.DeployError, match="eu-west-1"):
        deploy.check_asset_base_url(stage, "eu-west-1")


def test_runtime_version_mismatch_is_refused(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path / "runtime")
    (runtime / "pyodide" / "VERSION").write_text("0.0.1\n")
    with pytest.raises(deploy.DeployError, match="install_web_assets"):
        deploy.runtime_assets(runtime)


def test_api_origin() -> None:
    assert deploy.api_origin({"resources": [{"resource_type": "rest_api", "rest_api_url": API_URL}]}) == API_ORIGIN
    assert deploy.api_origin({"resources": []}) is None


def test_cli_forwards_deploy_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """``pbfm-webpage deploy --stage dev --dry-run`` (the documented command) reaches ``deploy_main``."""
    from pbfm_tooling import cli

    seen: list[list[str]] = []
    monkeypatch.setattr(deploy, "deploy_main", lambda argv: seen.append(list(argv)) or 0)
    assert cli.main(["deploy", "--stage", "dev", "--dry-run"]) == 0
    assert seen == [["--stage", "dev", "--dry-run"]]
