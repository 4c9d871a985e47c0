#!/usr/bin/env bash
# One entry point for a fresh machine: ./dev.sh demo | test | serve | bench | setup
# Installs what is missing (Python deps in .venv, the npm runtime served to browsers, Debian's
# chromium for the browser tests), then runs the command. Safe to re-run: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")"

# Where the browser tests expect Debian's chromium. PBFM_CHROMIUM only lets the set-up test
# (tests/setup) pretend it is absent, so the install step runs even where chromium is installed.
CHROMIUM="${PBFM_CHROMIUM:-/usr/bin/chromium}"

stamp() { sha256sum "$@" | sha256sum | cut -c1-16; }

setup_python() {
  local want; want="$(stamp pyproject.toml)"
  if [[ ! -x .venv/bin/python ]]; then python3 -m venv .venv; fi
  if [[ "$(cat .venv/.pbfm-stamp 2>/dev/null)" != "$want" ]]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[tooling,test]'
    echo "$want" > .venv/.pbfm-stamp
  fi
}

# The older MCP SDK (1.x) in a venv of its own: the tests drive the server with it too.
setup_mcp1() {
  if [[ ! -x .venv-mcp1/bin/python ]] || ! .venv-mcp1/bin/python -c 'import mcp' 2>/dev/null; then
    python3 -m venv .venv-mcp1
    .venv-mcp1/bin/python -m pip install --quiet 'mcp==1.30.0'
  fi
}

setup_web() {
  local want; want="$(stamp package-lock.json)"
  if [[ "$(cat node_modules/.pbfm-stamp 2>/dev/null)" != "$want" ]]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > node_modules/.pbfm-stamp
  fi
  .venv/bin/python scripts/install_web_assets.py
}

setup_chromium() {
  if [[ ! -x "$CHROMIUM" ]]; then
    local sudo=""; [[ "$(id -u)" != 0 ]] && sudo="sudo"
    # `env` so the variable assignment works with and without sudo (as root, $sudo is empty).
    local apt="$sudo env DEBIAN_FRONTEND=noninteractive" log; log="$(mktemp)"
    $apt apt-get update -qq
    # --reinstall: when the package is registered but its files are gone, a plain install is a no-op.
    if ! $apt apt-get install -y -qq --reinstall chromium >"$log" 2>&1; then
      # dpkg refuses while an earlier install was left half-done (unpacked, unconfigured, broken
      # dependencies): finish that first, then try once more. dpkg's reason is in the log.
      $apt dpkg --configure -a >>"$log" 2>&1 || true
      $apt apt-get install -y -qq -f >>"$log" 2>&1 || true
      if ! $apt apt-get install -y -qq --reinstall chromium >>"$log" 2>&1; then
        grep -v "Reading database" "$log" | tail -40 >&2; echo "dev.sh: chromium did not install" >&2; exit 1
      fi
    fi
    rm -f "$log"
    if [[ ! -x /usr/bin/chromium ]]; then echo "dev.sh: chromium did not install" >&2; exit 1; fi
  fi
}

command="${1:-demo}"; shift || true
case "$command" in
  demo|serve)
    setup_python; setup_web
    exec .venv/bin/pbfm-webpage "$command" "$@" ;;
  setup)
    setup_python; setup_web; setup_chromium; setup_mcp1 ;;
  test)
    setup_python; setup_web; setup_chromium; setup_mcp1
    .venv/bin/ruff check .
    .venv/bin/mypy
    exec .venv/bin/python -m pytest "$@" ;;
  bench)
    setup_python; setup_web; setup_chromium
    exec .venv/bin/pbfm-webpage bench "$@" ;;
  *)
    echo "usage: ./dev.sh demo|serve|test|bench|setup [args]" >&2; exit 2 ;;
esac
