"""report.html, the catalogue page: built by every cluster run and by ``tagspark report``,
self-contained, and used in a real headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium): search, a clicked tag, the "tags for my post" box."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tagspark.cli import main
from tagspark.estimator import TagCategoriesModel
from tagspark.naming import Category, RankedTag
from tagspark.neighbours import Neighbours
from tagspark.report import report_html
from tests.conftest import write_jsonl
from tests.test_quality import themed_posts

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def run(spark, tmp_path_factory):
    """A cluster run with --k auto and --label-field, so the page has every part."""
    tmp = tmp_path_factory.mktemp("report")
    inp = write_jsonl(tmp / "posts.jsonl", themed_posts(per_theme=30))
    out = tmp / "out"
    code = main(
        ["cluster", "--input", str(inp), "--output", str(out), "--k", "auto", "--seed", "3",
         "--set", 'kmeans.k_range="3:5"', "--label-field", "label", "-q"]
    )  # fmt: skip
    assert code == 0
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing: .ci/run installs them")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--window-size=1280,2000",
             f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]  # fmt: skip
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _visible_cards(browser) -> list[str]:
    return browser.execute_script(
        "return [...document.querySelectorAll('#cards .card')]"
        ".filter((c) => !c.hidden).map((c) => c.dataset.name)"
    )


def test_every_run_writes_a_page_with_its_data(run):
    page = (run / "report.html").read_text()
    data = json.loads(
        re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1)
    )
    saved = json.loads((run / "categories.json").read_text())
    assert [c["name"] for c in data["categories"]] == [c["name"] for c in saved]
    assert data["categories"][0]["tags"][0]["tag"] == saved[0]["tags"][0]["tag"]
    meta = json.loads((run / "model" / "metadata.json").read_text())
    assert data["run"]["kept"] == meta["counts"]["kept"] == 126
    assert [p["k"] for p in data["curve"]["curve"]] == [3, 4, 5]
    assert data["evaluation"]["nmi"] == pytest.approx(meta["evaluation"]["nmi"])


def test_the_page_loads_nothing_from_anywhere(run):
    page = (run / "report.html").read_text()
    # no element or style that fetches: src/href attributes, CSS url() or @import
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert not re.search(r"url\(|@import", page, re.I)
    assert "<link" not in page and "<img" not in page


def test_report_rebuilds_the_page_from_a_saved_model(run, tmp_path):
    target = tmp_path / "again.html"
    assert main(["report", "--model", str(run / "model"), "--output", str(target)]) == 0
    assert target.read_text() == (run / "report.html").read_text()


def test_a_catalogue_of_200_categories_stays_small():
    tags = lambda c: tuple(  # noqa: E731
        RankedTag(f"tag{c}x{i}", 0.1 / (i + 1), 50, 10**6, "estimate", "in_band", 0.9, i < 5)
        for i in range(20)
    )
    categories = [Category(c, f"tag{c}x0_tag{c}x1_tag{c}x2", (), 5000, tags(c)) for c in range(200)]
    page = report_html(categories, {"counts": {"kept": 10**6}})
    assert len(page.encode()) < 2_000_000
    # with the post box's data: 4,000 listed tags with 50 companions each in the model,
    # among 100,000 vocabulary tags
    names = [t.tag for c in categories for t in c.tags] + [f"v{i}" for i in range(96_000)]
    rng = np.random.default_rng(1)
    listed = np.repeat(np.arange(4000), 50)
    model = SimpleNamespace(
        tags=tuple(names),
        position={t: i for i, t in enumerate(names)},
        categories=categories,
        neighbours=Neighbours.of(
            listed,
            rng.integers(0, len(names), len(listed)),
            rng.random(len(listed)),
            rng.integers(0, 500, len(listed)),
            len(names),
        ),  # fmt: skip
        stats=SimpleNamespace(
            band=np.array(["in_band"] * len(names)),
            recommended=np.ones(len(names), bool),
            top_category=rng.integers(0, 200, len(names)),
        ),
    )
    page = report_html(categories, {"counts": {"kept": 10**6}}, model)
    assert 1_500_000 < len(page.encode()) < 3_000_000


def test_search_click_and_post_box_in_a_real_browser(run, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get((run / "report.html").as_uri())
    names = _visible_cards(browser)
    saved = json.loads((run / "categories.json").read_text())
    assert names == [c["name"] for c in saved]
    # nothing was fetched: the only resource is the file itself
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0

    # typing filters the cards to those with a tag or name starting with the text
    search = browser.find_element(By.ID, "search")
    search.send_keys("sail")
    expected = [c["name"] for c in saved if any(t["tag"].startswith("sail") for t in c["tags"])]
    assert _visible_cards(browser) == expected and len(expected) == 1
    assert "sail" in expected[0] or any(
        t["tag"] == "sailing" for c in saved if c["name"] == expected[0] for t in c["tags"]
    )
    browser.find_element(By.ID, "clear").click()
    assert len(_visible_cards(browser)) == len(saved)

    # a clicked tag shows every category it appears in
    holding = [c["name"] for c in saved if any(t["tag"] == "summit" for t in c["tags"])]
    browser.find_element(By.CSS_SELECTOR, "button.tag[data-tag='summit']").click()
    assert _visible_cards(browser) == holding and len(holding) >= 1
    info = browser.find_element(By.ID, "tag-info").text
    assert info.startswith(f"#summit is in {len(holding)} categor") and holding[0] in info
    browser.find_element(By.ID, "clear").click()

    # the post box ranks as tagspark suggest and the Python API do
    api = TagCategoriesModel.load(str(run))
    for post in ("#pasta #pizza", "#summit", "#yacht #love"):
        box = browser.find_element(By.ID, "post-tags")
        box.clear()
        box.send_keys(post + "\n")
        shown = [li.get_attribute("data-tag") for li in
                 browser.find_elements(By.CSS_SELECTOR, "#post-result li")]  # fmt: skip
        expected = [s["tag"] for s in api.suggest(post, 10)["suggestions"]]
        assert shown[:3] == expected[:3] and len(shown) >= 3, post
        assert not {"pasta", "pizza", "summit", "yacht", "love"} & set(shown)
    first = browser.find_element(By.CSS_SELECTOR, "#post-result li").text
    assert "goes with #yacht (" in first  # why it is offered
    shot = Path(os.environ.get("TAGSPARK_SCREENSHOT_DIR", tmp_path)) / "report.png"
    browser.save_screenshot(str(shot))  # the artifact: under the test's output folder
    assert shot.stat().st_size > 10_000


def test_filtering_200_cards_in_the_browser(browser, tmp_path):
    """The page stays responsive on a large catalogue; the time is printed, not asserted."""
    tags = lambda c: tuple(  # noqa: E731
        RankedTag(f"t{c}x{i}", 0.1 / (i + 1), 50, 10**6, "estimate", "in_band", 0.9, i < 5)
        for i in range(20)
    )
    categories = [Category(c, f"t{c}x0_t{c}x1", (), 5000, tags(c)) for c in range(200)]
    page = tmp_path / "big.html"
    page.write_text(report_html(categories, {"counts": {"kept": 10**6}}))
    browser.get(page.as_uri())
    start = time.perf_counter()
    took = browser.execute_script(
        "const s = document.getElementById('search'); const t0 = performance.now();"
        "s.value = 't17'; s.dispatchEvent(new Event('input'));"
        "return performance.now() - t0;"
    )
    print(f"filtering 200 cards: {took:.1f} ms in the page ({time.perf_counter() - start:.3f} s)")
    assert _visible_cards(browser) == [f"t{c}x0_t{c}x1" for c in (17, *range(170, 180))]


@pytest.mark.parametrize("k", [2, 200, 500])
def test_the_size_chart_shows_every_category_inside_it(browser, tmp_path, k):
    categories = [
        Category(c, f"t{c}x0_t{c}x1", (), 10_000 - 19 * c, (RankedTag(f"t{c}x0", 0.1, 50),))
        for c in range(k)
    ]
    page = tmp_path / f"k{k}.html"
    page.write_text(report_html(categories, {"counts": {"kept": 10**6}}))
    browser.get(page.as_uri())
    found = browser.execute_script(
        "const svg = document.querySelector('#sizes svg'), box = svg.getBoundingClientRect();"
        "const bars = [...svg.querySelectorAll('a.bar rect')]"
        ".map((r) => r.getBoundingClientRect());"
        "return {box: [box.left, box.right, box.top, box.bottom],"
        " page: document.documentElement.clientWidth,"
        " bars: bars.map((b) => [b.left, b.right, b.top, b.bottom]),"
        " links: [...svg.querySelectorAll('a.bar')].map((a) => a.getAttribute('href')),"
        " cards: [...document.querySelectorAll('#cards .card')].map((c) => '#' + c.id),"
        " texts: [...svg.querySelectorAll('text')].map((t) => t.textContent)};"
    )
    left, right, top, bottom = found["box"]
    assert left >= 0 and right <= found["page"]  # the chart fits the page's width
    assert len(found["bars"]) == k
    for b_left, b_right, b_top, b_bottom in found["bars"]:
        assert left <= b_left < b_right <= right and top <= b_top < b_bottom <= bottom
    assert found["links"] == found["cards"]  # largest first, each bar to its card
    assert "posts" in found["texts"]
    assert f"categories, largest first ({k}); a bar opens its card" in found["texts"]


def test_the_k_curve_plot_labels_the_k_values_tried():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tagspark.choose_k import curve_figure

    curve = [{"k": k, "cost": 100.0 / k, "silhouette": 0.1 * k} for k in (2, 3, 4, 6, 9, 14)]
    fig = curve_figure({"curve": curve, "chosen_k": 4, "sample_posts": 500}, plt)
    axis = fig.axes[0].xaxis
    fig.canvas.draw()
    assert [t.get_text() for t in axis.get_ticklabels()] == ["2", "3", "4", "6", "9", "14"]
    assert axis.get_minorticklocs().size == 0  # no 2x10^0-style minor labels
    plt.close(fig)
