"""Generating ``allure-report/`` with the Allure CLI, when one is installed.

The demo installs Allure 3 from the npm registry into ``.tools/``; a user may also have
``allure`` on PATH or point ``KKP_READINESS_ALLURE`` at a binary. Without one, the raw
``allure-results/`` are still written and the run says how to get the HTML.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin" / "allure"
TIMEOUT_SECONDS = 300


def find_cli() -> str | None:
    """The Allure CLI to use, or ``None``."""
    configured = os.environ.get("KKP_READINESS_ALLURE")
    if configured:
        return configured if Path(configured).exists() or shutil.which(configured) else None
    if PROJECT_TOOLS.exists():
        return str(PROJECT_TOOLS)
    return shutil.which("allure")


def generate(results: Path, output: Path) -> bool:
    """Render ``results`` into ``output``; ``False`` (with a note on stderr) when that is not possible."""
    cli = find_cli()
    if cli is None:
        print("kkp-readiness: Allure CLI not found; allure-results/ kept. Install it with "
              "`npm install --prefix .tools allure` to get allure-report/.", file=sys.stderr)
        return False
    if not results.is_dir() or not any(results.iterdir()):
        return False
    try:
        completed = subprocess.run(
            [cli, "generate", str(results), "-o", str(output)],
            capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False,
            cwd=results.parent, env={**os.environ, "NO_COLOR": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"kkp-readiness: Allure report generation failed: {exc}", file=sys.stderr)
        return False
    if completed.returncode != 0 or not (output / "index.html").exists():
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        print("kkp-readiness: Allure report generation failed:\n  " + "\n  ".join(tail), file=sys.stderr)
        return False
    return True
