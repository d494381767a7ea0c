"""Raw layer: what the market-data source said about each session, stored as it came (typed).

Every raw asset is partitioned by NYSE session, writes one immutable parquet file per partition,
runs a ranged backfill as a single run, and takes a slot of the ``polygon_api`` pool so that
concurrent runs do not multiply the load on the API.
"""

import asyncio
import datetime as dt
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

import dagster as dg
import pandera.polars as pa
import polars as pl

from smallcaps_assets import progress
from smallcaps_assets.core import calendar, minute
from smallcaps_assets.core.schemas import RAW_MODELS
from smallcaps_assets.core.storage import (
    DataStore,
    RejectedPartitionError,
    WriteOutcome,
    WriteReport,
    time_range,
)
from smallcaps_assets.core.universe import COMMON_STOCK, UniverseRules
from smallcaps_assets.core.validation import (
    ROW_COLLAPSE_SHARE,
    ROW_COUNT_HISTORY,
    CheckReport,
    dates_within,
    row_count_report,
)
from smallcaps_assets.defs import automation
from smallcaps_assets.defs.checks import (
    DATES_CHECK,
    ROWS_CHECK,
    CheckSet,
    PartitionPublisher,
    PublishEvent,
    previous_row_counts,
    run_partition_keys,
)
from smallcaps_assets.defs.partitions import TIMEZONE, trading_days
from smallcaps_assets.defs.resources import (
    DataStoreResource,
    MarketDataResource,
    UniverseRulesResource,
)
from smallcaps_assets.sources import parsers
from smallcaps_assets.sources.polygon import PolygonClient

LAYER = "raw"
POLYGON_POOL = "polygon_api"
# Sessions fetched at once inside one run; the client's semaphore still bounds requests.
SESSIONS_IN_FLIGHT = 4

Fetch = Callable[[PolygonClient, dt.date, DataStore], Awaitable[pl.DataFrame]]
T = TypeVar("T")


class PriceCappedFetch(Protocol):
    """A fetch that selects names by previous close (``RawDataset.price_capped``)."""

    def __call__(
        self, client: PolygonClient, day: dt.date, store: DataStore, *, price_cap: float | None
    ) -> Awaitable[pl.DataFrame]: ...


@dataclass(frozen=True)
class RawDataset:
    name: str
    description: str
    fetch: Fetch
    time_column: str
    # The calendar days a partition covers: the session itself, or (previous session, D] for
    # feeds that also publish on weekends and holidays (news, filings).
    covers_closed_days: bool = False
    deps: list[dg.AssetDep] = field(default_factory=list)
    # Overrides ``covers_closed_days``: the sessions whose rows a partition may hold.
    allowed_days: Callable[[dt.date], list[dt.date]] | None = None
    # Raw by key (what the source said, immutable) but grouped with the layer it follows.
    group: str = LAYER
    # The fetch takes ``price_cap``: the source's previous-close cap on the names it asks about.
    price_capped: bool = False
    # None: the session's raw datasets run on the after_close schedule (defs/automation.py).
    automation_condition: automation.Condition | None = None
    # Every session has rows (the whole market's bars, the listed tickers): an empty answer or a
    # collapse against the sessions before is a source fault, never a partition.
    rows_expected: bool = False

    def days_in_partition(self, session: dt.date) -> list[dt.date]:
        if self.allowed_days is not None:
            return self.allowed_days(session)
        return covered_days(session, covers_closed_days=self.covers_closed_days)

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey([LAYER, self.name])

    @property
    def model(self) -> type[pa.DataFrameModel]:
        return RAW_MODELS[self.name]


def covered_days(session: dt.date, *, covers_closed_days: bool) -> list[dt.date]:
    """Calendar days whose data belongs to ``session``'s partition."""
    if not covers_closed_days:
        return [session]
    first = calendar.previous_session(session) + dt.timedelta(days=1)
    return [first + dt.timedelta(days=i) for i in range((session - first).days + 1)]


# -- fetchers: one session's data, parsed into a typed frame -----------------------------------
async def _fetch_tickers(client: PolygonClient, day: dt.date, _: DataStore) -> pl.DataFrame:
    active, delisted = await asyncio.gather(
        client.tickers(day, active=True), client.tickers(day, active=False)
    )
    return parsers.parse_tickers([*active, *delisted], as_of=day)


async def _fetch_daily_bars(client: PolygonClient, day: dt.date, _: DataStore) -> pl.DataFrame:
    return parsers.parse_grouped_daily(await client.grouped_daily(day, adjusted=False), day)


async def _previous_closes(client: PolygonClient, day: dt.date, store: DataStore) -> pl.DataFrame:
    """Unadjusted closes of the previous session, from the store when it has them."""
    previous = calendar.previous_session(day)
    if store.exists(LAYER, "daily_bars", previous):
        bars = store.read(LAYER, "daily_bars", previous)
    else:
        bars = parsers.parse_grouped_daily(
            await client.grouped_daily(previous, adjusted=False), previous
        )
    return bars.select("ticker", pl.col("close").alias("previous_close"))


async def _fetch_ticker_details(
    client: PolygonClient,
    day: dt.date,
    store: DataStore,
    *,
    price_cap: float | None = UniverseRules.price_max,
) -> pl.DataFrame:
    """Details of D's listed common stocks with a D-1 close, up to ``price_cap`` (None: all)."""
    if store.exists(LAYER, "tickers", day):
        tickers = store.read(LAYER, "tickers", day)
    else:
        tickers = await _fetch_tickers(client, day, store)
    closes = await _previous_closes(client, day, store)
    wanted = (
        tickers.filter(
            pl.col("active") & (pl.col("type") == COMMON_STOCK) & (pl.col("market") == "stocks")
        )
        .join(closes, on="ticker", how="inner")
        .filter(pl.lit(price_cap is None) | (pl.col("previous_close") <= (price_cap or 0.0)))
        .get_column("ticker")
        .unique()
        .sort()
        .to_list()
    )
    details = await client.gather([client.ticker_details(t, day) for t in wanted])
    return parsers.parse_ticker_details([d for d in details if d is not None], as_of=day)


async def _fetch_splits(client: PolygonClient, day: dt.date, _: DataStore) -> pl.DataFrame:
    return parsers.parse_splits(await client.splits(day))


async def _fetch_dividends(client: PolygonClient, day: dt.date, _: DataStore) -> pl.DataFrame:
    return parsers.parse_dividends(await client.dividends(day))


async def _fetch_financials(client: PolygonClient, day: dt.date, _: DataStore) -> pl.DataFrame:
    days = covered_days(day, covers_closed_days=True)
    pages = await client.gather([client.financials(d) for d in days])
    return parsers.parse_financials([row for page in pages for row in page])


async def _fetch_news(client: PolygonClient, day: dt.date, _: DataStore) -> pl.DataFrame:
    days = covered_days(day, covers_closed_days=True)
    pages = await client.gather([client.news(d) for d in days])
    rows = {
        row["id"]: row for page in pages for row in page if isinstance(row, dict) and "id" in row
    }
    # Keep rows without an id too, so the parser can name the missing field instead of dropping it.
    orphans = [row for page in pages for row in page if not (isinstance(row, dict) and "id" in row)]
    return parsers.parse_news([*rows.values(), *orphans])


MINUTE_REQUESTS = "minute_requests"
MINUTE_REQUESTS_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "ticker": pl.String(),
        "status": pl.String(),
        "bars_on_session": pl.Int64(),
        "history_sessions": pl.Int64(),
    }
)


async def _fetch_minute_bars(client: PolygonClient, day: dt.date, store: DataStore) -> pl.DataFrame:
    """Minute bars of the session's candidates: one request per candidate from the first session
    of its premarket baseline through D. Writes the request log (``minute_requests``) so every
    candidate without bars has a recorded reason."""
    universe = store.read("processed", "universe", day)
    candidates = universe.filter(pl.col("is_candidate")).get_column("ticker").sort().to_list()
    history = minute.minute_history_sessions(day)
    first = history[0] if history else day
    answers = await client.gather(
        [client.aggregates(ticker, 1, "minute", first, day) for ticker in candidates]
    )
    frames: list[pl.DataFrame] = []
    log: list[dict[str, Any]] = []
    for ticker, rows in zip(candidates, answers, strict=True):
        if rows is None:
            log.append({"ticker": ticker, "status": "not_found", "bars_on_session": 0})
            continue
        kept = minute.raw_minute_partition(parsers.parse_aggregates(rows, ticker), day)
        on_session = minute.bars_of_session(kept, day).height
        sessions_seen = kept.select(
            pl.col("window_start").dt.convert_time_zone(TIMEZONE).dt.date().n_unique()
        ).item()
        log.append(
            {
                "ticker": ticker,
                "status": "ok" if on_session else "no_bars",
                "bars_on_session": on_session,
                "history_sessions": int(sessions_seen) - (1 if on_session else 0),
            }
        )
        frames.append(kept)
    requests = pl.DataFrame(
        [{"date": day, "history_sessions": 0, **row} for row in log],
        schema=MINUTE_REQUESTS_SCHEMA,
    )
    store.write_immutable(
        LAYER, MINUTE_REQUESTS, day, requests, ingested_at=dt.datetime.now(dt.UTC)
    )
    if not frames:
        return pl.DataFrame(schema=parsers.RAW_SCHEMAS["minute_bars"])
    return pl.concat(frames, how="vertical").sort("ticker", "window_start")


def _minute_partition_days(session: dt.date) -> list[dt.date]:
    return [*minute.minute_history_sessions(session), session]


_previous_session_bars = dg.AssetDep(
    dg.AssetKey([LAYER, "daily_bars"]),
    partition_mapping=dg.TimeWindowPartitionMapping(
        start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
    ),
)

RAW_DATASETS: list[RawDataset] = [
    RawDataset(
        "tickers",
        "Every ticker listed on the session, active and delisted as of that date (survivorship-free).",
        _fetch_tickers,
        time_column="as_of",
        rows_expected=True,
    ),
    RawDataset(
        "daily_bars",
        "Grouped daily bars for all US stocks on the session, unadjusted (regular-session OHLC, "
        "volume including extended hours).",
        _fetch_daily_bars,
        time_column="window_start",
        rows_expected=True,
    ),
    RawDataset(
        "ticker_details",
        "As-of-session details (market cap, shares outstanding, type, exchange, SIC) for the "
        "session's common stocks whose previous close is under the universe price cap.",
        _fetch_ticker_details,
        time_column="as_of",
        deps=[dg.AssetDep(dg.AssetKey([LAYER, "tickers"])), _previous_session_bars],
        price_capped=True,
    ),
    RawDataset(
        "splits", "Splits executing on the session.", _fetch_splits, time_column="execution_date"
    ),
    RawDataset(
        "dividends",
        "Dividends going ex on the session.",
        _fetch_dividends,
        time_column="ex_dividend_date",
    ),
    RawDataset(
        "financials",
        "Quarterly filings filed after the previous session, up to and including this one.",
        _fetch_financials,
        time_column="filing_date",
        covers_closed_days=True,
    ),
    RawDataset(
        "news",
        "Articles published after the previous session up to the end of this one (ET), with insights.",
        _fetch_news,
        time_column="published_utc",
        covers_closed_days=True,
    ),
]

MINUTE_BARS = RawDataset(
    "minute_bars",
    "04:00-20:00 ET one-minute bars (unadjusted) of the session's gap candidates, on the session "
    f"and the {minute.PREMARKET_LOOKBACK} sessions before it (the premarket and time-of-day RVOL "
    "baselines). Each request's outcome is logged in raw.minute_requests.",
    _fetch_minute_bars,
    time_column="window_start",
    deps=[dg.AssetDep(dg.AssetKey(["processed", "universe"]))],
    allowed_days=_minute_partition_days,
    # It follows the processed universe, so `group:raw` stays runnable on its own.
    group="processed",
    automation_condition=automation.after_upstream_checks(),
)


async def _bounded(
    days: Iterable[dt.date], work: Callable[[dt.date], Awaitable[T]], limit: int
) -> AsyncIterator[tuple[dt.date, T]]:
    """Yield (day, result) as sessions finish, with at most ``limit`` sessions in flight."""
    pending: set[asyncio.Task[tuple[dt.date, T]]] = set()
    queue = list(days)

    async def run(day: dt.date) -> tuple[dt.date, T]:
        return day, await work(day)

    try:
        while queue or pending:
            while queue and len(pending) < limit:
                pending.add(asyncio.create_task(run(queue.pop(0))))
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                yield task.result()
    finally:
        for task in pending:
            task.cancel()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


RAW_CHECKS = {DATES_CHECK: "Every row is stamped inside the partition it is stored in."}
ROWS_CHECKS = {
    ROWS_CHECK: "The session has data (an empty answer on a trading session is refused) and no "
    f"fewer than {ROW_COLLAPSE_SHARE:.0%} of the median rows of the {ROW_COUNT_HISTORY} stored "
    "sessions before it. Sources that answer for the whole market only (not a user's local "
    "files, which hold the names they hold).",
}


def raw_checks(dataset: RawDataset) -> CheckSet:
    return CheckSet(
        dataset.key,
        dataset.model,
        {**RAW_CHECKS, **(ROWS_CHECKS if dataset.rows_expected else {})},
    )


def audit_raw(
    dataset: RawDataset,
    checks: CheckSet,
    store: DataStore,
    day: dt.date,
    frame: pl.DataFrame,
    *,
    whole_market: bool = True,
) -> dict[str, CheckReport]:
    """Every check of a raw frame, run before it may become the partition. ``whole_market``:
    the source answers for the whole market (the vendor, the simulator), so a session without
    rows is a fault; a user's local files hold only the names they hold, and a ticker set with
    no regular-session bar on a day is real data (docs/local-files.md)."""
    key = day.isoformat()
    tz = TIMEZONE if dataset.time_column == "published_utc" or dataset.allowed_days else None
    meaning = {
        DATES_CHECK: dates_within(
            frame, dataset.time_column, dataset.days_in_partition(day), partition=key, tz=tz
        ),
    }
    if dataset.rows_expected and whole_market:
        history = previous_row_counts(store, LAYER, dataset.name, day, ROW_COUNT_HISTORY)
        meaning[ROWS_CHECK] = row_count_report(frame.height, history, partition=key)
    elif dataset.rows_expected:
        meaning[ROWS_CHECK] = CheckReport(rows_checked=frame.height)
    return checks.audit(key, frame, meaning)


def materialize_raw(
    context: dg.AssetExecutionContext,
    dataset: RawDataset,
    market: MarketDataResource,
    data: DataStoreResource,
    universe_rules: UniverseRulesResource,
) -> Iterator[PublishEvent]:
    store = data.store()
    days = [dt.date.fromisoformat(key) for key in run_partition_keys(context)]
    ingested_at = utc_now()
    still_open = [d.isoformat() for d in days if not minute.session_closed(d, ingested_at)]
    if still_open:
        # The partition of the session in progress exists (the schedule requests it at 16:45);
        # before the close the source would give a partial day (or, simulated, a future one).
        raise ValueError(
            f"{dataset.key.to_user_string()}: session(s) {', '.join(still_open)} have not closed "
            "yet; materialize them after the close (the after_close schedule runs at 16:45 ET)"
        )
    checks = raw_checks(dataset)
    whole_market = market.source() != "local"
    publisher = PartitionPublisher(context, checks, store, LAYER, dataset.name)
    outcomes: dict[str, int] = {}
    total_rows = 0
    # Local files are validated here, so a bad one fails the run before any partition is written.
    market.check_sessions(store, days)
    fetch: Fetch = dataset.fetch
    if dataset.price_capped:
        capped = cast(PriceCappedFetch, dataset.fetch)
        price_cap = market.details_price_cap(universe_rules.price_max)
        fetch = functools.partial(capped, price_cap=price_cap)

    async def fetch_all() -> dict[str, int]:
        nonlocal total_rows
        async with market.client(store) as client:

            async def fetch_one(day: dt.date) -> pl.DataFrame | RejectedPartitionError:
                # An input this session reads (raw tickers, say) was rejected: skip, don't fail all.
                try:
                    return await fetch(client, day, store)
                except RejectedPartitionError as exc:
                    return exc

            async for day, frame in _bounded(days, fetch_one, SESSIONS_IN_FLIGHT):
                key = day.isoformat()
                if isinstance(frame, RejectedPartitionError):
                    publisher.blocked(key, frame)
                    continue
                report = publisher.submit(
                    key,
                    frame,
                    audit_raw(dataset, checks, store, day, frame, whole_market=whole_market),
                    functools.partial(
                        store.write_immutable,
                        LAYER,
                        dataset.name,
                        day,
                        frame,
                        ingested_at=ingested_at,
                    ),
                    functools.partial(_partition_metadata, context, dataset, key, frame),
                )
                if report is not None:
                    outcomes[report.outcome.value] = outcomes.get(report.outcome.value, 0) + 1
                    total_rows += frame.height
                progress.partition_done(dataset.key.to_user_string(), key)
            stats = client.stats
            return {
                "requests": stats.requests,
                "retries": stats.retries,
                "not_found": len(stats.not_found),
            }

    request_stats = asyncio.run(fetch_all())
    context.log.info(
        f"{dataset.key.to_user_string()}: {len(days)} session(s), {total_rows} rows, writes {outcomes}, "
        f"requests {request_stats}"
    )
    yield from publisher.outcome(
        {
            "partitions_in_run": len(days),
            "rows_in_run": total_rows,
            "writes": dg.MetadataValue.json(outcomes),
            "source": market.source_label(store),
            "requests": request_stats["requests"],
            "retries": request_stats["retries"],
            "skipped_not_found": request_stats["not_found"],
        }
    )


def _partition_metadata(
    context: dg.AssetExecutionContext,
    dataset: RawDataset,
    key: str,
    frame: pl.DataFrame,
    report: WriteReport,
) -> dict[str, Any]:
    span = time_range(frame, dataset.time_column)
    metadata: dict[str, Any] = {
        "dagster/row_count": frame.height,
        "first": span["first"] or "",
        "last": span["last"] or "",
        "path": dg.MetadataValue.path(report.path),
        "sha256": report.sha256,
        "write": report.outcome.value,
    }
    if report.outcome is WriteOutcome.VERSIONED:
        metadata["previous_version"] = dg.MetadataValue.path(report.previous_version or "")
        context.log.warning(
            f"{dataset.key.to_user_string()} {key}: the source now differs from the stored "
            f"download; the earlier file is kept at {report.previous_version}"
        )
    return metadata


def build_raw_asset(dataset: RawDataset) -> dg.AssetsDefinition:
    @dg.asset(
        key=dataset.key,
        group_name=dataset.group,
        automation_condition=dataset.automation_condition,
        description=dataset.description,
        partitions_def=trading_days,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POLYGON_POOL,
        deps=dataset.deps,
        check_specs=raw_checks(dataset).specs(),
        kinds={"polygon", "parquet"},
    )
    def _raw_asset(
        context: dg.AssetExecutionContext,
        market: MarketDataResource,
        data: DataStoreResource,
        universe_rules: UniverseRulesResource,
    ) -> Iterator[PublishEvent]:
        yield from materialize_raw(context, dataset, market, data, universe_rules)

    return _raw_asset


raw_assets = [build_raw_asset(dataset) for dataset in RAW_DATASETS]
raw_minute_bars_asset = build_raw_asset(MINUTE_BARS)
