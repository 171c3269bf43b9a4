"""kaffe viz's page in a real browser: headless Chromium driven by Playwright.

The page must show the layers, decode its pictures, and trace a clicked
feature-map pixel back to the input. Skipped when the ``playwright`` package
or a Chromium binary is missing (``pip install playwright``; Debian's
``apt-get install chromium``; another binary with ``KAFFE_CHROMIUM=path``).
Playwright's own browser downloads are never used.
"""
import os
import shutil

import pytest

from kaffe.viz.render import render
from kaffe.viz.report import build_report

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed (pip install playwright)")

CHROMIUM = os.environ.get("KAFFE_CHROMIUM") or shutil.which("chromium") or \
    "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or "
                "set KAFFE_CHROMIUM)", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LENET = os.path.join(REPO, "examples", "mnist", "lenet.prototxt")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("viz")
    path = folder / "lenet.html"
    path.write_text(render(build_report(LENET)), encoding="utf-8")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(folder / "profile"), executable_path=CHROMIUM, headless=True,
            args=ARGS, viewport={"width": 1400, "height": 900})
        # Nothing may leave the machine: any request but the file fails.
        requests = []
        context.route("**/*", lambda route: (
            requests.append(route.request.url),
            route.continue_() if route.request.url.startswith(
                ("file:", "data:")) else route.abort()))
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and
                errors.append(m.text))
        page.goto(path.as_uri())
        page.evaluate("document.documentElement.style.scrollBehavior='auto'")
        page.errors = errors
        page.requests = requests
        yield page
        context.close()


def test_page_shows_every_layer(page):
    names = page.eval_on_selector_all(
        "#layer-list .nm", "els => els.map(e => e.textContent)")
    assert names == ["data", "conv1", "pool1", "conv2", "pool2", "ip1",
                     "relu1", "ip2", "prob"]
    assert page.locator("section.layer").count() == 9
    # The graph: 8 boxes (relu1 shares ip1's), 7 edges.
    assert page.locator("#graph .gnode").count() == 8
    assert page.locator("#graph .edge").count() == 7
    assert page.locator("h1").inner_text() == "LeNet"
    assert not page.errors
    assert all(u.startswith(("file:", "data:")) for u in page.requests)


def _visible_picture(page, selector):
    page.locator(selector).first.scroll_into_view_if_needed()
    page.wait_for_function(
        f"() => {{ const i = document.querySelector({selector!r}); "
        "return i && i.complete && i.naturalWidth > 0; }")
    return page.eval_on_selector(
        selector, "i => [i.naturalWidth, i.naturalHeight, i.clientWidth]")


def test_filters_and_feature_maps_are_decoded(page):
    # conv2's filters: 50 rows of 20 tiles of 5×5 with 1-pixel gaps.
    w, h, shown = _visible_picture(page, '#L3 img.filters')
    assert (w, h) == (20 * 6 - 1, 50 * 6 - 1) and shown >= w
    # conv2's maps: 50 channels of 8×8, 9 a row, in one page.
    w, h, _ = _visible_picture(page, "#map-3-0-0-0")
    assert (w, h) == (9 * 9 - 1, 6 * 9 - 1)
    w, h, _ = _visible_picture(page, "#input-0")
    assert (w, h) == (28, 28)


def _click_map_pixel(page, layer, channel, y, x):
    """Click (y, x) of a channel's tile in a layer's first map picture."""
    selector = f"#map-{layer}-0-0-0"
    _visible_picture(page, selector)
    info = page.evaluate(
        "s => { const i = document.querySelector(s);"
        " i.scrollIntoView({block: 'center'});"
        " const r = i.getBoundingClientRect();"
        " const m = window.kaffeViz.data.layers[i.dataset.layer]"
        "   .tops[0].maps[0];"
        " return {left: r.left + i.clientLeft, top: r.top + i.clientTop,"
        "   zoom: i.clientWidth / i.naturalWidth, m}; }", selector)
    m = info["m"]
    cols = min(m["cols"], m["perPage"], m["shown"])
    row, col = divmod(channel, cols)
    px = col * (m["tile"][1] + 1) + x + 0.5
    py = row * (m["tile"][0] + 1) + y + 0.5
    page.mouse.click(info["left"] + px * info["zoom"],
                     info["top"] + py * info["zoom"])


def test_click_traces_a_pixel_to_its_receptive_field(page):
    # conv2, channel 12, value (3, 4): by hand (see test_report) the input
    # rows 6 … 19 and columns 8 … 21, from pool1's 5×5 window rows 3 … 7,
    # columns 4 … 8 of all 20 channels.
    _click_map_pixel(page, 3, 12, 3, 4)
    inspector = page.locator("#L3 #inspector")
    inspector.wait_for(state="visible")
    assert "conv2 · channel 12 · row 3, col 4" in inspector.inner_text()
    rect = page.locator("#inspector .rf-input")
    assert rect.is_visible()
    assert rect.get_attribute("data-rows") == "6-19"
    assert rect.get_attribute("data-cols") == "8-21"
    # The overlay covers that part of the (28×28) input picture.
    image = page.locator("#inspector .insp-input img").bounding_box()
    box = rect.bounding_box()
    scale = image["width"] / 28
    assert box["x"] - image["x"] == pytest.approx(8 * scale, abs=2.5)
    assert box["y"] - image["y"] == pytest.approx(6 * scale, abs=2.5)
    assert box["width"] == pytest.approx(14 * scale, abs=2.5)
    assert box["height"] == pytest.approx(14 * scale, abs=2.5)
    windows = page.locator("#inspector .mark.win")
    assert windows.count() == 20 and windows.first.is_visible()
    assert "5×5 window, rows 3–7, cols 4–8 of all 20 channels" in \
        inspector.inner_text()
    # Escape closes it.
    page.keyboard.press("Escape")
    assert not inspector.is_visible()
    assert not page.errors


def test_pooling_pixel_window_is_in_its_own_channel(page):
    # pool1 (2×2 /2) value (5, 7) of channel 3: conv1 rows 10-11, columns
    # 14-15 of channel 3 only; input rows 10 … 15, columns 14 … 19.
    _click_map_pixel(page, 2, 3, 5, 7)
    page.locator("#L2 #inspector").wait_for(state="visible")
    rect = page.locator("#inspector .rf-input")
    assert (rect.get_attribute("data-rows"),
            rect.get_attribute("data-cols")) == ("10-15", "14-19")
    windows = page.locator("#inspector .mark.win")
    assert windows.count() == 1
    assert windows.first.get_attribute("data-channel") == "3"


def test_graph_click_and_keys_move_between_layers(page):
    page.locator("#overview").scroll_into_view_if_needed()
    page.locator('#graph .gnode[data-layer="4"]').click()
    page.wait_for_function("location.hash === '#L4'")
    page.wait_for_function(
        "document.querySelector('#layer-list a.current')"
        ".dataset.layer === '4'")
    page.keyboard.press("j")
    page.wait_for_function("location.hash === '#L5'")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "layer-filter"
    page.keyboard.type("pool")
    visible = page.eval_on_selector_all(
        "#layer-list li:not([hidden]) .nm", "els => els.map(e => "
        "e.textContent)")
    assert visible == ["pool1", "pool2"]
