"""Bundle the test host's page (host.mjs: the npm AppBridge and MCP client) for the browser with esbuild.

Both come from package.json (pinned) through ``npm ci``; the bundle is build output, written next
to this file under ``build/`` (ignored by git) and rebuilt when a source or the lock file changes.
The browser tests call ``ensure_bundle()``; ``python tests/browser/app_host/build.py`` does it by hand.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
SOURCE = HERE / "host.mjs"
BUNDLE = HERE / "build" / "host.bundle.js"
STAMP = HERE / "build" / "host.bundle.stamp"


def _stamp() -> str:
    digest = hashlib.sha256()
    for path in (SOURCE, ROOT / "package-lock.json"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_bundle() -> Path:
    """The bundle, built now unless the one on disk was built from the same sources."""
    want = _stamp()
    if BUNDLE.is_file() and STAMP.is_file() and STAMP.read_text() == want:
        return BUNDLE
    if not ESBUILD.is_file():
        raise RuntimeError(f"{ESBUILD} is missing: run `npm ci` (esbuild is a pinned devDependency)")
    BUNDLE.parent.mkdir(exist_ok=True)
    subprocess.run([str(ESBUILD), str(SOURCE), "--bundle", "--format=esm", "--platform=browser",
                    "--target=es2022", "--log-level=warning", f"--outfile={BUNDLE}"], cwd=ROOT, check=True)
    STAMP.write_text(want)
    return BUNDLE


if __name__ == "__main__":
    print(ensure_bundle(), file=sys.stdout)
