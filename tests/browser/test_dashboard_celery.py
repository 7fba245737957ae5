"""The dashboard scaled out: jobs on a real Celery worker, with Redis as broker, job board
and store, as the README's three commands start them."""

import pytest
from dash.testing.wait import until
from support.services import kill_group, start_celery_worker, start_redis

import demo_data
from dashboard import ids
from dashboard.backends import RedisBackend
from dashboard.config import Config
from dashboard.store import Store

pytestmark = pytest.mark.browser

DIGITS = demo_data.metadata("digits")["title"]


@pytest.fixture
def redis_url(tmp_path):
    process, url = start_redis(tmp_path)
    yield url
    process.kill()
    process.wait()


@pytest.fixture
def worker(redis_url, tmp_path):
    """A Celery worker; ``worker.restart()`` starts a new one after a kill."""

    class Worker:
        process = None

        def restart(self):
            self.process = start_celery_worker(redis_url, log=tmp_path / "celery.log")

        def kill(self):
            kill_group(self.process)

    started = Worker()
    started.restart()
    yield started
    started.kill()


@pytest.fixture
def celery_page(open_page, tmp_path, redis_url, worker):
    return open_page(Config(cache_dir=tmp_path / "unused", redis_url=redis_url))


def test_the_demo_flow_runs_on_a_celery_worker(celery_page, redis_url, tmp_path):
    page = celery_page
    page.choose(ids.DEMO_SELECT, DIGITS)
    page.wait_text(ids.MODEL_INFO, "LRP")
    page.choose(ids.METHOD_SELECT, "LRP")
    page.wait_for(ids.rule("rule_name", "Conv2D_Layer"))
    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Done.", timeout=60)
    page.wait_figure(ids.INDIVIDUAL_GRAPH, "heatmap")
    with Store(RedisBackend(redis_url)) as shared:  # where every server process reads it
        result = shared.get_result(page.store_data(ids.RESULT_REF)["key"])
    assert result.method_name == "LRP" and result.get_result("array").shape[:2] == (50, 1)
    assert "innsight.run_job" in (tmp_path / "celery.log").read_text()  # the worker ran it
    assert not (tmp_path / "unused").exists()  # nothing in a local folder: all in Redis
    assert page.duo.get_logs() == []


def test_a_killed_worker_shows_a_failure_and_the_next_request_works(celery_page, worker):
    page = celery_page
    page.choose(ids.DEMO_SELECT, DIGITS)
    page.wait_text(ids.MODEL_INFO, "IntegratedGradient")
    page.choose(ids.METHOD_SELECT, "IntegratedGradient")
    page.set_number(ids.parameter("n"), 1000)  # 50 rows × 10 classes × 1000 steps: long
    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Running", timeout=30)

    worker.kill()
    page.wait_text(ids.STATUS, "Failed: the worker running it stopped", timeout=30)
    compute = page.wait_for(ids.COMPUTE_BUTTON)
    until(compute.is_enabled, timeout=5, msg="Compute stayed disabled after the failure")
    assert page.alert_open()
    assert page.store_data(ids.RESULT_REF) is None

    worker.restart()
    page.choose(ids.METHOD_SELECT, "Gradient")
    page.wait_for(ids.parameter("times_input"))
    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Done.", timeout=60)
    page.wait_figure(ids.INDIVIDUAL_GRAPH, "heatmap")
