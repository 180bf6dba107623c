"""System test: report.html opens in headless Chromium (Debian `chromium`); the screenshot shows its tables
and its embedded plots."""

import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.image import imread

from softtargets.report.build import build_report
from test_report import fixed_table

pytestmark = pytest.mark.system
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    pytest.skip("no headless Chromium: apt-get install chromium")


def near(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> int:
    return int((np.abs(pixels[..., :3] * 255 - np.array(rgb)).max(axis=-1) <= tol).sum())


def test_report_html_renders_tables_and_images(tmp_path):
    browser = chromium()
    fixed_table(tmp_path / "runs")
    report = build_report(tmp_path / "runs")
    page = f"file://{report.path / 'report.html'}"
    common = [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-500:]
    # the overview (forest plot + table), then the group: summary and paired tables, two figures
    assert dom.stdout.count("<table") == 3 and dom.stdout.count("<img") == 3
    assert "soft - hard" in dom.stdout and "Overview: closer to the reference?" in dom.stdout
    assert "alt=\"forest plot\"" in dom.stdout
    shot = tmp_path / "report.png"
    run = subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,1600", page], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-500:]
    shutil.copy(shot, report.path / "screenshot.png")  # kept next to the report for a look
    pixels = imread(shot)
    assert near(pixels, (0xF0, 0xF0, 0xF0), 2) > 5000  # table header cells
    assert near(pixels, (0x1F, 0x77, 0xB4)) > 300  # the hard arm's histogram edge and normal fit
    assert near(pixels, (0xD6, 0x27, 0x28)) > 300  # the soft arm's fit line and scatter points
    assert (pixels[..., :3].mean(axis=-1) < 0.3).sum() > 2000  # text


def test_published_study_report_renders(tmp_path):
    """docs/results/report.html, as committed: its forest plot and overview table are visible in a browser."""
    from pathlib import Path

    page_file = Path(__file__).resolve().parents[1] / "docs" / "results" / "report.html"
    browser = chromium()
    common = [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", f"file://{page_file}"], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-500:]
    assert "alt=\"forest plot\"" in dom.stdout and "<table class=\"overview\">" in dom.stdout
    shot = tmp_path / "study.png"
    run = subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,2400", f"file://{page_file}"],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-500:]
    pixels = imread(shot)
    assert near(pixels, (0xD6, 0x27, 0x28)) > 200  # the forest plot's first arm (pseudo, red) in the first screen
    assert (pixels[..., :3].mean(axis=-1) < 0.3).sum() > 5000  # text
