#!/usr/bin/env bash
# One entry point for a fresh machine: ./dev.sh demo | test | serve | bench | setup
# Installs what is missing (Python deps in .venv, the npm runtime served to browsers, Debian's
# chromium for the browser tests), then runs the command. Safe to re-run: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")"

# Where the browser tests expect Debian's chromium. PBFM_CHROMIUM only lets the set-up test
# (tests/setup) pretend it is absent, so the install step runs even where chromium is installed.
# setup_chromium exports PBFM_CHROMIUM as the binary the tests and the bench then launch.
CHROMIUM="${PBFM_CHROMIUM:-/usr/bin/chromium}"
# The same package unpacked here, when dpkg cannot put /usr/bin/chromium in place (see below).
LOCAL_CHROMIUM="$PWD/.chromium/usr/lib/chromium/chromium"

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
  if [[ -x "$CHROMIUM" ]]; then export PBFM_CHROMIUM="$CHROMIUM"; return; fi
  if [[ -x "$LOCAL_CHROMIUM" ]]; then export PBFM_CHROMIUM="$LOCAL_CHROMIUM"; return; fi
  local sudo=""; [[ "$(id -u)" != 0 ]] && sudo="sudo"
  # `env` so the variable assignment works with and without sudo (as root, $sudo is empty).
  local apt="$sudo env DEBIAN_FRONTEND=noninteractive" log; log="$(mktemp)"
  $apt apt-get update -qq
  # --reinstall: when the package is registered but its files are gone, a plain install is a no-op.
  if ! $apt apt-get install -y -qq --reinstall chromium >"$log" 2>&1; then
    # dpkg refuses while an earlier install was left half-done (unpacked, unconfigured, broken
    # dependencies): finish that first, then try once more.
    $apt dpkg --configure -a >>"$log" 2>&1 || true
    $apt apt-get install -y -qq -f >>"$log" 2>&1 || true
    if ! $apt apt-get install -y -qq --reinstall chromium >>"$log" 2>&1; then
      # dpkg cannot replace /usr/bin/chromium at all when something else holds that path (a bind
      # mount: "unable to make backup link ... Invalid cross-device link"). The tests need only a
      # working binary: unpack the same packages into .chromium/ and use that one.
      unpack_chromium >>"$log" 2>&1 || true
      if [[ ! -x "$LOCAL_CHROMIUM" ]]; then
        grep -v "Reading database" "$log" | tail -40 >&2; echo "dev.sh: chromium did not install" >&2; exit 1
      fi
      echo "dev.sh: /usr/bin/chromium could not be installed; using $LOCAL_CHROMIUM" >&2
      rm -f "$log"; export PBFM_CHROMIUM="$LOCAL_CHROMIUM"; return
    fi
  fi
  rm -f "$log"
  if [[ ! -x /usr/bin/chromium ]]; then echo "dev.sh: chromium did not install" >&2; exit 1; fi
  export PBFM_CHROMIUM=/usr/bin/chromium
}

# Debian's chromium and chromium-common unpacked under .chromium/ (their libraries installed from
# apt first: they live elsewhere and dpkg can place them).
unpack_chromium() {
  local sudo=""; [[ "$(id -u)" != 0 ]] && sudo="sudo"
  local deps; deps="$(apt-cache depends chromium chromium-common | awk '/ Depends:/ && $2 !~ /^</ {print $2}' \
    | grep -v -x -e chromium -e chromium-common | sort -u)"
  # shellcheck disable=SC2086
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $deps || true
  local dir; dir="$(mktemp -d)"
  (cd "$dir" && apt-get download chromium chromium-common)
  rm -rf .chromium.new && mkdir .chromium.new
  for deb in "$dir"/*.deb; do dpkg-deb -x "$deb" .chromium.new; done
  rm -rf "$dir" .chromium && mv .chromium.new .chromium
  "$LOCAL_CHROMIUM" --headless --no-sandbox --version
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
    # Bytecode caches on, even where the environment turns them off: the workers and every server,
    # CLI and packaging subprocess import the same modules, and pytest rewrites every test module;
    # without caches each process compiles them all again (~1.5 core-seconds per worker).
    unset PYTHONDONTWRITEBYTECODE
    # In parallel (PBFM_TEST_WORKERS=0 runs it in one process); modules stay whole and the slow ones
    # start first (tests/conftest.py). Two workers more than cores: many tests wait on timers, long
    # polls and subprocesses, and the spare workers fill that time (2 cores, one after the other:
    # 80 s with 4 workers, 87 s with 3, 84 s with 5, whose contention costs more than it fills).
    exec .venv/bin/python -m pytest -n "${PBFM_TEST_WORKERS:-$(( $(nproc) + 2 ))}" --dist loadfile \
      --no-loadscope-reorder "$@" ;;
  bench)
    setup_python; setup_web; setup_chromium
    exec .venv/bin/pbfm-webpage bench "$@" ;;
  *)
    echo "usage: ./dev.sh demo|serve|test|bench|setup [args]" >&2; exit 2 ;;
esac
