"""Dividends and quarterly financials, consistent with the daily panel's shares and offerings.

Financials: every listed common stock files each calendar quarter, 20-60 days after the period
end (15% file late, up to 90 days); the fourth quarter comes with the annual report 45-90 days
after year end. Revenue grows at a random rate; most names burn cash (operating expenses over
gross profit). Cash falls by the burn and rises by offering proceeds (new shares times the
offering day's open, less 8%), with emergency debt when it would run out. Average shares are
the unadjusted shares outstanding averaged over the quarter, so dilution shows up in the next
filing.

Dividends: the few payers (some banks, most ETFs) go ex quarterly, with the cash amount fixed
for a year from the price at the time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import numpy as np
import polars as pl

from smallcaps_assets.sources.simulator.calendar import Sessions
from smallcaps_assets.sources.simulator.daily import TICKS_PER_DOLLAR, DailyPanel
from smallcaps_assets.sources.simulator.rng import Purpose, Streams
from smallcaps_assets.sources.simulator.universe import Kind, Universe


@dataclass(frozen=True)
class Concept:
    statement: str
    key: str
    label: str
    unit: str
    order: int


CONCEPTS: Final = (
    Concept("balance_sheet", "assets", "Assets", "USD", 100),
    Concept("balance_sheet", "current_assets", "Current Assets", "USD", 200),
    Concept("balance_sheet", "noncurrent_assets", "Noncurrent Assets", "USD", 300),
    Concept("balance_sheet", "liabilities", "Liabilities", "USD", 600),
    Concept("balance_sheet", "current_liabilities", "Current Liabilities", "USD", 700),
    Concept("balance_sheet", "noncurrent_liabilities", "Noncurrent Liabilities", "USD", 800),
    Concept("balance_sheet", "equity", "Equity", "USD", 1400),
    Concept("balance_sheet", "liabilities_and_equity", "Liabilities And Equity", "USD", 1900),
    Concept(
        "cash_flow_statement",
        "net_cash_flow_from_operating_activities",
        "Net Cash Flow From Operating Activities",
        "USD",
        100,
    ),
    Concept(
        "cash_flow_statement",
        "net_cash_flow_from_investing_activities",
        "Net Cash Flow From Investing Activities",
        "USD",
        400,
    ),
    Concept(
        "cash_flow_statement",
        "net_cash_flow_from_financing_activities",
        "Net Cash Flow From Financing Activities",
        "USD",
        700,
    ),
    Concept("cash_flow_statement", "net_cash_flow", "Net Cash Flow", "USD", 1100),
    Concept(
        "comprehensive_income", "comprehensive_income_loss", "Comprehensive Income/Loss", "USD", 100
    ),
    Concept(
        "comprehensive_income",
        "comprehensive_income_loss_attributable_to_parent",
        "Comprehensive Income/Loss Attributable To Parent",
        "USD",
        300,
    ),
    Concept("income_statement", "revenues", "Revenues", "USD", 100),
    Concept("income_statement", "cost_of_revenue", "Cost Of Revenue", "USD", 300),
    Concept("income_statement", "gross_profit", "Gross Profit", "USD", 800),
    Concept("income_statement", "operating_expenses", "Operating Expenses", "USD", 1000),
    Concept("income_statement", "operating_income_loss", "Operating Income/Loss", "USD", 1100),
    Concept("income_statement", "net_income_loss", "Net Income/Loss", "USD", 3200),
    Concept(
        "income_statement",
        "net_income_loss_attributable_to_parent",
        "Net Income/Loss Attributable To Parent",
        "USD",
        3500,
    ),
    Concept(
        "income_statement",
        "basic_earnings_per_share",
        "Basic Earnings Per Share",
        "USD / shares",
        4200,
    ),
    Concept(
        "income_statement",
        "diluted_earnings_per_share",
        "Diluted Earnings Per Share",
        "USD / shares",
        4300,
    ),
    Concept("income_statement", "basic_average_shares", "Basic Average Shares", "shares", 4400),
    Concept("income_statement", "diluted_average_shares", "Diluted Average Shares", "shares", 4500),
)
STATEMENTS: Final = (
    "balance_sheet",
    "cash_flow_statement",
    "comprehensive_income",
    "income_statement",
)


def hex_id(*parts: object) -> str:
    """A stable 64-hex identifier for an entity of the simulated market."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _quarter_ends(first: date, last: date) -> list[date]:
    return [
        end
        for year in range(first.year, last.year + 1)
        for end in (date(year, 3, 31), date(year, 6, 30), date(year, 9, 30), date(year, 12, 31))
        if first <= end <= last
    ]


def build_financials(
    seed: int, sessions: Sessions, universe: Universe, panel: DailyPanel
) -> pl.DataFrame:
    """One row per filing (quarterly and annual), in the order they were filed."""
    history_start, history_end = sessions.days[0], sessions.days[-1]
    ends = _quarter_ends(history_start - timedelta(days=120), history_end)
    streams = Streams(seed, Purpose.FINANCIALS)
    parts = [
        _company_filings(streams, tid, ends, sessions, universe, panel)
        for tid in range(universe.count)
        if universe.kind[tid] == Kind.CS
    ]
    parts = [p for p in parts if len(p["tid"])]
    if not parts:
        return _empty_financials()
    columns = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    frame = pl.DataFrame(columns).with_columns(
        pl.col("start_date", "end_date", "filing_date").cast(pl.Date),
        pl.col("end_date").cast(pl.Date).dt.year().cast(pl.String).alias("fiscal_year"),
    )
    usd = [c.key for c in CONCEPTS if c.unit == "USD"]
    cik = pl.col("tid").map_elements(lambda i: universe.cik[i] or "0", return_dtype=pl.String)
    return (
        frame.with_columns((pl.col(usd) / 1000).round(0) * 1000)
        .with_columns(
            pl.col("basic_average_shares", "diluted_average_shares").round(0),
            (pl.col("net_income_loss") / pl.col("basic_average_shares"))
            .round(2)
            .alias("basic_earnings_per_share"),
            (pl.col("net_income_loss") / pl.col("diluted_average_shares"))
            .round(2)
            .alias("diluted_earnings_per_share"),
            pl.format(
                "{}-{}-{}",
                cik,
                (pl.col("filing_date").dt.year() % 100).cast(pl.String).str.zfill(2),
                # One accession per period: the 10-K carries both the Q4 and the FY figures.
                (pl.col("end_date").dt.year() * 10 + pl.col("end_date").dt.quarter())
                .cast(pl.String)
                .str.zfill(6),
            ).alias("accession"),
        )
        .select(_empty_financials().columns)
        .sort(["filing_date", "tid", "timeframe", "end_date"])
    )


def _empty_financials() -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {
        "tid": pl.Int64(),
        "start_date": pl.Date(),
        "end_date": pl.Date(),
        "filing_date": pl.Date(),
        "acceptance_ms": pl.Int64(),
        "fiscal_period": pl.String(),
        "fiscal_year": pl.String(),
        "timeframe": pl.String(),
        "accession": pl.String(),
    }
    schema.update({c.key: pl.Float64() for c in CONCEPTS})
    return pl.DataFrame(schema=schema)


def _company_filings(
    streams: Streams,
    tid: int,
    ends: list[date],
    sessions: Sessions,
    universe: Universe,
    panel: DailyPanel,
) -> dict[str, np.ndarray]:
    """One company's filings as columns (quarterly rows, then annual ones)."""
    rng = streams.at(tid)
    q = len(ends)
    traits = rng.random(8)
    shocks = rng.standard_normal((4, q))
    lags = rng.random((2, q))
    minutes = rng.random(q)

    pre_revenue = universe.sector[tid] == "bio" and traits[0] < 0.45
    revenue0 = (0.2e6 if pre_revenue else 5e6 * np.exp(1.0 * shocks[0, 0])) * (0.5 + traits[1])
    revenue = revenue0 * np.exp(np.cumsum(0.01 + 0.08 * shocks[0]))
    margin = 0.2 + 0.4 * traits[2]
    fixed_costs = 1e6 + 7e6 * traits[3]
    opex = (fixed_costs + 0.35 * revenue) * np.exp(0.1 * shocks[1])
    gross = revenue * margin
    operating = gross - opex
    net = operating - 0.02 * opex
    operating_cash = net + 0.05 * opex + 0.05 * opex * shocks[2]
    investing = -(0.03 * revenue + 0.02 * fixed_costs)

    # Quarter boundaries in session indices; shares and offerings per quarter.
    end_ordinals = np.array([d.toordinal() for d in ends])
    bounds = np.searchsorted(sessions.ordinals, end_ordinals, side="right")
    starts = np.concatenate([[0], bounds[:-1]])
    all_t = np.arange(sessions.count)
    shares = panel.shares_outstanding(tid, all_t).astype(np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(shares)])
    span = np.maximum(bounds - starts, 1)
    average_shares = np.where(
        bounds > starts, (cumulative[bounds] - cumulative[starts]) / span, shares[0]
    )
    offered = panel.offerings.tid == tid
    proceeds = np.zeros(q)
    for t, dilution in zip(panel.offerings.t[offered], panel.offerings.value[offered], strict=True):
        new_shares = float(panel.shares_outstanding(tid, int(t))) * dilution / (1.0 + dilution)
        price = panel.open[tid, t] / TICKS_PER_DOLLAR
        proceeds[min(int(np.searchsorted(bounds, t, side="right")), q - 1)] += (
            0.92 * new_shares * price
        )

    cash = np.empty(q)
    debt_raised = np.zeros(q)
    level = (6 + 10 * traits[4]) * max(-float(np.mean(operating_cash[:4])), 1e6)
    for k in range(q):
        level += operating_cash[k] + investing[k] + proceeds[k]
        if level < 0.5e6:
            debt_raised[k] = 0.5e6 - level
            level = 0.5e6
        cash[k] = level
    financing = proceeds + debt_raised
    receivables = 0.35 * revenue
    noncurrent_assets = (2e6 + 18e6 * traits[5]) * np.ones(q)
    current_assets = cash + receivables
    assets = current_assets + noncurrent_assets
    current_liabilities = 0.25 * opex + 0.2 * revenue
    noncurrent_liabilities = 10e6 * traits[6] + np.cumsum(debt_raised)
    liabilities = current_liabilities + noncurrent_liabilities
    equity = assets - liabilities
    diluted_shares = np.where(net > 0, average_shares * 1.03, average_shares)

    quarterly = {
        "revenues": revenue,
        "cost_of_revenue": revenue - gross,
        "gross_profit": gross,
        "operating_expenses": opex,
        "operating_income_loss": operating,
        "net_income_loss": net,
        "net_income_loss_attributable_to_parent": net,
        "basic_average_shares": average_shares,
        "diluted_average_shares": diluted_shares,
        "net_cash_flow_from_operating_activities": operating_cash,
        "net_cash_flow_from_investing_activities": investing,
        "net_cash_flow_from_financing_activities": financing,
        "net_cash_flow": operating_cash + investing + financing,
        "comprehensive_income_loss": net,
        "comprehensive_income_loss_attributable_to_parent": net,
    }
    stocks = {
        "assets": assets,
        "current_assets": current_assets,
        "noncurrent_assets": noncurrent_assets,
        "liabilities": liabilities,
        "current_liabilities": current_liabilities,
        "noncurrent_liabilities": noncurrent_liabilities,
        "equity": equity,
        "liabilities_and_equity": assets,
    }

    # Which filings exist: listed at period end, filed before any delisting and inside history.
    end_day = np.array(ends, dtype="datetime64[D]")
    end_ordinal = np.array([d.toordinal() for d in ends])
    fourth = np.array([d.month == 12 for d in ends])
    late = lags[1] < 0.15
    lag = np.where(
        fourth,
        45 + (40 * lags[0]).astype(int),
        np.where(late, 46 + (40 * lags[0]).astype(int), 20 + (40 * lags[0]).astype(int)),
    )
    filed_t = np.searchsorted(sessions.ordinals, end_ordinal + lag, side="left")
    delist_t = int(panel.delist_idx[tid])
    last_day = sessions.days[delist_t - 1] if delist_t > 0 else sessions.days[0]
    keep = (
        (end_ordinal >= universe.list_date[tid].toordinal())
        & (end_ordinal < last_day.toordinal())
        & (filed_t < min(sessions.count, delist_t))
        & (end_ordinal + lag >= sessions.ordinals[0])  # filed before the history: not served
    )
    quarter_rows = np.flatnonzero(keep)
    annual_rows = quarter_rows[fourth[quarter_rows] & (quarter_rows >= 3)]
    safe_t = np.minimum(filed_t, sessions.count - 1)
    accepted = sessions.midnight_ms[safe_t] + (16 * 60 + 5 + (85 * minutes).astype(int)) * 60_000
    filed_day = sessions.dates[safe_t]
    quarter_start = end_day.astype("datetime64[M]") - np.timedelta64(2, "M")
    year_start = end_day.astype("datetime64[Y]")

    def trailing_four(values: np.ndarray) -> np.ndarray:
        total = np.concatenate([[0.0], np.cumsum(values)])
        return total[4:] - total[:-4]

    annual_flows = {key: trailing_four(v) for key, v in quarterly.items()}
    annual_flows["basic_average_shares"] = trailing_four(average_shares) / 4
    annual_flows["diluted_average_shares"] = trailing_four(diluted_shares) / 4
    q_rows, a_rows = quarter_rows, annual_rows
    columns: dict[str, np.ndarray] = {
        "tid": np.full(len(q_rows) + len(a_rows), tid, dtype=np.int64),
        "start_date": np.concatenate(
            [
                quarter_start[q_rows].astype("datetime64[D]"),
                year_start[a_rows].astype("datetime64[D]"),
            ]
        ),
        "end_date": np.concatenate([end_day[q_rows], end_day[a_rows]]),
        "filing_date": np.concatenate([filed_day[q_rows], filed_day[a_rows]]),
        "acceptance_ms": np.concatenate([accepted[q_rows], accepted[a_rows]]),
        "fiscal_period": np.concatenate(
            [
                np.array([f"Q{(d.month - 1) // 3 + 1}" for d in ends], dtype=object)[q_rows],
                np.full(len(a_rows), "FY", dtype=object),
            ]
        ),
        "timeframe": np.concatenate(
            [
                np.full(len(q_rows), "quarterly", dtype=object),
                np.full(len(a_rows), "annual", dtype=object),
            ]
        ),
    }
    for key, values in (quarterly | stocks).items():
        annual = annual_flows[key][a_rows - 3] if key in annual_flows else values[a_rows]
        columns[key] = np.concatenate([values[q_rows], annual])
    return columns


def build_dividends(
    seed: int, sessions: Sessions, universe: Universe, panel: DailyPanel
) -> pl.DataFrame:
    """One row per dividend, sorted by ex-dividend date then ticker."""
    streams = Streams(seed, Purpose.CORPORATE)
    rows: list[dict[str, object]] = []
    first_year, last_year = sessions.days[0].year, sessions.days[-1].year
    for tid in np.flatnonzero(universe.dividend_payer):
        rng = streams.at(int(tid))
        offset_days = int(rng.integers(0, 15))
        yield_rate = 0.02 + 0.03 * float(rng.random())
        amount = 0.0
        for year in range(first_year, last_year + 1):
            for month in (2, 5, 8, 11):
                t = sessions.first_on_or_after(date(year, month, 10 + offset_days))
                if t >= sessions.count or not universe.list_idx[tid] < t < panel.delist_idx[tid]:
                    continue
                if month == 2 or amount == 0.0:
                    price = panel.close[tid, t - 1] / TICKS_PER_DOLLAR
                    amount = max(round(price * yield_rate / 4, 2), 0.01)
                ex = sessions.days[t]
                record = sessions.days[min(t + 1, sessions.count - 1)]
                declared = ex - timedelta(days=int(rng.integers(10, 26)))
                while declared.weekday() >= 5:
                    declared -= timedelta(days=1)
                rows.append(
                    {
                        "tid": int(tid),
                        "cash_amount": amount,
                        "declaration_date": declared,
                        "ex_dividend_date": ex,
                        "record_date": record,
                        "pay_date": ex + timedelta(days=int(rng.integers(14, 26))),
                    }
                )
    schema = {
        "tid": pl.Int64(),
        "cash_amount": pl.Float64(),
        "declaration_date": pl.Date(),
        "ex_dividend_date": pl.Date(),
        "record_date": pl.Date(),
        "pay_date": pl.Date(),
    }
    return pl.DataFrame(rows, schema=schema).sort(["ex_dividend_date", "tid"])


__all__ = ["CONCEPTS", "STATEMENTS", "build_dividends", "build_financials", "hex_id"]
