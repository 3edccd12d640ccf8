"""Judge feedback containing markup, shown by the dashboard in a real headless Chromium: an
`evalserve serve` whose `openai` engine fronts a real HTTP upstream that answers every item
with feedback made of `<script>` and an `<img onerror>`. The Job page shows that feedback as
text, creates no element from it and runs none of it."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.browser import chromium, screenshot
from tests.e2e.test_dashboard import HOSTILE, open_page, waiter
from tests.e2e.test_evaluate import seed_items
from tests.tracing.upstream import FakeOpenAI

pytestmark = pytest.mark.e2e


def test_feedback_with_markup_is_shown_as_text(server_factory) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    reply = json.dumps({"feedback": HOSTILE, "nota": 3})
    with FakeOpenAI(reply) as upstream:
        server = server_factory({"VLLM_ENDPOINT": upstream.url, "UPSTREAM_RETRIES": "0"})
        answer = httpx.post(f"{server.url}/evaluate", json={"items": seed_items(2)}, timeout=30)
        assert answer.status_code == 200, answer.text
        job_id = answer.json()["job_id"]
        server.wait_for(lambda: httpx.get(f"{server.url}/jobs/{job_id}").json()["status"]
                        == "completed", 60, f"job {job_id} completed")
        results = httpx.get(f"{server.url}/jobs/{job_id}/results").json()["results"]
        assert [r["feedback"] for r in results] == [HOSTILE, HOSTILE]
        driver = chromium()
        try:
            open_page(driver, server, f"/job/{job_id}")
            waiter(driver, 30)(lambda d: HOSTILE in d.find_element(By.ID, "items").text,
                               "the feedback shown as text")
            cells = driver.find_elements(By.CSS_SELECTOR, "#items td.feedback")
            assert [c.text for c in cells] == [HOSTILE, HOSTILE]
            assert driver.find_elements(By.CSS_SELECTOR, "#items script, #items img") == []
            assert driver.execute_script("return window.__xss") is None
            screenshot(driver, "job-hostile-feedback")
        finally:
            driver.quit()
