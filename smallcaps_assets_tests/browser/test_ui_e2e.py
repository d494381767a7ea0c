"""What a user sees after a run: `make ui` (``dagster dev`` + ``mlflow server``) on the instance,
data root and MLflow store of a small prior run, browsed in a real headless Chromium.

The prior run materializes one session of ``raw/daily_bars`` on the simulated market and two
walk-forward model months (on fabricated feature/label events) through ``backtest/report``. The
servers run on free loopback ports from an empty working directory, so no ``.env`` can point them
at the project's instance. Screenshots of every page go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import re
import shutil
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from smallcaps_assets.defs.models import MLflowResource
from smallcaps_assets_tests.browser.ui_servers import (
    BIN,
    Server,
    code_location_loaded,
    dagster_graphql,
    free_port,
    http_ok,
    running_server,
    wait_until,
)
from smallcaps_assets_tests.model_fixtures import write_events, write_flat_minute_bars

PROJECT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

LOCATION = "smallcaps_assets"
# The layers of the pipeline; the test checks every group the definitions declare, and that
# these are among them (so the check cannot pass on an empty graph).
PIPELINE_LAYERS = {
    "raw",
    "processed",
    "features",
    "labels",
    "ml",
    "backtest",
    "research",
    "catalog",
}
SESSION = "2024-03-01"
MODEL_MONTHS = ("2024-07-01", "2024-08-01")
EXPERIMENT = MLflowResource().experiment

# Both servers start in about a minute on two busy cores (dagster dev serves only after its code
# server has imported the definitions; mlflow server starts uvicorn and its job consumers, each
# importing mlflow). The limits are generous: a healthy start never waits for them.
STARTUP_TIMEOUT = 240.0
PAGE_LOAD_TIMEOUT = 120.0
PAGE_TIMEOUT = 60.0  # for each element a check waits for


@dataclass(frozen=True)
class PriorRun:
    home: Path
    mlruns: Path
    groups: list[str]
    raw_run_id: str
    raw_partition_path: str
    model_run_ids: dict[str, str]  # model month partition -> Dagster run that trained it
    equity_png_width: int


@dataclass(frozen=True)
class UI:
    dagster: Server
    mlflow: Server


def require_chromium() -> None:
    """Fail (not skip) when the browser is missing: a silently skipped end-to-end test reads as
    a passing one."""
    missing = [
        f"{path} (Debian package {package})"
        for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver"))
        if not os.access(path, os.X_OK)
    ]
    if missing:
        pytest.fail(
            "the browser test drives Debian's headless Chromium, but "
            + " and ".join(missing)
            + " is missing.\n"
            "  install it: make system-deps   (or, as root: bash scripts/system-deps.sh)\n"
            "  or deselect the browser test: make test PYTEST_ARGS='-m \"not browser\"'",
            pytrace=False,
        )


def build_prior_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PriorRun:
    """A small run on a persistent instance, the way `make demo` leaves one behind."""
    home, data, mlruns = tmp_path / "dagster_home", tmp_path / "data", tmp_path / "mlruns"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the runs must land in `mlruns`
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SMALLCAPS_DATA_DIR", str(data))
    monkeypatch.setenv("SMALLCAPS_MLRUNS_DIR", str(mlruns))
    monkeypatch.setenv("SMALLCAPS_SIM_TICKERS", "30")
    monkeypatch.setenv("SMALLCAPS_SIM_SEED", "5")

    import dagster as dg

    from smallcaps_assets.definitions import defs

    repo = defs.get_repository_def()
    assets = list(repo.assets_defs_by_key.values())
    groups = sorted({a.group_names_by_key[key] for key, a in repo.assets_defs_by_key.items()})
    assert set(groups) >= PIPELINE_LAYERS, groups

    def materialize(keys: list[str], partition: str | None = None) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            assets,
            instance=instance,
            selection=[dg.AssetKey.from_user_string(k) for k in keys],
            partition_key=partition,
            raise_on_error=False,
        )
        failures = [str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure]
        assert result.success, f"prior run of {keys} {partition or ''} failed: {failures}"
        return result

    with dg.DagsterInstance.get() as instance:
        raw = materialize(["raw/daily_bars"], SESSION)
        raw_md = raw.asset_materializations_for_node("raw__daily_bars")[0].metadata
        # The model months train on fabricated events (the event layers would need months of
        # simulated minute bars); the flat minute bars let backtest/trades fill them.
        write_events(data, dt.date(2024, 1, 2), dt.date(2024, 8, 30), signal=1.5)
        write_flat_minute_bars(data, dt.date(2024, 7, 1), dt.date(2024, 8, 30))
        model_run_ids = {
            month: materialize(["ml/model", "ml/predictions", "backtest/trades"], month).run_id
            for month in MODEL_MONTHS
        }
        report = materialize(["backtest/report"])
    equity = report.asset_materializations_for_node("backtest__report")[0].metadata
    return PriorRun(
        home=home,
        mlruns=mlruns,
        groups=groups,
        raw_run_id=raw.run_id,
        raw_partition_path=str(raw_md["path"].value),
        model_run_ids=model_run_ids,
        equity_png_width=png_width(str(equity["equity_curve"].value)),
    )


def png_width(markdown: str) -> int:
    """Width in pixels of the data-URI PNG in a Markdown image (from the PNG's IHDR chunk)."""
    match = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", markdown)
    assert match, f"no data-URI PNG in the metadata: {markdown[:80]!r}"
    png = base64.b64decode(match.group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "the data URI is not a PNG"
    return int(struct.unpack(">I", png[16:20])[0])


@contextlib.contextmanager
def ui_servers(prior: PriorRun, tmp_path: Path) -> Iterator[UI]:
    """`make ui` on the prior run: dagster dev (webserver + daemon) and the MLflow server."""
    # The dagster CLI loads .env from its working directory, over the environment; the
    # project's .env (written by `make install`) names the project's DAGSTER_HOME.
    cwd = tmp_path / "ui_cwd"
    cwd.mkdir()
    # workspace.yaml's `working_directory: .` means the process's cwd (python_module entries are
    # not rebased on the file's folder); here the code server runs from the project like `make ui`.
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        "  - python_module:\n"
        "      module_name: smallcaps_assets.definitions\n"
        f"      location_name: {LOCATION}\n"
        f"      working_directory: {PROJECT}\n"
    )
    dagster_port = free_port()
    mlflow_port = free_port()
    while mlflow_port == dagster_port:
        mlflow_port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with (
        running_server(
            "dagster dev",
            [
                str(BIN / "dagster"),
                "dev",
                "-w",
                str(workspace),
                "--host",
                "127.0.0.1",
                "--port",
                str(dagster_port),
            ],
            url=f"http://127.0.0.1:{dagster_port}",
            env=env,
            cwd=cwd,
            log_path=SCREENSHOTS / "dagster-dev.log",
        ) as dagster,
        running_server(
            "mlflow server",
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{prior.mlruns / 'mlflow.db'}",
                "--default-artifact-root",
                (prior.mlruns / "artifacts").as_uri(),
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                "1",
            ],
            url=f"http://127.0.0.1:{mlflow_port}",
            env=env,
            cwd=cwd,
            log_path=SCREENSHOTS / "mlflow-server.log",
        ) as mlflow,
    ):
        yield UI(dagster=dagster, mlflow=mlflow)


@contextlib.contextmanager
def headless_chromium() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def timed(phase: str) -> Iterator[None]:
    """Print how long a phase took (shown with -rA or when the test fails): the machine's load
    decides most of it, and a timeout is easier to judge next to the phases that passed."""
    started = time.monotonic()
    try:
        yield
    finally:
        print(f"browser e2e: {phase}: {time.monotonic() - started:.1f}s")


@contextlib.contextmanager
def screenshot_after(driver: WebDriver, name: str) -> Iterator[None]:
    """Save test-artifacts/browser/<name>.png after the checks of a page, passed or failed."""
    try:
        yield
    finally:
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


@contextlib.contextmanager
def page(driver: WebDriver, url: str, screenshot: str) -> Iterator[None]:
    driver.get(url)
    with screenshot_after(driver, screenshot):
        yield


def wait_for(driver: WebDriver, what: str, condition: Callable[[WebDriver], Any]) -> Any:
    """Wait until ``condition`` returns something truthy; the UIs re-render on every poll, so
    elements found a moment ago may be stale or briefly covered."""
    try:
        return WebDriverWait(
            driver,
            PAGE_TIMEOUT,
            poll_frequency=0.25,
            ignored_exceptions=(StaleElementReferenceException, ElementClickInterceptedException),
        ).until(condition)
    except TimeoutException:
        pytest.fail(
            f"{what}: not seen within {PAGE_TIMEOUT:.0f}s on {driver.current_url} "
            f"(screenshots in {SCREENSHOTS})",
            pytrace=False,
        )


def visible(by: str, selector: str) -> Callable[[WebDriver], Any]:
    def condition(driver: WebDriver) -> Any:
        elements = [e for e in driver.find_elements(by, selector) if e.is_displayed()]
        return elements[0] if elements else False

    return condition


def click_until(
    driver: WebDriver, what: str, by: str, selector: str, arrived: Callable[[WebDriver], bool]
) -> None:
    """Click the element until ``arrived`` holds: a click can land on an element the UI is
    just re-rendering and do nothing."""

    def condition(d: WebDriver) -> bool:
        if arrived(d):
            return True
        d.find_element(by, selector).click()
        return False  # looked at again on the next poll

    wait_for(driver, what, condition)


def text_is(text: str) -> str:
    """XPath: an element whose own text is exactly ``text`` (whitespace-normalized)."""
    return f"//*[normalize-space(text())='{text}']"


def group_node(group: str) -> str:
    # A group's box in the lineage graph (an SVG foreignObject) carries its name as tooltip.
    return f"svg foreignObject [data-tooltip='{group}']"


def check_mlflow_lists_the_walk_forward_runs(driver: WebDriver, ui: UI, prior: PriorRun) -> None:
    base = ui.mlflow.url
    with page(driver, f"{base}/#/experiments", "mlflow-experiments"):
        wait_for(driver, f"experiment {EXPERIMENT} in the list", visible(By.LINK_TEXT, EXPERIMENT))

    experiment = httpx.get(
        f"{base}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": EXPERIMENT},
        timeout=30,
    ).json()["experiment"]
    runs_url = (
        f"{base}/#/experiments/{experiment['experiment_id']}/runs?workflowType=machine_learning"
    )
    names = [f"walk-forward {month[:7]}" for month in MODEL_MONTHS] + ["backtest report"]
    with page(driver, runs_url, "mlflow-walk-forward-runs"):
        for name in names:
            wait_for(driver, f"run {name!r} in the runs table", visible(By.LINK_TEXT, name))
    # The newest model month's run page: its partition and the Dagster run that trained it.
    month = MODEL_MONTHS[-1]
    with screenshot_after(driver, "mlflow-run-walk-forward"):
        click_until(
            driver,
            "opening the newest model month's run",
            By.LINK_TEXT,
            f"walk-forward {month[:7]}",
            arrived=lambda d: "/runs/" in d.current_url,
        )
        for tag, value in (("partition", month), ("dagster_run_id", prior.model_run_ids[month])):
            wait_for(
                driver,
                f"run tag {tag}={value}",
                visible(
                    By.XPATH,
                    f"//*[@data-component-type='tag' and @title='{tag}']//*[@title='{value}']",
                ),
            )


def check_dagster_shows_the_prior_run(driver: WebDriver, ui: UI, prior: PriorRun) -> None:
    base = ui.dagster.url
    with page(driver, f"{base}/asset-groups", "dagster-asset-lineage"):

        def every_group_node(d: WebDriver) -> Any:
            nodes = {g: d.find_elements(By.CSS_SELECTOR, group_node(g)) for g in prior.groups}
            shown = all(found and found[0].is_displayed() for found in nodes.values())
            return {g: found[0].rect["x"] for g, found in nodes.items()} if shown else False

        x = wait_for(driver, f"asset groups {prior.groups} in the lineage graph", every_group_node)
        # The graph is laid out left to right along the dependencies: each layer right of
        # what it reads.
        assert x["raw"] < x["processed"] < min(x["features"], x["labels"]), x
        assert max(x["features"], x["labels"]) < x["ml"] < x["backtest"], x

    partition_url = f"{base}/assets/raw/daily_bars?view=partitions&partition={SESSION}"
    with page(driver, partition_url, "dagster-raw-daily-bars-partition"):
        # The selected partition's latest materialization: the prior run, and its file.
        wait_for(
            driver,
            f"the prior run {prior.raw_run_id} as the {SESSION} materialization",
            visible(By.CSS_SELECTOR, f"a[href*='/runs/{prior.raw_run_id}']"),
        )
        wait_for(
            driver,
            f"the partition file {prior.raw_partition_path}",
            visible(By.XPATH, text_is(prior.raw_partition_path)),
        )

    with page(driver, f"{base}/assets/backtest/report", "dagster-backtest-report-equity"):
        click_until(
            driver,
            "opening the equity_curve metadata's [Show Markdown] dialog",
            By.XPATH,
            "//tr[.//*[normalize-space(text())='equity_curve']]"
            "//a[normalize-space(text())='[Show Markdown]']",
            arrived=lambda d: bool(d.find_elements(By.CSS_SELECTOR, "[role='dialog']")),
        )

        def decoded_png_width(d: WebDriver) -> Any:
            image = d.find_element(By.CSS_SELECTOR, "[role='dialog'] img[src^='data:image/png']")
            return d.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth", image
            )

        # The report's Markdown metadata is a data-URI PNG: the browser decoded it to the
        # width it was rendered with.
        width = wait_for(driver, "the equity curve PNG decoded in the dialog", decoded_png_width)
        assert width == prior.equity_png_width, (
            f"the dialog's image is {width}px wide, the report's PNG {prior.equity_png_width}px"
        )


@pytest.mark.browser
def test_a_prior_run_is_browsable_in_the_dagster_and_mlflow_uis(tmp_path, monkeypatch):
    require_chromium()
    for stale in SCREENSHOTS.glob("*.png"):
        stale.unlink()
    with timed("prior run"):
        prior = build_prior_run(tmp_path, monkeypatch)
    with ui_servers(prior, tmp_path) as ui, headless_chromium() as driver:
        # MLflow serves long before dagster dev (which first imports the definitions in its
        # code server): its pages are checked meanwhile.
        with timed("MLflow server up"):
            wait_until(
                ui.mlflow,
                "healthy",
                http_ok(f"{ui.mlflow.url}/health", "OK"),
                timeout=STARTUP_TIMEOUT,
            )
        with timed("MLflow pages"):
            check_mlflow_lists_the_walk_forward_runs(driver, ui, prior)

        with timed("Dagster code location loaded"):
            wait_until(
                ui.dagster,
                f"serving code location {LOCATION}",
                code_location_loaded(ui.dagster.url, LOCATION),
                timeout=STARTUP_TIMEOUT,
            )
        with httpx.Client(timeout=30) as client:
            info = dagster_graphql(client, ui.dagster.url, "{ instance { info } }")
            # The UI must read the prior run's instance, not one a .env or a default picked.
            assert f"base_dir: {prior.home}\n" in info["instance"]["info"], info
            # What "Skip" on the first-visit community dialog does: it would cover the pages.
            dagster_graphql(client, ui.dagster.url, "mutation { setNuxSeen }")
        with timed("Dagster pages"):
            check_dagster_shows_the_prior_run(driver, ui, prior)
