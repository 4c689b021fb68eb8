"""End to end in headless Chromium: `streamlit run app/Home.py` on a free port, every page.

Launches a tiny run from the Train page, waits for the background worker to finish it,
checks that the Embeddings page plots it, measures the time to the first plot of each page
and to redraw after changing the coloured factor and the noise scale σ, and writes those
timings and a screenshot of every page to a temporary folder; with
ACC_REFRESH_SCREENSHOTS=1 they replace the committed ones in docs/screenshots/ (the README's).

Screenshots show a run whose label contains one of $ACC_SCREENSHOT_RUN (comma-separated;
default: the shipped Shapes3D run, else any pretrained run), else the tiny run.

Needs Debian's Chromium at /usr/bin/chromium (`apt-get install -y chromium`); Playwright's
own browser download is never used.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
COMMITTED_SHOTS = REPO / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
PLOT = ".js-plotly-plot .main-svg"
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
TIMEOUT_MS = 240_000

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's Chromium with "
                "`apt-get update && apt-get install -y chromium`", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Streamlit server on a free port with a private run store; yields (url, home)."""
    home = tmp_path_factory.mktemp("browser") / "runs"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ, ACC_HOME=str(home), PYTHONPATH=str(REPO))
    env.setdefault("ACC_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))
    log = open(home.parent / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/Home.py", "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start; see {home.parent / 'streamlit.log'}")
            time.sleep(0.3)
        yield url, home
    finally:
        from acc_core.worker import workers

        for w in workers(home):  # the worker the app started for the tiny run
            if w.get("pid"):
                try:
                    os.kill(int(w["pid"]), signal.SIGTERM)
                except ProcessLookupError:
                    pass
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where screenshots and timings go: a temporary folder, unless a refresh is asked for."""
    if os.environ.get("ACC_REFRESH_SCREENSHOTS") == "1":
        return COMMITTED_SHOTS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


# ----- helpers ------------------------------------------------------------------------------
def settle(page) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_timeout(300)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)


def open_page(page, url: str, path: str, wait_for: str = PLOT) -> float:
    """Load a page; seconds until its first plot (or `wait_for`) is visible."""
    t0 = time.perf_counter()
    page.goto(f"{url}/{path}")
    page.locator(wait_for).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    return time.perf_counter() - t0


def no_errors(page) -> None:
    errors = page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    assert not errors, errors
    assert page.locator('[data-testid="stException"]').count() == 0


def box_select(page, plot, attempts: int = 3) -> None:
    """Drag a box over most of `plot` and wait for the selected points' images.

    A drag that lands while Streamlit is still redrawing the plot (after a recolour) is lost
    with the old plot; the page is then settled and the drag made again, as a user would."""
    images = page.locator('[data-testid="stImage"] img').first
    for attempt in range(attempts):
        settle(page)
        drag = plot.locator(".nsewdrag").first
        b = drag.bounding_box()
        page.mouse.move(b["x"] + 5, b["y"] + 5)
        page.mouse.down()
        page.mouse.move(b["x"] + b["width"] * 0.7, b["y"] + b["height"] * 0.7, steps=8)
        page.mouse.up()
        try:
            images.wait_for(state="visible", timeout=60_000)
            return
        except sync_api.TimeoutError:
            if attempt == attempts - 1:
                raise


def pick(page, label: str, option) -> bool:
    """Choose `option` (text or regex) in the selectbox labelled `label`; False if absent.

    The list opens with ArrowDown on the focused combobox; a key press that lands while the
    element is being redrawn can be lost, so try a few times."""
    combo = page.get_by_role("combobox", name=label).first
    exact = isinstance(option, str)
    for _ in range(5):
        combo.focus()
        combo.press("ArrowDown")
        choice = page.get_by_role("option", name=option, exact=exact if exact else None).first
        try:
            choice.click(timeout=3000)
            return True
        except sync_api.TimeoutError:
            if page.get_by_role("option").count():  # the list is open: no such option
                page.keyboard.press("Escape")
                return False
            page.keyboard.press("Escape")
    raise AssertionError(f"the selectbox {label!r} did not open")


def shoot(page, name: str, folder: Path) -> None:
    """A screenshot of the whole page (Streamlit scrolls inside its main block)."""
    settle(page)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')"
                           ".scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(height, 1000), 6000)})
    page.wait_for_timeout(800)  # plotly resizes to the new viewport
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def plot_title(page, nth: int) -> str:
    return page.locator(".js-plotly-plot").nth(nth).locator(".gtitle").first.text_content()


def choose_by_typing(page, label: str, text: str) -> None:
    """Filter a long selectbox by typing (its list only renders what is in view), then
    take the first match."""
    combo = page.get_by_role("combobox", name=label).first
    combo.click()
    page.keyboard.type(text)
    page.get_by_role("option", name=re.compile(re.escape(text))).first.click()


def switch_to_umap(page) -> float:
    """Click the UMAP projection; seconds until the detail plot shows a UMAP."""
    t0 = time.perf_counter()
    page.get_by_text("UMAP", exact=True).first.click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
        ".some(t => t.textContent.startsWith('UMAP at step'))", timeout=TIMEOUT_MS)
    return time.perf_counter() - t0


def fill_number(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    settle(page)


# ----- the test ------------------------------------------------------------------------------
def open_train(page, url: str, *, dataset: str | None = None, method: str | None = None,
               title: str | None = None) -> str | None:
    """The Train page, with `dataset` and the method whose title matches `title` picked;
    returns the method's supervision note (None when no method is picked)."""
    page.goto(f"{url}/train")
    page.get_by_role("button", name="Launch").wait_for()
    if dataset is not None:
        assert pick(page, "Dataset", dataset)
        settle(page)
    if method is None:
        return None
    assert pick(page, "Method", re.compile(title))
    settle(page)
    info = page.locator('[data-testid="stAlertContentInfo"]', has_text=f"Supervision ({method})")
    info.first.wait_for()
    return info.first.inner_text()


def launch(page, fields: list[tuple[str, str]], snapshot_every: str, probe: str = "200",
           advanced=None) -> tuple[str, float]:
    """Fill the form's number `fields`, then Advanced (`advanced(page)` first, then the
    snapshot interval and probe size), launch one run, follow it on the watcher until done:
    (the watched run's label, seconds from Launch to done)."""
    for label, value in fields:
        fill_number(page, label, value)
    page.get_by_text("Advanced").click()
    if advanced is not None:
        advanced(page)
    for label, value in [("Snapshot every (steps)", snapshot_every), ("Probe subset size", probe)]:
        fill_number(page, label, value)
    no_errors(page)
    t0 = time.perf_counter()
    page.get_by_role("button", name="Launch").click()
    page.get_by_text("Queued 1 run(s).").wait_for()
    settle(page)
    watched = page.get_by_role("combobox", name="Watch run").first.input_value()
    page.get_by_text("Done. Explore it on the other pages.").wait_for(timeout=TIMEOUT_MS)
    return watched, time.perf_counter() - t0


def test_every_page_in_chromium(server, browser, shots):
    url, home = server
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        walk_through(page, url, shots)
    except BaseException:
        shot = home.parent / "failure.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"the page at failure: {shot}; server log: {home.parent / 'streamlit.log'}")
        raise


def walk_through(page, url: str, shots: Path) -> None:
    timings: dict = {"first_plot_s": {}}

    # Home: the set A / set B illustration.
    timings["first_plot_s"]["home"] = open_page(page, url, "", '[data-testid="stImage"] img')
    no_errors(page)

    # Train: a tiny run (10 steps, sets of 8) launched from the page, trained by the worker.
    open_train(page, url)
    # The watcher follows the new run, live, until it is done.
    watched, timings["tiny_run_launch_to_done_s"] = launch(
        page, [("Steps", "10"), ("Set size", "8"), ("Code dimension", "8")], "5", probe="300")
    assert "d=8" in watched
    page.locator(PLOT).nth(1).wait_for(state="visible")  # loss curve and PCA
    no_errors(page)

    # Embeddings of the tiny run; recolour the detail plot; a box selection shows images.
    timings["first_plot_s"]["embeddings"] = open_page(page, url, "embeddings")
    page.locator(".js-plotly-plot").nth(1).wait_for(state="visible")
    settle(page)
    no_errors(page)
    assert page.get_by_role("combobox", name="Run").first.input_value().startswith("DONE")
    assert "coloured by floor_hue" in plot_title(page, 1)
    t0 = time.perf_counter()
    assert pick(page, "Colour by", "shape")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
        ".some(t => t.textContent.includes('coloured by shape'))", timeout=TIMEOUT_MS)
    timings["change_coloured_factor_s"] = time.perf_counter() - t0
    box_select(page, page.locator(".js-plotly-plot").nth(1))
    no_errors(page)

    # UMAP of the run that just finished: the worker computed it before marking it done.
    timings["umap_just_finished_s"] = switch_to_umap(page)
    no_errors(page)
    # and of a shipped run, which ships its UMAP
    t0 = time.perf_counter()
    choose_by_typing(page, "Run", "shapes3d-wall-hue · pretrained")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
        ".some(t => t.textContent.startsWith('UMAP at step 600'))", timeout=TIMEOUT_MS)
    settle(page)  # both rows of small multiples drawn too
    timings["umap_shipped_s"] = time.perf_counter() - t0
    no_errors(page)
    page.get_by_text("PCA", exact=True).first.click()
    settle(page)

    # Information: MI bars and the noise sweep; move the σ slider one notch.
    timings["first_plot_s"]["information"] = open_page(page, url, "information")
    settle(page)
    no_errors(page)
    before = plot_title(page, 0)
    t0 = time.perf_counter()
    page.get_by_role("slider", name="Noise scale σ").first.press("ArrowRight")
    page.wait_for_function(
        "(old) => { const t = document.querySelector('.js-plotly-plot .gtitle');"
        " return t && t.textContent !== old; }", arg=before, timeout=TIMEOUT_MS)
    timings["change_sigma_s"] = time.perf_counter() - t0
    no_errors(page)

    for path in ("retrieval", "compare"):
        timings["first_plot_s"][path] = open_page(page, url, path)
        settle(page)
        no_errors(page)

    # The classroom page computes only on demand: a small simulation.
    page.goto(f"{url}/random_loss")
    page.get_by_role("button", name="Run the simulation").wait_for()
    t0 = time.perf_counter()
    page.get_by_role("button", name="Run the simulation").click()
    page.locator(PLOT).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    timings["random_loss_simulation_s"] = time.perf_counter() - t0
    no_errors(page)
    shoot(page, "random_loss", shots)

    # Screenshots: the first run matching one of $ACC_SCREENSHOT_RUN (comma-separated
    # patterns; default: the shipped Shapes3D run, else any pretrained run).
    wanted = os.environ.get("ACC_SCREENSHOT_RUN", "shapes3d-wall-hue,pretrained").split(",")
    for path, name in [("", "home"), ("train", "train"), ("embeddings", "embeddings"),
                       ("information", "information"), ("retrieval", "retrieval"),
                       ("compare", "compare")]:
        page.goto(f"{url}/{path}")
        settle(page)
        label = {"train": "Watch run", "embeddings": "Run", "information": "Run",
                 "retrieval": "Run"}.get(path)
        if label and any(pick(page, label, re.compile(re.escape(w.strip()))) for w in wanted):
            settle(page)
        page.locator(PLOT if path else '[data-testid="stImage"] img').first.wait_for()
        no_errors(page)
        shoot(page, name, shots)

    timings["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average_1min": os.getloadavg()[0]}
    (shots / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(json.dumps(timings, indent=2))
    # Generous bounds for shared CI machines; the measured figures are in timings.json.
    assert timings["change_coloured_factor_s"] < 10
    assert timings["change_sigma_s"] < 10
    # A UMAP is never computed while the user waits here (the worker made the finished run's,
    # the shipped run ships its own): 3 s on a machine not otherwise busy, scaled by how
    # oversubscribed the cores are when they are (load average per core above 1).
    busy = max(1.0, timings["machine"]["load_average_1min"] / (os.cpu_count() or 1))
    assert timings["umap_just_finished_s"] < 3 * busy, timings
    assert timings["umap_shipped_s"] < 3 * busy, timings
    assert max(timings["first_plot_s"].values()) < 60


def test_a_lord_run_from_the_train_page_on_every_page(server, browser):
    """A new user's comparison: train LORD on the default scenario from the Train page, watch
    it, open it on every page (both of its codes), then set it beside the shipped ACC run of
    the same scenario."""
    url, home = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        assert "class" in open_train(page, url, method="lord", title="^LORD")
        watched, _ = launch(page, [("Steps", "12")], "6")
        assert " lord " in f" {watched} "
        run_prefix = watched.rsplit("·", 1)[-1].strip()

        open_page(page, url, "embeddings")
        settle(page)
        no_errors(page)
        assert page.get_by_role("combobox", name="Run").first.input_value().startswith("DONE")
        assert pick(page, "Representation", "class")
        settle(page)
        page.locator(PLOT).first.wait_for(state="visible")
        page.get_by_text("Content transfer").first.wait_for()
        no_errors(page)
        for path in ("information", "retrieval"):
            open_page(page, url, path)
            settle(page)
            no_errors(page)
        # beside the shipped ACC run of the same scenario (wall hue inactive)
        open_page(page, url, f"compare?runs={run_prefix},shapes3d-wall-hue")
        settle(page)
        no_errors(page)
        heat = page.locator(".js-plotly-plot").first.inner_text()
        assert "(lord)" in heat and "(acc)" in heat and "shapes3d-wall-hue" in heat
    except BaseException:
        shot = home.parent / "failure-lord.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"the page at failure: {shot}; server log: {home.parent / 'streamlit.log'}")
        raise


def test_mixing_and_rci_from_the_train_page_beside_acc(server, browser):
    """The last two peers as a new user meets them: train each for a few steps from the Train
    page, open its own views on Embeddings (the mixing autoencoder's chunk x factor matrix and
    chunk-swap grid, rci's invariance scores), then compare both with the shipped ACC run."""
    url, home = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    prefixes = []
    try:
        for method, title, says, views in (
                ("mixing", "^Mixing autoencoder", "Unsupervised", ("Chunk x factor mAP", "Chunk swap")),
                ("rci", "^Reconstruction \\+ contrast", "exactly", ("Invariance (seed 004, Table 1)",
                                                                    "z_p / z_n transfer"))):
            assert says in open_train(page, url, method=method, title=title)
            watched, _ = launch(page, [("Steps", "6")], "3")
            assert f" {method} " in f" {watched} "
            prefixes.append(watched.rsplit("·", 1)[-1].strip())

            open_page(page, url, "embeddings")
            settle(page)
            no_errors(page)
            for heading in views:
                page.get_by_role("heading", name=heading).first.wait_for()
            if method == "mixing":  # the matrix is drawn, and another chunk's grid opens
                page.locator(".js-plotly-plot .gtitle", has_text="Chunk x factor mAP").first.wait_for()
                page.get_by_text(re.compile(r"^chunk 3( \(|$)")).first.click()
                settle(page)
                assert page.get_by_text("chunk 3 taken from B").count() == 1
            page.get_by_text("Departures from the paper" if method == "mixing"
                             else "Choices the paper leaves open").first.wait_for()
            no_errors(page)
        open_page(page, url, f"compare?runs={','.join(prefixes)},shapes3d-wall-hue")
        settle(page)
        no_errors(page)
        heat = page.locator(".js-plotly-plot").first.inner_text()
        assert "(mixing)" in heat and "(rci)" in heat and "(acc)" in heat
    except BaseException:
        shot = home.parent / "failure-mixing-rci.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"the page at failure: {shot}; server log: {home.parent / 'streamlit.log'}")
        raise


def test_leaderboard_opens_fast_and_its_links_open_the_runs(server, browser):
    """The leaderboard of the shipped runs opens in under 5 s; a row's link opens Compare."""
    url, home = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    open_page(page, url, "", '[data-testid="stImage"] img')  # the server is warm
    seconds = open_page(page, url, "leaderboard", '[data-testid="stDataFrame"]')
    no_errors(page)
    print(f"leaderboard first table: {seconds:.2f} s")
    assert seconds < 5.0
    link = page.get_by_role("link", name="Open them on Compare")
    href = link.get_attribute("href")
    assert "compare?runs=" in href
    run_ids = href.split("runs=", 1)[1].split(",")
    from urllib.parse import urljoin

    page.goto(urljoin(page.url, href))  # where the button leads (it opens a new tab)
    page.locator(PLOT).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    no_errors(page)
    assert run_ids[0][:6] in page.content()
    page.close()


def test_a_pose_run_from_the_train_page_and_a_real_query(server, browser):
    """Pose transfer as a new user meets it: train the pose scenario for a few steps from the
    Train page, open the Pose page, query a real-domain image and see its nearest synthetic
    neighbours for ACC beside the untrained network, with the error histogram."""
    url, home = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        note = open_train(page, url, dataset="pose-procedural", method="acc_pose",
                          title="^ACC for pose transfer")
        assert "no pose label reaches the ACC loss" in note

        def small_images(page):
            assert pick(page, "Image size", "16 px")
            settle(page)

        watched, _ = launch(page, [("Steps", "4")], "2", advanced=small_images)
        assert " acc_pose " in f" {watched} "

        t0 = time.perf_counter()
        open_page(page, url, "pose")
        settle(page)
        no_errors(page)
        page.get_by_text("Query (real)").first.wait_for()
        page.get_by_text("ACC: nearest synthetic images").first.wait_for()
        page.get_by_text("untrained network: nearest synthetic images").first.wait_for()
        page.get_by_role("heading", name="Errors of every query").first.wait_for()
        opened = time.perf_counter() - t0
        def query_column() -> str:  # the query's own pose caption
            return page.get_by_text("Query (real)").first.locator(
                "xpath=ancestor::*[@data-testid='stColumn'][1]").inner_text()

        before = query_column()
        slider = page.get_by_role("slider").first  # another real query
        slider.focus()
        for _ in range(5):
            slider.press("ArrowRight")
        settle(page)
        no_errors(page)
        assert page.get_by_role("slider").first.get_attribute("aria-valuenow") != "0"
        deadline = time.time() + 60  # the page reruns for the new query
        while query_column() == before and time.time() < deadline:
            time.sleep(0.3)
        settle(page)
        assert "°" in query_column() and query_column() != before, (before, query_column())
        neighbours = page.get_by_text("ACC: nearest synthetic images").first.locator(
            "xpath=ancestor::*[@data-testid='stColumn'][1]").inner_text()
        assert neighbours.count("° off") == 4  # four neighbours, each with its pose error
        print(json.dumps({"pose_page_open_s": round(opened, 2)}))
    except BaseException:
        shot = home.parent / "failure-pose.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"the page at failure: {shot}; server log: {home.parent / 'streamlit.log'}")
        raise
