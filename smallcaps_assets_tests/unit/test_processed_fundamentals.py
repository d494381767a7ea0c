"""Latest fundamentals: only filings dated before the session are visible; dilution, runway and
growth are computed against the right earlier filings."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest

from smallcaps_assets.core.fundamentals import FUNDAMENTALS_SCHEMA, latest_fundamentals
from smallcaps_assets.core.processed_schemas import ProcessedFundamentals, check_point_in_time
from smallcaps_assets.sources import parsers

DAY = date(2024, 5, 14)


def filing(
    ticker: str,
    end: str,
    filed: str,
    period: str,
    year: int,
    *,
    revenue: float | None = 100.0,
    cash_flow: float | None = -30.0,
    current_assets: float | None = 150.0,
    current_liabilities: float | None = 60.0,
    diluted: float | None = 1_000_000.0,
    basic: float | None = None,
    start: str | None = None,
    timeframe: str = "quarterly",
) -> dict[str, Any]:
    """A /vX/reference/financials result row."""

    def concept(value: float | None) -> dict[str, float] | None:
        return None if value is None else {"value": value}

    statements = {
        "income_statement": {
            "revenues": concept(revenue),
            "diluted_average_shares": concept(diluted),
            "basic_average_shares": concept(basic),
        },
        "cash_flow_statement": {"net_cash_flow_from_operating_activities": concept(cash_flow)},
        "balance_sheet": {
            "current_assets": concept(current_assets),
            "current_liabilities": concept(current_liabilities),
        },
    }
    return {
        "cik": "0001234567",
        "tickers": [ticker],
        "end_date": end,
        "filing_date": filed,
        "start_date": start,
        "fiscal_period": period,
        "fiscal_year": str(year),
        "timeframe": timeframe,
        "financials": {
            name: {k: v for k, v in items.items() if v is not None}
            for name, items in statements.items()
        },
    }


def parse(*rows: dict[str, Any]) -> pl.DataFrame:
    return parsers.parse_financials(list(rows))


HISTORY = parse(
    filing("AAA", "2023-03-31", "2023-05-10", "Q1", 2023, revenue=100.0),
    filing("AAA", "2023-12-31", "2024-02-20", "Q4", 2023, revenue=110.0),
    filing("AAA", "2024-03-31", "2024-05-13", "Q1", 2024, revenue=121.0, diluted=1_500_000.0),
)


def only_row(frame: pl.DataFrame) -> dict[str, Any]:
    assert frame.height == 1
    return frame.row(0, named=True)


def test_a_filing_dated_on_the_session_is_invisible() -> None:
    on_day = parse(filing("AAA", "2024-03-31", "2024-05-14", "Q1", 2024))
    frame = latest_fundamentals(pl.concat([HISTORY.head(2), on_day]), DAY)
    assert only_row(frame)["end_date"] == date(2023, 12, 31)
    visible_next_day = latest_fundamentals(on_day, DAY + timedelta(days=1))
    assert only_row(visible_next_day)["filing_date"] == date(2024, 5, 14)


def test_filings_dated_on_or_after_the_session_change_nothing() -> None:
    later = parse(
        filing("AAA", "2024-06-30", "2024-05-14", "Q2", 2024, revenue=1e9),
        filing("AAA", "2024-03-31", "2024-06-01", "Q1", 2024, revenue=5.0),  # late amendment
        filing("NEW", "2024-03-31", "2024-05-20", "Q1", 2024),
    )
    before = latest_fundamentals(HISTORY, DAY)
    after = latest_fundamentals(pl.concat([HISTORY, later]), DAY)
    assert after.equals(before)
    assert check_point_in_time("fundamentals", after, DAY).passed


def test_latest_row_carries_dilution_runway_and_growth() -> None:
    row = only_row(latest_fundamentals(HISTORY, DAY))
    assert row["filing_date"] == date(2024, 5, 13)
    assert row["end_date"] == date(2024, 3, 31)
    assert row["days_since_filing"] == 1
    assert row["shares_outstanding"] == 1_500_000.0
    assert row["previous_end_date"] == date(2023, 12, 31)
    assert row["shares_change_pct"] == pytest.approx(0.5)
    assert row["cash_burn_quarterly"] == 30.0
    assert row["working_capital"] == 90.0  # 150 current assets - 60 current liabilities
    assert row["months_of_runway"] == pytest.approx(9.0)  # 90 / (30 burn per quarter / 3)
    assert row["revenue_growth_qoq"] == pytest.approx(0.1)
    assert row["year_ago_end_date"] == date(2023, 3, 31)
    assert row["revenue_growth_yoy"] == pytest.approx(0.21)


def test_runway_comes_from_fields_real_filings_carry() -> None:
    # Real vX filings have no balance_sheet.cash: a filing carrying one changes nothing.
    real_shape = filing("DDD", "2024-03-31", "2024-05-01", "Q1", 2024)
    with_cash = filing("DDD", "2024-03-31", "2024-05-01", "Q1", 2024)
    with_cash["financials"]["balance_sheet"]["cash"] = {"value": 1e9}
    assert latest_fundamentals(parse(with_cash), DAY).equals(
        latest_fundamentals(parse(real_shape), DAY)
    )
    underwater = parse(
        filing("EEE", "2024-03-31", "2024-05-01", "Q1", 2024, current_liabilities=400.0)
    )
    row = only_row(latest_fundamentals(underwater, DAY))
    assert row["working_capital"] == -250.0
    assert row["months_of_runway"] == 0.0  # current liabilities exceed current assets
    unreported = parse(filing("FFF", "2024-03-31", "2024-05-01", "Q1", 2024, current_assets=None))
    row = only_row(latest_fundamentals(unreported, DAY))
    assert row["working_capital"] is None
    assert row["months_of_runway"] is None


def test_qoq_needs_the_adjacent_quarter() -> None:
    # Q4 2023 follows Q1 2023 directly in the known set: two quarters are missing in between.
    row = only_row(latest_fundamentals(HISTORY.head(2), DAY))
    assert row["end_date"] == date(2023, 12, 31)
    assert row["shares_change_pct"] == 0.0  # still measured against the previous known filing
    assert row["revenue_growth_qoq"] is None
    assert row["revenue_growth_yoy"] is None


def test_yoy_falls_back_to_an_end_date_a_year_earlier() -> None:
    shifted = parse(
        filing("BBB", "2023-04-02", "2023-05-10", "Q1", 2022, revenue=50.0),  # fiscal label off
        filing("BBB", "2024-03-31", "2024-05-10", "Q2", 2024, revenue=75.0),
    )
    row = only_row(latest_fundamentals(shifted, DAY))
    assert row["year_ago_end_date"] == date(2023, 4, 2)
    assert row["revenue_growth_yoy"] == pytest.approx(0.5)


def test_newest_period_wins_over_a_later_filed_amendment_of_an_old_one() -> None:
    amendment = parse(filing("AAA", "2023-03-31", "2024-05-13", "Q1", 2023, revenue=99.0))
    row = only_row(latest_fundamentals(pl.concat([HISTORY, amendment]), DAY))
    assert row["end_date"] == date(2024, 3, 31)
    # ... while the year-ago comparison uses the amended figure.
    assert row["revenue_growth_yoy"] == pytest.approx(121.0 / 99.0 - 1)


def test_basic_shares_stand_in_and_positive_cash_flow_means_no_burn() -> None:
    rows = parse(
        filing("CCC", "2024-03-31", "2024-05-01", "Q1", 2024, diluted=None, basic=2e6, cash_flow=5)
    )
    row = only_row(latest_fundamentals(rows, DAY))
    assert row["shares_outstanding"] == 2e6
    assert row["cash_burn_quarterly"] == 0.0
    assert row["months_of_runway"] is None
    assert row["shares_change_pct"] is None


def test_multi_quarter_periods_are_normalised_per_quarter() -> None:
    rows = parse(
        filing("DDD", "2023-12-31", "2024-02-01", "Q4", 2023, revenue=100.0, cash_flow=-30.0),
        filing(
            "DDD",
            "2024-03-31",
            "2024-05-01",
            "FY",
            2024,
            revenue=440.0,
            cash_flow=-120.0,
            start="2023-04-01",
            timeframe="annual",
        ),
    )
    row = only_row(latest_fundamentals(rows, DAY))
    assert row["period_quarters"] == 4
    assert row["cash_burn_quarterly"] == 30.0
    assert row["revenue_growth_qoq"] == pytest.approx(0.1)


def test_ttm_rows_and_rows_without_ticker_are_ignored() -> None:
    noise = parse(
        filing("AAA", "2024-04-30", "2024-05-10", "TTM", 2024, timeframe="ttm", revenue=1e9),
        {**filing("AAA", "2024-04-30", "2024-05-10", "Q1", 2024), "tickers": []},
    )
    assert latest_fundamentals(pl.concat([HISTORY, noise]), DAY).equals(
        latest_fundamentals(HISTORY, DAY)
    )


def test_share_history_uses_counts_dated_before_the_session() -> None:
    details = pl.DataFrame(
        {
            "ticker": ["AAA", "AAA", "AAA"],
            "as_of": [date(2024, 5, 1), date(2024, 5, 13), DAY],
            "share_class_shares_outstanding": [None, 3_000_000.0, 9e9],
            "weighted_shares_outstanding": [2_000_000.0, None, None],
        }
    )
    row = only_row(latest_fundamentals(HISTORY, DAY, shares_history=details))
    assert row["shares_outstanding_current"] == 3_000_000.0
    assert row["shares_current_as_of"] == date(2024, 5, 13)
    assert row["shares_change_since_filing_pct"] == pytest.approx(1.0)


def test_schema_model_and_point_in_time_check() -> None:
    frame = latest_fundamentals(HISTORY, DAY)
    assert frame.schema == FUNDAMENTALS_SCHEMA
    ProcessedFundamentals.validate(frame)
    assert latest_fundamentals(parse(), DAY).schema == FUNDAMENTALS_SCHEMA

    leaked = frame.with_columns(filing_date=pl.lit(DAY))
    report = check_point_in_time("fundamentals", leaked, DAY)
    assert not report.passed
    assert report.by_check == {"filing_date before the session": 1}
