"""``pbfm-webpage deploy --stage dev``: package, lint, create resources, upload the runtime, deploy.

Two ways into AWS share every definition here:

* ``chalice deploy`` (what this command runs): Chalice creates the Lambdas, roles and API by API
  calls and ignores CloudFormation, so the table and bucket are created first with
  ``resources.create_resources`` (the same function the local stack runs on moto) and the role's
  policy is ``.chalice/policy-<stage>.json``, generated below from the stage's configuration.
* ``chalice package --merge-template`` (always run first, and linted): a self-contained
  CloudFormation/SAM stack for those who deploy with CloudFormation. The merge template adds only
  the bucket, the table, the roles' least-privilege policy, the Lambda settings and the secrets
  as ``NoEcho`` parameters.

Secrets never go into a committed file or a template: ``PBFM_COOKIE_SECRET`` and ``PBFM_MCP_TOKEN``
come from the environment or from ``.chalice/deployed/secrets-<stage>.json`` (git-ignored, made on
first deploy) and reach ``chalice deploy`` as user-provided environment variables.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pbfm_tooling import resources

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / ".chalice" / "config.json"
VENDOR_DIR = ROOT / "vendor"
WEB_STATIC = ROOT / "web_static"
RUNTIME_DIR = WEB_STATIC / "vendor"
DEFAULT_OUT = ROOT / "out"
# The product spec puts the AWS resources in us-west-1; --region or AWS_DEFAULT_REGION picks another.
DEFAULT_REGION = "us-west-1"

# Logical ids Chalice 1.34 gives the app's two functions in sam.json (``app`` -> APIHandler, the
# ``@app.schedule`` function ``sweep_sessions`` -> SweepSessions) and, with ``autogen_policy`` off,
# one role per function named after it. The merge template targets exactly these.
FUNCTIONS = {"APIHandler": "ApiHandlerRole", "SweepSessions": "SweepSessionsRole"}
BUCKET_ID = "AssetsBucket"
BUCKET_POLICY_ID = "AssetsBucketPolicy"
TABLE_ID = "SessionsTable"
SECRET_PARAMETERS = {"PBFM_COOKIE_SECRET": "CookieSecret", "PBFM_MCP_TOKEN": "McpToken"}

# Exactly what chalice_app/{queues,blobs,event_store}.py call (BatchWrite/DeleteBatch/SendBatch
# are authorised by the single-item actions). Nothing account-wide: no ListQueues, no ListTables.
SQS_ACTIONS = (
    "sqs:CreateQueue",
    "sqs:DeleteQueue",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
)
S3_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
S3_BUCKET_ACTIONS = ("s3:ListBucket",)
DYNAMODB_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:BatchWriteItem",
)
LOGS_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")


class DeployError(RuntimeError):
    """A step failed; the message says which and what to do."""


@dataclass(frozen=True)
class Stage:
    """What one Chalice stage deploys, read from ``.chalice/config.json`` (top level, then stage)."""

    name: str
    app_name: str
    table_name: str
    bucket_name: str
    queue_prefix: str
    asset_base_url: str
    allowed_origins: tuple[str, ...]
    lambda_timeout: int
    # Chat hosts' sandbox origins that show the session view (PBFM_VIEW_ORIGINS): they read the
    # runtime and documents from the bucket too.
    view_origins: tuple[str, ...] = ()
    # ``api_gateway_custom_domain.domain_name``: serves the API at the root of its own host.
    custom_domain: str | None = None

    @classmethod
    def load(cls, name: str, config_file: Path = CONFIG_FILE) -> Stage:
        config = json.loads(config_file.read_text())
        if name not in config.get("stages", {}):
            raise DeployError(f"stage {name!r} is not in {config_file} (have: {', '.join(config['stages'])})")
        stage = config["stages"][name]
        env = {**config.get("environment_variables", {}), **stage.get("environment_variables", {})}
        domain = stage.get("api_gateway_custom_domain", config.get("api_gateway_custom_domain")) or {}
        return cls(
            name=name,
            app_name=config["app_name"],
            table_name=env["PBFM_TABLE"],
            bucket_name=env["PBFM_BUCKET"],
            queue_prefix=env["PBFM_QUEUE_PREFIX"],
            asset_base_url=env.get("PBFM_ASSET_BASE_URL", ""),
            allowed_origins=tuple(o.strip() for o in env.get("PBFM_ALLOWED_ORIGINS", "").split(",") if o.strip()),
            lambda_timeout=int(stage.get("lambda_timeout", config.get("lambda_timeout", 60))),
            custom_domain=domain.get("domain_name"),
            view_origins=tuple(o.strip() for o in env.get("PBFM_VIEW_ORIGINS", "").split(",") if o.strip()),
        )

    @property
    def page_origins(self) -> tuple[str, ...]:
        """Origins the page is served from, besides the execute-api one (known only once deployed), and
        the chat hosts' sandboxes that show the session view: the bucket's CORS allows them all."""
        own = (f"https://{self.custom_domain}",) if self.custom_domain else ()
        return tuple(dict.fromkeys((*own, *self.allowed_origins, *self.view_origins)))

    @property
    def queue_arn(self) -> str:
        return f"arn:aws:sqs:*:*:{self.queue_prefix}-*"

    @property
    def log_group_arn(self) -> str:
        # Chalice names every function of the stage "<app>-<stage>-<function>".
        return f"arn:aws:logs:*:*:log-group:/aws/lambda/{self.app_name}-{self.name}-*"

    def policy_file(self, project_dir: Path = ROOT) -> Path:
        return project_dir / ".chalice" / f"policy-{self.name}.json"


def lambda_policy(*, table_arn: Any, bucket_arn: Any, bucket_objects_arn: Any, stage: Stage) -> dict[str, Any]:
    """The functions' only permissions. ARNs are strings or CloudFormation intrinsics."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "SessionQueues", "Effect": "Allow", "Action": list(SQS_ACTIONS), "Resource": stage.queue_arn},
            {
                "Sid": "ContentObjects",
                "Effect": "Allow",
                "Action": list(S3_OBJECT_ACTIONS),
                "Resource": bucket_objects_arn,
            },
            {"Sid": "ContentListing", "Effect": "Allow", "Action": list(S3_BUCKET_ACTIONS), "Resource": bucket_arn},
            {"Sid": "SessionTable", "Effect": "Allow", "Action": list(DYNAMODB_ACTIONS), "Resource": table_arn},
            {
                "Sid": "OwnLogs",
                "Effect": "Allow",
                "Action": list(LOGS_ACTIONS),
                "Resource": [stage.log_group_arn, f"{stage.log_group_arn}:*"],
            },
        ],
    }


def stage_policy(stage: Stage) -> dict[str, Any]:
    """The policy file ``chalice deploy`` attaches (names known, account and region not)."""
    return lambda_policy(
        table_arn=f"arn:aws:dynamodb:*:*:table/{stage.table_name}",
        bucket_arn=f"arn:aws:s3:::{stage.bucket_name}",
        bucket_objects_arn=f"arn:aws:s3:::{stage.bucket_name}/*",
        stage=stage,
    )


def write_policy_file(stage: Stage, project_dir: Path = ROOT) -> bool:
    """Bring ``.chalice/policy-<stage>.json`` in line with the configuration; True if it changed."""
    path = stage.policy_file(project_dir)
    text = json.dumps(stage_policy(stage), indent=2) + "\n"
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


# The page is served by API Gateway at this origin; the bucket must let it fetch the runtime.
API_ORIGIN = {"Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}


def merge_template(stage: Stage) -> dict[str, Any]:
    """The resources ``chalice package --merge-template`` adds to Chalice's sam.json, and nothing else."""
    # The bucket's ARN is spelled out rather than taken with GetAtt: the bucket's CORS names the API,
    # the API the function, the function its role -- a GetAtt on the bucket there would be a cycle.
    bucket_arn = f"arn:aws:s3:::{stage.bucket_name}"
    policy = lambda_policy(
        table_arn={"Fn::GetAtt": [TABLE_ID, "Arn"]},
        bucket_arn=bucket_arn,
        bucket_objects_arn=f"{bucket_arn}/*",
        stage=stage,
    )
    origins: list[Any] = [API_ORIGIN, *stage.page_origins]
    table_props = resources.table_properties(stage.table_name)
    static_policy = resources.public_static_policy(stage.bucket_name)
    template: dict[str, Any] = {
        "Parameters": {
            param: {
                "Type": "String",
                "NoEcho": True,
                "MinLength": 32,
                "Description": f"{env} for the functions (keep it secret; 32+ characters)",
            }
            for env, param in SECRET_PARAMETERS.items()
        },
        "Resources": {
            BUCKET_ID: {
                "Type": "AWS::S3::Bucket",
                # Retained so deleting the stack never fails on (or destroys) a non-empty bucket.
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {
                    "BucketName": stage.bucket_name,
                    "CorsConfiguration": {"CorsRules": resources.cfn_cors_rules(resources.bucket_cors_rules(origins))},
                    "LifecycleConfiguration": {
                        "Rules": resources.cfn_lifecycle_rules(resources.bucket_lifecycle_rules())
                    },
                    "PublicAccessBlockConfiguration": dict(resources.PUBLIC_ACCESS_BLOCK),
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                },
            },
            BUCKET_POLICY_ID: {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {"Bucket": {"Ref": BUCKET_ID}, "PolicyDocument": static_policy},
            },
            TABLE_ID: {
                "Type": "AWS::DynamoDB::Table",
                # Sessions are ephemeral (24 h TTL): nothing to keep when the stack goes.
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": table_props,
            },
        },
        "Outputs": {
            "AssetsBucketName": {"Value": {"Ref": BUCKET_ID}},
            "SessionsTableName": {"Value": {"Ref": TABLE_ID}},
        },
    }
    secret_env = {env: {"Ref": param} for env, param in SECRET_PARAMETERS.items()}
    for function, role in FUNCTIONS.items():
        # Deep-merged over Chalice's resources: lists (Policies) are replaced, dicts are merged.
        template["Resources"][role] = {
            "Properties": {"Policies": [{"PolicyName": f"{role}Policy", "PolicyDocument": policy}]}
        }
        function_props: dict[str, Any] = {"Environment": {"Variables": dict(secret_env)}}
        if function == "APIHandler":
            function_props["Timeout"] = stage.lambda_timeout
        template["Resources"][function] = {"Properties": function_props}
    return template


# ---------------------------------------------------------------------------------------------
# Packaging: the vendored project code, chalice package, cfn-lint


def sync_vendor_links(project_dir: Path = ROOT) -> list[Path]:
    """Make ``vendor/`` point at the code and files the Lambda needs; returns the links.

    ``chalice package`` zips only ``app.py``, ``chalicelib/`` and ``vendor/`` (following symlinks),
    and ``static_site`` reads ``web_static/<file>`` and ``pyscript.toml`` next to ``chalice_app/``.
    The runtime under ``web_static/vendor/`` is deliberately left out: it lives in S3.
    """
    vendor = project_dir / "vendor"
    wanted: dict[Path, str] = {
        vendor / "chalice_app": "../chalice_app",
        vendor / "web_py": "../web_py",
    }
    if (project_dir / "pyscript.toml").is_file():
        wanted[vendor / "pyscript.toml"] = "../pyscript.toml"
    static = project_dir / "web_static"
    if static.is_dir():
        for path in sorted(static.iterdir()):
            if path.is_file():
                wanted[vendor / "web_static" / path.name] = f"../../web_static/{path.name}"
    for link, target in wanted.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    # A link to a file that was removed would make the packager fail on a dangling path.
    for link in (vendor / "web_static").glob("*") if (vendor / "web_static").is_dir() else ():
        if link.is_symlink() and link not in wanted:
            link.unlink()
    return sorted(wanted)


Runner = Callable[[Sequence[str], Mapping[str, str]], None]


def _run(cmd: Sequence[str], env: Mapping[str, str]) -> None:
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(list(cmd), cwd=ROOT, env=dict(env), check=False)
    if result.returncode != 0:
        raise DeployError(f"`{' '.join(cmd)}` failed with exit code {result.returncode}")


def _bin(name: str) -> str:
    # The venv's own console scripts, whether or not the venv is activated.
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def package(stage: Stage, out_dir: Path, *, run: Runner = _run, project_dir: Path = ROOT) -> Path:
    """``chalice package`` with the merge template; returns the directory with sam.json + zip."""
    sync_vendor_links(project_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    template_file = out_dir / "resources.json"
    template_file.write_text(json.dumps(merge_template(stage), indent=2) + "\n")
    package_dir = out_dir / "package"
    env = {**os.environ}
    env.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)
    run(
        [
            _bin("chalice"),
            "--project-dir",
            str(project_dir),
            "package",
            "--stage",
            stage.name,
            "--merge-template",
            str(template_file),
            str(package_dir),
        ],
        env,
    )
    check_functions(json.loads((package_dir / "sam.json").read_text()))
    return package_dir


def check_functions(template: Mapping[str, Any]) -> None:
    """Every function and role in the merged template is one the merge template expects.

    A role we merged into that Chalice did not generate would have no ``Type`` (the app lost its
    sweeper); a function we do not know would run with a policy nobody reviewed.
    """
    found = {k: v.get("Type") for k, v in template["Resources"].items()}
    functions = {k for k, t in found.items() if t in ("AWS::Serverless::Function", "AWS::Lambda::Function")}
    problems = []
    if functions != set(FUNCTIONS):
        problems.append(f"functions {sorted(functions)} != expected {sorted(FUNCTIONS)}")
    for logical_id, resource_type in found.items():
        if resource_type is None:
            problems.append(f"{logical_id} has no Type: the merge template targets a resource Chalice did not make")
    if problems:
        raise DeployError("merged template: " + "; ".join(problems) + " (update FUNCTIONS in pbfm_tooling/deploy.py)")


def lint(template_file: Path) -> None:
    """cfn-lint on the merged template: any finding fails, warnings as much as errors (as its command's
    exit code would). In this process, not a ``cfn-lint`` subprocess: the same configuration (its
    command line, config files and the template's own settings), without starting Python again."""
    findings = cfn_lint_findings(template_file)
    if findings:
        raise DeployError(f"cfn-lint found {len(findings)} problem(s) in {template_file}:\n" + "\n".join(findings))


def cfn_lint_findings(template_file: Path) -> list[str]:
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner.cli import Runner as CfnLint

    return [str(match) for match in CfnLint(ConfigMixIn(["--", str(template_file)])).run()]


# ---------------------------------------------------------------------------------------------
# The browser runtime in S3


@dataclass(frozen=True)
class Asset:
    path: Path
    key: str
    content_type: str


def content_type(name: str) -> str:
    from chalice_app.static_site import CONTENT_TYPES

    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


def runtime_assets(runtime_dir: Path = RUNTIME_DIR) -> list[Asset]:
    """Files to upload, keyed the way ``static_site.runtime_url`` builds URLs below the base.

    ``web_static/vendor/<runtime>/<file>`` -> ``static/<runtime>/<version>/<file>``.
    """
    from chalice_app.static_site import RUNTIME_VERSIONS

    assets: list[Asset] = []
    for runtime, version in sorted(RUNTIME_VERSIONS.items()):
        directory = runtime_dir / runtime
        marker = directory / "VERSION"
        installed = marker.read_text().strip() if marker.is_file() else None
        if installed != version:
            raise DeployError(
                f"{directory} holds {runtime} {installed or '(nothing)'}, the page needs {version}: "
                "run `npm ci && python scripts/install_web_assets.py` first"
            )
        for path in sorted(directory.iterdir()):
            if path.is_file() and path.name != "VERSION":
                key = f"{resources.STATIC_PREFIX}{runtime}/{version}/{path.name}"
                assets.append(Asset(path, key, content_type(path.name)))
    return assets


# Versioned keys never change content, so browsers may cache them for a year.
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"


def upload_assets(s3: Any, bucket: str, assets: Iterable[Asset]) -> int:
    """Upload what is missing or different (by size); returns how many files were sent."""
    existing: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=resources.STATIC_PREFIX):
        existing.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    sent = 0
    for asset in assets:
        if existing.get(asset.key) == asset.path.stat().st_size:
            continue
        s3.upload_file(
            str(asset.path),
            bucket,
            asset.key,
            ExtraArgs={"ContentType": asset.content_type, "CacheControl": ASSET_CACHE_CONTROL},
        )
        sent += 1
    return sent


def check_asset_base_url(stage: Stage, region: str) -> None:
    """The page must load the runtime from this stage's bucket, in the region it is created in."""
    expected = f"https://{stage.bucket_name}.s3.{region}.amazonaws.com/{resources.STATIC_PREFIX.rstrip('/')}"
    if stage.asset_base_url.rstrip("/") != expected:
        raise DeployError(
            f"PBFM_ASSET_BASE_URL of stage {stage.name} is {stage.asset_base_url!r}; with bucket "
            f"{stage.bucket_name} in {region} it must be {expected!r} (.chalice/config.json)"
        )


# ---------------------------------------------------------------------------------------------
# Secrets and chalice deploy


def load_secrets(stage: Stage, environ: Mapping[str, str], project_dir: Path = ROOT) -> dict[str, str]:
    """Secrets from the environment, else from the git-ignored store, else new (and stored)."""
    store = project_dir / ".chalice" / "deployed" / f"secrets-{stage.name}.json"
    stored: dict[str, str] = json.loads(store.read_text()) if store.is_file() else {}
    values = {name: environ.get(name) or stored.get(name) or secrets.token_urlsafe(32) for name in SECRET_PARAMETERS}
    if values != stored:
        store.parent.mkdir(parents=True, exist_ok=True)
        store.touch(mode=0o600)
        store.write_text(json.dumps(values, indent=2) + "\n")
    return values


def chalice_deploy(stage: Stage, extra_env: Mapping[str, str], project_dir: Path = ROOT) -> dict[str, Any]:
    """``chalice deploy --stage <s>`` in-process, so the secrets reach it without touching a file.

    Returns the deployed values (``.chalice/deployed/<stage>.json``).
    """
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.deployer import ChaliceDeploymentError
    from chalice.utils import UI

    factory = CLIFactory(project_dir=str(project_dir), environ=dict(os.environ))
    config = factory.create_config_obj(
        chalice_stage_name=stage.name, user_provided_params={"environment_variables": dict(extra_env)}
    )
    ui = UI()
    deployer = factory.create_default_deployer(session=factory.create_botocore_session(), config=config, ui=ui)
    try:
        deployed: dict[str, Any] = deployer.deploy(config, chalice_stage_name=stage.name)
    except ChaliceDeploymentError as exc:
        raise DeployError(str(exc)) from exc
    factory.create_deployment_reporter(ui=ui).display_report(deployed)
    return deployed


def api_url(deployed: Mapping[str, Any]) -> str | None:
    """The deployed API's URL, stage prefix included (what ``chalice deploy`` reports)."""
    for resource in deployed.get("resources", []):
        if resource.get("resource_type") == "rest_api" and resource.get("rest_api_url"):
            return str(resource["rest_api_url"])
    return None


def api_origin(deployed: Mapping[str, Any]) -> str | None:
    url = api_url(deployed)
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def smoke_test(url: str, token: str | None) -> None:
    """``--test``: one session end to end against the deployment; raises DeployError on a failure."""
    from pbfm_tooling.smoke import SmokeFailed, run_smoke_test

    print(f"smoke test against {url}")
    try:
        run_smoke_test(url, token=token, report=lambda s: print(f"  ok  {s.name} ({s.seconds:.1f} s): {s.detail}"))
    except SmokeFailed as exc:
        raise DeployError(f"smoke test FAILED: {exc}") from exc
    print("smoke test passed")


# ---------------------------------------------------------------------------------------------
# The command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pbfm-webpage deploy",
        description="Package, lint and deploy pb-fm-webpage to AWS with chalice.",
    )
    parser.add_argument("--stage", default="dev", help="Chalice stage in .chalice/config.json (default: dev)")
    parser.add_argument("--dry-run", action="store_true", help="stop after packaging and linting (no AWS calls)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="build directory (default: out/)")
    parser.add_argument("--clean", action="store_true", help="remove earlier packaging output of the stage first")
    parser.add_argument("--test", action="store_true",
                        help="after deploying, run a smoke test against the deployed URL (fails loudly)")
    parser.add_argument("--region",
                        help=f"AWS region (default: the profile's or AWS_DEFAULT_REGION, else {DEFAULT_REGION})")
    return parser


def deploy_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _deploy(args.stage, args.out / args.stage, dry_run=args.dry_run, clean=args.clean, region=args.region,
                       test=args.test)
    except DeployError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1


Deployer = Callable[[Stage, Mapping[str, str], Path], Mapping[str, Any]]


def _deploy(
    stage_name: str,
    out_dir: Path,
    *,
    dry_run: bool,
    clean: bool = False,
    region: str | None = None,
    test: bool = False,
    project_dir: Path = ROOT,
    runtime_dir: Path = RUNTIME_DIR,
    deployer: Deployer = chalice_deploy,
    environ: Mapping[str, str] = os.environ,
) -> int:
    stage = Stage.load(stage_name, project_dir / ".chalice" / "config.json")
    if write_policy_file(stage, project_dir):
        print(f"updated .chalice/policy-{stage.name}.json from .chalice/config.json")
    if clean and out_dir.exists():
        shutil.rmtree(out_dir)
        print(f"removed {out_dir}")
    package_dir = package(stage, out_dir, project_dir=project_dir)
    lint(package_dir / "sam.json")
    print(f"packaged and linted: {package_dir}/sam.json, {package_dir}/deployment.zip")
    if dry_run:
        return 0
    if stage.name == "local":
        raise DeployError("the local stage runs on moto (`pbfm-webpage serve`), not in AWS")

    from botocore.exceptions import BotoCoreError, ClientError

    from chalice_app.aws import build_clients, caller_account, default_region
    from chalice_app.settings import Settings

    region = region or default_region(DEFAULT_REGION)
    check_asset_base_url(stage, region)
    assets = runtime_assets(runtime_dir)
    try:
        # Fails fast, before anything is created, when there are no usable credentials.
        account = caller_account(region)
    except (BotoCoreError, ClientError) as exc:
        raise DeployError(f"no usable AWS credentials ({exc}); see docs/DEPLOY.md") from exc
    print(f"deploying stage {stage.name} to account {account} in {region}")
    clients = build_clients(Settings(region=region, aws_endpoint_url=environ.get("PBFM_AWS_ENDPOINT_URL")))
    ensure: dict[str, Any] = {
        "table_name": stage.table_name,
        "bucket_name": stage.bucket_name,
        "region": region,
        "public_static": True,
    }
    print(f"table {stage.table_name} and bucket {stage.bucket_name}: creating or updating")
    resources.create_resources(clients.s3, clients.dynamodb, cors_origins=stage.page_origins, **ensure)
    sent = upload_assets(clients.s3, stage.bucket_name, assets)
    print(f"runtime: {sent} of {len(assets)} files uploaded to s3://{stage.bucket_name}/{resources.STATIC_PREFIX}")
    secret_values = load_secrets(stage, environ, project_dir)
    deployed = deployer(stage, secret_values, project_dir)
    origin = api_origin(deployed)
    if origin is not None:
        # Only now is the API's origin known: let the page there fetch the runtime from the bucket.
        origins = [origin, *stage.page_origins]
        resources.create_resources(clients.s3, clients.dynamodb, cors_origins=origins, **ensure)
        print(f"bucket CORS allows {', '.join(origins)}")
    print(f"MCP bearer token (PBFM_MCP_TOKEN): in .chalice/deployed/secrets-{stage.name}.json")
    if test:
        url = api_url(deployed)
        if url is None:
            raise DeployError("--test: chalice deploy reported no API URL to test")
        smoke_test(url, secret_values.get("PBFM_MCP_TOKEN"))
    return 0


if __name__ == "__main__":
    sys.exit(deploy_main(sys.argv[1:]))
