"""The dashboard in a real headless Chromium against a live `evalserve serve` on the bundled
model, with `API_TOKEN` set: the token prompt, a file submitted from the Jobs page followed
to 100 %, the histogram's bars and counts against the API, the agreement view's QWK against
`GET /jobs/{id}/agreement`, a pairwise job's leaderboard, item text containing markup shown as
text, and the Service page. Screenshots of each page go to build/screenshots/."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.browser import chromium, screenshot, severe_logs

pytestmark = pytest.mark.e2e

TOKEN = "dashboard-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOSTILE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'

ITEMS = [  # judge-1-5: a question, an answer, and a teacher's grade in its own column
    {"id": "q1", "inputs": "What is 2+2?", "predictions": "4", "teacher": 5},
    {"id": "q2", "inputs": "Capital of France?", "predictions": "Berlin", "teacher": 1},
    {"id": "q3", "inputs": "Colour of the sky?", "predictions": "Blue.", "teacher": 4},
    {"id": "q4", "inputs": "Largest planet?", "predictions": "Mars", "teacher": 2},
]
PAIRS = [
    {"id": "p1", "question": "What is the capital of France?", "response_a": "Paris.",
     "response_b": "Bananas.", "system_a": "good", "system_b": "bad"},
    {"id": "p2", "question": "What is 2+2?", "response_a": "5", "response_b": "4.",
     "system_a": "bad", "system_b": "good"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from tests.e2e.server import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("dashboard") / "data",
                         env={"API_TOKEN": TOKEN, "MAX_NEW_TOKENS": "16"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def api(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def browser(server) -> Iterator:
    driver = chromium()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def background_jobs(api: httpx.Client) -> dict[str, str]:
    """A pairwise job, submitted at the start so the model grades it while the browser tests
    run."""
    pairwise = api.post("/evaluate", json={"rubric": "pairwise-preference", "items": PAIRS})
    assert pairwise.status_code == 200, pairwise.text
    return {"pairwise": pairwise.json()["job_id"]}


def waiter(driver, timeout: float = 120) -> Callable:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # the Jobs page redraws its rows every second: an element read mid-redraw is stale
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=[StaleElementReferenceException]).until


def open_page(driver, server, hash_: str, timeout: float = 60) -> None:
    """Go to `/ui#<hash_>` and wait until the page says it has rendered."""
    driver.get(f"{server.url}/ui#{hash_}")
    page = hash_.strip("/").split("/")[0]
    waiter(driver, timeout)(lambda d: d.execute_script("return document.body.dataset.ready")
                            == page, f"page {page} rendered")


def wait_completed(server, api: httpx.Client, job_id: str, timeout: float = 240) -> dict:
    return server.wait_for(lambda: (j := api.get(f"/jobs/{job_id}").json())["status"]
                           == "completed" and j, timeout, f"job {job_id} completed")


def sign_in(driver, server) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server.url + "/ui")
    waiter(driver, 30)(lambda d: d.find_element(By.ID, "token-dialog").get_attribute("open")
                       is not None, "the token prompt")
    screenshot(driver, "token-prompt")
    driver.find_element(By.ID, "token-input").send_keys(TOKEN)
    driver.find_element(By.ID, "token-submit").click()
    waiter(driver, 30)(lambda d: d.execute_script("return document.body.dataset.ready")
                       == "jobs", "the jobs page after the token")
    assert driver.execute_script("return sessionStorage.getItem('evalserve-token')") == TOKEN
    assert driver.execute_script("return localStorage.length") == 0


def test_dashboard(server, api: httpx.Client, browser, background_jobs: dict[str, str],
                   tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    assert api.get("/jobs").status_code == 200
    assert httpx.get(server.url + "/jobs").status_code == 401

    # the token prompt, then submit a JSONL file with a human-grade column from the Jobs page
    sign_in(driver, server)
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    driver.find_element(By.ID, "file").send_keys(str(path))
    Select(driver.find_element(By.ID, "rubric")).select_by_value("judge-1-5")
    driver.find_element(By.ID, "human-column").send_keys("teacher")
    driver.find_element(By.ID, "submit").click()
    message = waiter(driver, 30)(lambda d: (t := d.find_element(By.ID, "submit-msg").text)
                                 .startswith("Job ") and t, "the submit message")
    job_id = message.split()[1]
    row = f'tr[data-job="{job_id}"]'
    waiter(driver, 30)(lambda d: d.find_elements(By.CSS_SELECTOR, row), "the job's row")
    screenshot(driver, "jobs")
    # the row's progress bar reaches 100 %, live, without reloading the page
    waiter(driver, 300)(lambda d: d.find_element(By.CSS_SELECTOR, f"{row} [role=progressbar]")
                        .get_attribute("aria-valuenow") == "100", "progress at 100 %")
    waiter(driver, 30)(lambda d: d.find_element(By.CSS_SELECTOR, f"{row} .status").text
                       == "completed", "the row completed")
    job = api.get(f"/jobs/{job_id}").json()
    assert job["counts"]["completed"] == len(ITEMS)

    # the Job page: one bar per scale point, the counts of the API's results
    open_page(driver, server, f"/job/{job_id}")
    results = api.get(f"/jobs/{job_id}/results").json()["results"]
    scale = api.get("/rubrics/judge-1-5").json()["scale"]
    expected = [sum(1 for r in results if r["status"] == "scored" and r["score"] == s)
                for s in scale]
    drawn = driver.execute_script(
        "const c = Chart.getChart('histogram');"
        "return [c.getDatasetMeta(0).data.length, c.data.datasets[0].data];")
    assert drawn == [len(scale), expected]
    assert sum(drawn[1]) == job["counts"]["scored"]
    assert driver.find_element(By.ID, "stat-scored").text == str(job["counts"]["scored"])
    assert len(driver.find_elements(By.CSS_SELECTOR, "#items tr")) == len(ITEMS)
    screenshot(driver, "job")
    # filter the items table, open an item's detail
    driver.find_element(By.ID, "items-filter").send_keys("q3")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#items tr")) == 1
    driver.find_element(By.CSS_SELECTOR, "#items tr a").click()
    waiter(driver, 30)(lambda d: d.find_elements(By.ID, "item-detail"), "the item's detail")
    assert "q3" in driver.find_element(By.ID, "item-detail").text

    # the Agreement page shows the API's QWK
    agreement = api.get(f"/jobs/{job_id}/agreement").json()["score"]
    open_page(driver, server, f"/agreement/{job_id}")
    shown = driver.find_element(By.CSS_SELECTOR, "#score-numbers [data-metric=qwk]").text
    qwk = agreement["qwk"]
    assert shown == ("–" if qwk is None else f"{qwk:.3f}")
    assert driver.find_element(By.CSS_SELECTOR, "#score-numbers [data-metric=n]").text \
        == str(agreement["n"])
    cells = driver.find_elements(By.CSS_SELECTOR, "#score-confusion tbody td")
    assert [int(c.text) for c in cells] == [n for row in agreement["confusion"]["counts"]
                                             for n in row]
    screenshot(driver, "agreement")

    # the pairwise job's leaderboard: one row per system, in the API's order
    pairwise_id = background_jobs["pairwise"]
    report = wait_completed(server, api, pairwise_id)["report"]["pairwise"]
    open_page(driver, server, f"/pairwise/{pairwise_id}")
    if report["leaderboard"]:
        systems = [r.text for r in driver.find_elements(By.CSS_SELECTOR,
                                                        "#leaderboard tbody td:nth-child(2)")]
        assert systems == [r["system"] for r in report["leaderboard"]]
    assert driver.find_element(By.ID, "pw-pairs").text == str(report["pairs"])
    screenshot(driver, "pairwise")

    # a job opened while it is queued follows its stream to the end, then redraws; markup
    # in an item's id (and whatever the judge wrote) is shown as text and no script runs
    hostile = api.post("/evaluate", json={"rubric": "judge-1-5", "items": [
        {"id": HOSTILE, "inputs": "Say hi", "predictions": "hi"},
        {"id": "h2", "inputs": "Say bye", "predictions": "bye"}]})
    assert hostile.status_code == 200, hostile.text
    hostile_id = hostile.json()["job_id"]
    open_page(driver, server, f"/job/{hostile_id}")
    assert driver.execute_script("return document.body.dataset.following") == hostile_id
    waiter(driver, 120)(lambda d: d.execute_script(
        "const b = document.body.dataset; return b.streamEnd === 'complete' && b.ready === 'job'"
        " && document.getElementById('stat-status').textContent === 'completed'"),
        "the stream's complete event and the redrawn page")
    assert driver.execute_script("return document.body.dataset.streamed") == "2"
    assert HOSTILE in driver.find_element(By.ID, "items").text
    assert driver.find_elements(By.CSS_SELECTOR, "#items script, #items img") == []
    assert driver.execute_script("return window.__xss") is None

    # the Service page: the model served and the engine's gauges from /metrics
    open_page(driver, server, "/service")
    models = [m["id"] for m in api.get("/v1/models").json()["data"]]
    assert driver.find_element(By.ID, "models").text.split("\n") == models
    waiter(driver, 30)(lambda d: d.find_element(By.ID, "svc-queue").text.endswith("sequences"),
                       "the queue depth")
    screenshot(driver, "service")

    # a phone width lays the Jobs page out without a horizontal scroll of the page
    driver.set_window_size(390, 844)
    open_page(driver, server, "/jobs")
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(driver, "jobs-phone")
    driver.set_window_size(1280, 800)
    assert severe_logs(driver) == []
