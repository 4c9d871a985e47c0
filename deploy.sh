#!/usr/bin/env bash
# ./deploy.sh dev [--dry-run] [--clean] [--test] [--region R]  ==  pbfm-webpage deploy --stage dev [...]
# Uses the project's venv when there is one; AWS credentials come from the usual places
# (AWS_PROFILE, environment, ~/.aws). See docs/DEPLOY.md.
set -euo pipefail
cd "$(dirname "$0")"
if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: ./deploy.sh <stage: dev|prod> [--dry-run] [--clean] [--test] [--region R]" >&2
  exit 2
fi
stage="$1"
shift
python="python3"
if [[ -x .venv/bin/python ]]; then
  python=".venv/bin/python"
fi
exec "$python" -m pbfm_tooling.deploy --stage "$stage" "$@"
