"""System test: the built documentation site in headless Chromium (Debian `chromium`). The front page, the
command line reference and the published study's page render, with their tables, their text and the study's
figures."""

import re
import subprocess

import pytest
from matplotlib.image import imread

from test_docs import build_site
from test_report_html import FLAGS, chromium, near

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_site(tmp_path_factory.mktemp("docs"))


def render(tmp_path, page, height: int = 2400):
    """The page's DOM after Chromium ran its scripts, and a screenshot of its first `height` pixels."""
    common = [chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", f"file://{page}"], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-500:]
    shot = tmp_path / "page.png"
    done = subprocess.run([*common, f"--screenshot={shot}", f"--window-size=1280,{height}", f"file://{page}"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-500:]
    return dom.stdout, imread(shot)


def text_pixels(pixels) -> int:
    return int((pixels[..., :3].mean(axis=-1) < 0.3).sum())


def test_front_page_renders_the_readme(site, tmp_path):
    dom, pixels = render(tmp_path, site / "index.html")
    assert "<h1" in dom and ">softtargets<" in dom and dom.count("<table") == 3  # the two studies, the pages
    assert re.search(r"retrained without\s+that data", dom) and 'id="results"' in dom and "(vs the first arm)" in dom
    assert near(pixels, (0x3F, 0x51, 0xB5), 4) > 20000  # the theme's header bar: the stylesheet loaded
    assert text_pixels(pixels) > 5000


def test_cli_reference_renders(site, tmp_path):
    dom, pixels = render(tmp_path, site / "reference" / "cli" / "index.html")
    assert "softtargets run" in dom and "--dataset" in dom and "softtargets report" in dom
    assert near(pixels, (0x3F, 0x51, 0xB5), 4) > 20000
    assert text_pixels(pixels) > 5000


def test_study_page_renders_its_tables_and_figures(site, tmp_path):
    dom, pixels = render(tmp_path, site / "results" / "index.html", height=3200)
    assert dom.count("<table") > 10 and 'src="forest.png"' in dom and 'href="runs.csv.xz"' in dom
    assert near(pixels, (0xD6, 0x27, 0x28)) > 200  # the forest plot's red arm: the figure loaded and shows
    assert text_pixels(pixels) > 5000
