"""The handover report of a real lab run: every verdict kind, every catalogue requirement, the artifacts with
their SHA-256, verification, and rendering in a real browser (Debian's chromium, headless)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kkp_readiness.catalogue import load_catalogue
from kkp_readiness.lab import Lab
from tests.conftest import SuiteRun, run_suite

WAIVERS = """waivers:
  - requirement: CERT-002
    justification: the certificate is reissued with every name in change CHG-7
    owner: pki-team@example.com
    expires: 2099-12-31
  - requirement: DNS-004
    justification: the seed wildcard was promised for last year
    owner: dns-team@example.com
    expires: 2020-01-31
"""

#: fail (DNS-004, its waiver expired), waived (CERT-002), warn (INFRA-001), error (storage classes forbidden).
FAULTS = ["dns-missing-seed-wildcard", "cert-missing-name", "kube-single-zone", "kube-forbidden-storageclasses"]


class Articles(HTMLParser):
    """The requirement articles of the report (id -> their text), in document order, and the cover verdict."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.text: dict[str, str] = {}
        self.overall = ""
        self._current: str | None = None
        self._in_overall = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "article":  # articles do not nest
            self._current = attributes["id"] or ""
            self.order.append(self._current)
            self.text[self._current] = ""
        if attributes.get("id") == "overall-verdict":
            self._in_overall = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "article" and self._current:
            self._current = None
        if tag == "span":
            self._in_overall = False

    def handle_data(self, data: str) -> None:
        if self._current:
            self.text[self._current] += data
        if self._in_overall:
            self.overall += data


@pytest.fixture(scope="module")
def handover_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """One run of the whole suite (measuring checks deselected) against a lab with four faults, with waivers."""
    directory = tmp_path_factory.mktemp("handover")
    waivers = directory / "waivers.yaml"
    waivers.write_text(WAIVERS)
    with Lab(faults=FAULTS) as lab:
        return run_suite(lab.workdir, directory / "reports", f"--waivers={waivers}")


def test_handover_has_every_verdict_kind_and_every_requirement(handover_run: SuiteRun) -> None:
    run = handover_run
    assert run.returncode == 1, run.output[-3000:]
    assert run.run_dir is not None
    document = (run.run_dir / "handover.html").read_text()
    articles = Articles()
    articles.feed(document)
    assert articles.overall == "NOT READY"
    assert articles.order == [r.id for r in load_catalogue()]  # every requirement, in checklist order
    text = articles.text
    assert "FAIL" in text["DNS-004"]
    assert "expired, no longer waives" in text["DNS-004"]
    assert "Remediation:" in text["DNS-004"]
    assert "NXDOMAIN" in text["DNS-004"]
    assert "WAIVED" in text["CERT-002"]
    assert "pki-team@example.com" in text["CERT-002"]
    assert "WARN" in text["INFRA-001"]
    errors = [rid for rid in text if rid.startswith("STORAGE") and text[rid].startswith("ERROR")]
    assert errors, "the forbidden storage classes give errors"
    assert "403" in text[errors[0]] or "forbidden" in text[errors[0]]
    assert "no automated check exists yet" in text["AZURE-014"]
    assert "NOT-RUN" in text["PERF-001"]
    assert "not selected" in text["PERF-001"]
    assert "PASS" in text["DNS-001"]
    assert "dns" in text["DNS-001"].lower()
    assert 'id="waivers"' in document
    assert ">ACTIVE<" in document
    assert ">EXPIRED<" in document
    results = (run.run_dir / "results.json").read_bytes()
    assert hashlib.sha256(results).hexdigest() in document  # the artifact list
    assert "http://" not in document.split("<body>")[0]  # no external asset in the head
    assert "<script" not in document


def test_verify_names_a_changed_handover(handover_run: SuiteRun, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(handover_run.run_dir, run_dir)
    command = [str(Path(sys.executable).parent / "kkp-readiness"), "verify", str(run_dir)]
    untouched = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert untouched.returncode == 0, untouched.stdout + untouched.stderr
    handover = run_dir / "handover.html"
    handover.write_text(handover.read_text().replace("NOT READY", "READY", 1))
    changed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert changed.returncode == 1
    assert "handover.html" in changed.stdout


def test_handover_renders_in_a_browser(handover_run: SuiteRun, tmp_path: Path) -> None:
    """Headless chromium draws the cover: the screenshot is not blank and the verdict's red badge is on it."""
    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is missing: ./scripts/setup --browser installs it"
    shot = tmp_path / "cover.png"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900", f"--screenshot={shot}",
               (handover_run.run_dir / "handover.html").as_uri()]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert shot.is_file(), completed.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 900)
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "the screenshot is (nearly) blank"
    # The cover's verdict badge, #c62828, must be within the first screen.
    badge = sum(count for count, rgb in colours if rgb == (0xC6, 0x28, 0x28))
    assert badge > 5000, f"the NOT READY badge is not visible on the cover ({badge} red pixels)"

    pdf = tmp_path / "handover.pdf"  # and it prints (the customer's copy is often a PDF)
    command = [*command[:-3], "--no-pdf-header-footer", f"--print-to-pdf={pdf}", command[-1]]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert pdf.is_file(), completed.stderr[-2000:]
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    assert pdf.read_bytes().startswith(b"%PDF")
    assert pages > 2, pages  # a cover, then the requirements


def test_the_command_renders_what_the_run_wrote(handover_run: SuiteRun, tmp_path: Path) -> None:
    """``kkp-readiness handover`` from the run directory gives the run's own document, byte for byte; ``merge``
    of this run with another seed's (here: a copy) names both and is as bad as the worse."""
    assert handover_run.run_dir is not None
    kkp = str(Path(sys.executable).parent / "kkp-readiness")
    out = tmp_path / "again.html"
    rendered = subprocess.run([kkp, "handover", str(handover_run.run_dir), f"--out={out}"], capture_output=True,
                              text=True, timeout=60, check=False)
    assert rendered.returncode == 0, rendered.stderr
    assert out.read_bytes() == (handover_run.run_dir / "handover.html").read_bytes()

    other = tmp_path / "reports" / "other-seed-run"
    shutil.copytree(handover_run.run_dir, other)
    fleet = tmp_path / "fleet.html"
    merged = subprocess.run([kkp, "merge", str(handover_run.run_dir), str(other), f"--out={fleet}"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert merged.returncode == 1, merged.stdout + merged.stderr  # the fleet is as bad as its worst run
    assert merged.stdout.count("verified, unsigned") == 2
    document = fleet.read_text()
    assert 'id="r1-DNS-004"' in document
    assert 'id="r2-DNS-004"' in document
    assert 'id="document-warnings"' not in document
