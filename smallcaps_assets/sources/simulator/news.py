"""News articles: every catalyst, offering, bankruptcy, halt and filing, plus background chatter.

Articles about a day's catalyst are published in that day's premarket (at the minute the daily
model chose) or the evening before; big moves get a follow-up during the session; halts are
reported the minute they start; filings are covered minutes after their acceptance. Background
articles carry the same keywords and sentiments but move nothing. Keywords come from
``KEYWORDS``; each article's ``insights`` hold one sentiment per ticker it names.

The table keeps numbers only; titles, URLs and texts are rendered for the rows a request
returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import numpy as np
import polars as pl

from smallcaps_assets.sources.simulator.calendar import MINUTE_MS, Sessions
from smallcaps_assets.sources.simulator.corporate import hex_id
from smallcaps_assets.sources.simulator.daily import Catalyst, DailyPanel
from smallcaps_assets.sources.simulator.rng import Purpose, Streams
from smallcaps_assets.sources.simulator.universe import Kind, Universe

KEYWORDS: Final = (
    "FDA",
    "merger",
    "offering",
    "bankruptcy",
    "halt",
    "earnings",
    "contract",
    "partnership",
)
SENTIMENTS: Final = ("negative", "neutral", "positive")  # indexed by sentiment + 1

_FDA, _MERGER, _OFFERING, _BANKRUPTCY, _HALT, _EARNINGS, _CONTRACT, _PARTNERSHIP = range(8)
_CATALYST_NEWS: Final = {
    Catalyst.FDA: (_FDA, 1),
    Catalyst.MERGER: (_MERGER, 1),
    Catalyst.CONTRACT: (_CONTRACT, 1),
    Catalyst.PARTNERSHIP: (_PARTNERSHIP, 1),
    Catalyst.EARNINGS_BEAT: (_EARNINGS, 1),
    Catalyst.EARNINGS_MISS: (_EARNINGS, -1),
    Catalyst.OFFERING: (_OFFERING, -1),
    Catalyst.BANKRUPTCY: (_BANKRUPTCY, -1),
}
_KEYWORD_OF: Final = np.array(
    [_CATALYST_NEWS.get(Catalyst(c), (-1, 0))[0] for c in range(len(Catalyst))], dtype=np.int64
)
_SENTIMENT_OF: Final = np.array(
    [_CATALYST_NEWS.get(Catalyst(c), (-1, 0))[1] for c in range(len(Catalyst))], dtype=np.int64
)
# Sessions between background articles, by Kind.
_BACKGROUND_EVERY: Final = np.array([12.0, 60.0, 25.0, 30.0])


@dataclass(frozen=True)
class Publisher:
    name: str
    homepage_url: str
    slug: str
    wire: bool  # press-release wires sign as themselves


PUBLISHERS: Final = (
    Publisher("GlobeNewswire Inc.", "https://www.globenewswire.com/", "globenewswire", True),
    Publisher("PR Newswire", "https://www.prnewswire.com/", "prnewswire", True),
    Publisher("Business Wire", "https://www.businesswire.com/", "businesswire", True),
    Publisher("Accesswire", "https://www.accesswire.com/", "accesswire", True),
    Publisher("Benzinga", "https://www.benzinga.com/", "benzinga", False),
    Publisher("MarketWatch", "https://www.marketwatch.com/", "marketwatch", False),
    Publisher("Investing.com", "https://www.investing.com/", "investing", False),
    Publisher("The Motley Fool", "https://www.fool.com/", "fool", False),
    Publisher("Zacks Investment Research", "https://www.zacks.com/", "zacks", False),
)
_AUTHORS: Final = (
    "Vandana Singh",
    "Priya Nigam",
    "Chris Katje",
    "Adam Eckert",
    "Henry Khederian",
    "Anusuya Lahiri",
    "Shanthi Rexaline",
    "Lisa Levin",
)


def build_news(
    seed: int,
    sessions: Sessions,
    universe: Universe,
    panel: DailyPanel,
    filings: pl.DataFrame,
) -> pl.DataFrame:
    """All articles, sorted by publication time (ms) then id."""
    streams = Streams(seed, Purpose.NEWS)
    close_ms = sessions.open_ms + sessions.regular_minutes * MINUTE_MS
    premarket_ms = sessions.premarket_start_ms(np.arange(sessions.count))
    cs_listed = _cs_listed_ranges(universe, panel)
    columns: dict[str, list[np.ndarray]] = {
        k: [] for k in ("published_ms", "tid", "partner", "keyword", "sentiment", "t", "variant")
    }

    def add(
        tid: int,
        t: np.ndarray,
        published: np.ndarray,
        keyword: np.ndarray,
        sentiment: np.ndarray,
        partner: np.ndarray,
        variant: np.ndarray,
    ) -> None:
        for key, value in (
            ("published_ms", published),
            ("tid", np.full(len(t), tid)),
            ("partner", partner),
            ("keyword", keyword),
            ("sentiment", sentiment),
            ("t", t),
            ("variant", variant),
        ):
            columns[key].append(np.asarray(value, dtype=np.int64))

    catalysts = panel.catalysts
    catalysts_of = _rows_by_ticker(catalysts.tid, universe.count)
    gaps = panel.gaps
    halt_rows = np.flatnonzero(gaps.halt_count > 0)
    halts_of = _rows_by_ticker(gaps.tid[halt_rows], universe.count)
    quarterly = np.flatnonzero((filings["timeframe"] == "quarterly").to_numpy())
    filings_of = _rows_by_ticker(filings["tid"].to_numpy()[quarterly], universe.count)
    filing_ms = filings["acceptance_ms"].to_numpy()
    filing_t = np.searchsorted(sessions.dates, filings["filing_date"].to_numpy())
    filing_growth = _earnings_tone(filings)

    for tid in range(universe.count):
        rng = streams.at(tid)
        # Catalysts, offerings, bankruptcies: at the minute the daily model chose.
        rows = catalysts_of(tid)
        t = catalysts.t[rows]
        code = catalysts.code[rows]
        minute = catalysts.minute[rows]
        n = len(rows)
        u = rng.random((4, n))
        seconds = (u[0] * 60_000).astype(np.int64)
        evening = close_ms[np.maximum(t - 1, 0)] + (5 + (u[1] * 230).astype(np.int64)) * MINUTE_MS
        morning = premarket_ms[t] + minute * MINUTE_MS
        published = np.where(minute >= 0, morning, evening) + seconds
        generic = code == Catalyst.GENERIC
        unremarkable = np.array([_CONTRACT, _PARTNERSHIP, _EARNINGS])[(u[2] * 3).astype(int)]
        keyword = np.where(generic, unremarkable, _KEYWORD_OF[code])
        sentiment = np.where(generic, 0, _SENTIMENT_OF[code])
        partner = np.array(
            [
                _partner(rng, tid, int(day), cs_listed) if kw in (_MERGER, _PARTNERSHIP) else -1
                for kw, day in zip(keyword, t, strict=True)
            ],
            dtype=np.int64,
        )
        variant = (u[3] * 1000).astype(np.int64)
        add(tid, t, published, keyword, sentiment, partner, variant)

        # Big moves get a follow-up during the session.
        big = (np.abs(catalysts.value[rows]) >= 0.2) & (u[1] < 0.5)
        if big.any():
            later = sessions.open_ms[t[big]] + ((5 + u[2, big] * 115) * MINUTE_MS).astype(np.int64)
            add(tid, t[big], later, keyword[big], sentiment[big], partner[big], variant[big] + 1)

        # Halts, reported as they start.
        for row in halt_rows[halts_of(tid)]:
            for start in gaps.halt_starts[row]:
                if start < 0:
                    continue
                day = np.array([gaps.t[row]])
                when = sessions.open_ms[day] + int(start) * MINUTE_MS + int(rng.integers(60_000))
                add(tid, day, when, np.array([_HALT]), np.array([0]), np.array([-1]), np.array([0]))

        # Filings: covered within half an hour of acceptance.
        filed = quarterly[filings_of(tid)]
        if len(filed):
            when = filing_ms[filed] + ((1 + rng.random(len(filed)) * 29) * MINUTE_MS).astype(
                np.int64
            )
            day = filing_t[filed]
            add(
                tid,
                day,
                when,
                np.full(len(filed), _EARNINGS),
                filing_growth[filed],
                np.full(len(filed), -1),
                np.full(len(filed), 7),
            )

        # Background chatter on random listed days, 06:00-20:00 ET.
        first, end = int(universe.list_idx[tid]), int(panel.delist_idx[tid])
        every = _BACKGROUND_EVERY[universe.kind[tid]]
        count = int(rng.poisson(max(end - first, 0) / every))
        if count:
            day = rng.integers(first, end, size=count)
            when = (
                premarket_ms[day]
                + (rng.integers(120, 960, size=count) * MINUTE_MS)
                + rng.integers(60_000, size=count)
            )
            pool = [_CONTRACT, _PARTNERSHIP, _EARNINGS, _MERGER]
            if universe.sector[tid] in ("bio", "med"):
                pool.append(_FDA)
            keyword = np.array(pool)[rng.integers(len(pool), size=count)]
            tone = rng.random(count)
            sentiment = np.where(tone < 0.15, -1, np.where(tone < 0.75, 0, 1))
            add(
                tid,
                day,
                when,
                keyword,
                sentiment,
                np.full(count, -1),
                rng.integers(1000, size=count),
            )

    frame = pl.DataFrame(
        {k: np.concatenate(v) if v else np.empty(0, np.int64) for k, v in columns.items()}
    )
    return frame.sort(["published_ms", "tid", "keyword", "variant"])


def _rows_by_ticker(tids: np.ndarray, count: int) -> Callable[[int], np.ndarray]:
    """A lookup from ticker id to the positions of its rows in ``tids``."""
    order = np.argsort(tids, kind="stable")
    bounds = np.searchsorted(tids[order], np.arange(count + 1))
    return lambda tid: order[bounds[tid] : bounds[tid + 1]]


def article_id(seed: int, row: dict[str, int]) -> str:
    return hex_id(seed, "news", row["tid"], row["published_ms"], row["keyword"], row["variant"])


def _earnings_tone(filings: pl.DataFrame) -> np.ndarray:
    """+1 when revenue grew on the same quarter a year earlier, -1 when it fell, else 0."""
    if filings.height == 0:
        return np.empty(0, dtype=np.int64)
    prior = (
        filings.with_row_index("row")
        .with_columns(
            pl.col("revenues").shift(4).over("tid", "timeframe", order_by="end_date").alias("prior")
        )
        .sort("row")
    )
    growth = (prior["revenues"] / prior["prior"]).to_numpy()
    return np.where(np.isnan(growth), 0, np.where(growth >= 1.0, 1, -1)).astype(np.int64)


def _cs_listed_ranges(
    universe: Universe, panel: DailyPanel
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cs = np.flatnonzero(universe.kind == Kind.CS)
    return cs, universe.list_idx[cs], panel.delist_idx[cs]


def _partner(
    rng: np.random.Generator, tid: int, t: int, cs_listed: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> int:
    """Another common stock listed on session ``t``, or -1 (a few random tries suffice)."""
    ids, first, end = cs_listed
    for pick in rng.integers(len(ids), size=16) if len(ids) else ():
        if ids[pick] != tid and first[pick] <= t < end[pick]:
            return int(ids[pick])
    return -1


# -- rendering ----------------------------------------------------------------------------------
_TREATMENTS: Final = ("NX-201", "VT-440", "OncoVax", "ZL-17", "BRX-9", "CardioFlo", "NeuroLink-3")
_FDA_ACTIONS: Final = (
    "Approval",
    "Fast Track Designation",
    "Breakthrough Therapy Designation",
    "Orphan Drug Designation",
)


def render_article(seed: int, row: dict[str, int], universe: Universe) -> dict[str, object]:
    """The Polygon JSON object of one article."""
    identifier = article_id(seed, row)
    tid, partner, keyword = row["tid"], row["partner"], row["keyword"]
    sentiment, variant = row["sentiment"], row["variant"]
    name, symbol = universe.names[tid], universe.symbols[tid]
    partner_name = universe.names[partner] if partner >= 0 else "a leading industry partner"
    publisher = PUBLISHERS[int(identifier[:8], 16) % len(PUBLISHERS)]
    title, description = _text(keyword, sentiment, variant, name, symbol, partner_name)
    published = datetime.fromtimestamp(row["published_ms"] / 1000, tz=UTC)
    slug = "-".join(
        title.lower().replace("$", "").replace(",", "").replace("(", "").replace(")", "").split()
    )[:80]
    article_url = f"{publisher.homepage_url}news/{published:%Y/%m/%d}/{slug}-{identifier[:10]}"
    tickers = [symbol] + ([universe.symbols[partner]] if partner >= 0 else [])
    insights = [
        {
            "ticker": symbol,
            "sentiment": SENTIMENTS[sentiment + 1],
            "sentiment_reasoning": _reasoning(keyword, sentiment, name),
        }
    ]
    if partner >= 0:
        insights.append(
            {
                "ticker": universe.symbols[partner],
                "sentiment": "neutral" if keyword == _MERGER else "positive",
                "sentiment_reasoning": f"{partner_name} is named as the counterparty; the "
                "announcement is of limited significance to its own business.",
            }
        )
    logo_root = "https://s3.polygon.io/public/assets/news"
    article: dict[str, object] = {
        "id": identifier,
        "publisher": {
            "name": publisher.name,
            "homepage_url": publisher.homepage_url,
            "logo_url": f"{logo_root}/logos/{publisher.slug}.svg",
            "favicon_url": f"{logo_root}/favicons/{publisher.slug}.ico",
        },
        "title": title,
        "author": publisher.name if publisher.wire else _AUTHORS[variant % len(_AUTHORS)],
        "published_utc": f"{published:%Y-%m-%dT%H:%M:%SZ}",
        "article_url": article_url,
        "tickers": tickers,
    }
    if variant % 3 == 0:
        article["amp_url"] = article_url.replace(
            publisher.homepage_url, f"{publisher.homepage_url}amp/"
        )
    if variant % 2 == 0:
        article["image_url"] = f"{logo_root}/images/{identifier[:16]}.jpg"
    article["description"] = description
    words = [KEYWORDS[keyword]]
    if keyword in (_FDA, _OFFERING) and variant % 4 == 0:
        words.append("biotech" if keyword == _FDA else "dilution")
    article["keywords"] = words
    article["insights"] = insights
    return article


def _text(
    keyword: int, sentiment: int, variant: int, name: str, symbol: str, partner: str
) -> tuple[str, str]:
    amount = 5 + (variant * 7) % 95
    treatment = _TREATMENTS[variant % len(_TREATMENTS)]
    if keyword == _FDA:
        action = _FDA_ACTIONS[variant % len(_FDA_ACTIONS)]
        if sentiment < 0:
            return (
                f"{name} Receives Complete Response Letter from FDA for {treatment}",
                f"The FDA declined to approve {treatment} in its current form.",
            )
        return (
            f"{name} Receives FDA {action} for {treatment}",
            f"{name} ({symbol}) said the U.S. Food and Drug Administration granted {action.lower()} for {treatment}.",
        )
    if keyword == _MERGER:
        return (
            f"{name} Enters Definitive Agreement to Be Acquired by {partner}",
            f"Shareholders of {symbol} are to receive cash at a premium under the merger agreement.",
        )
    if keyword == _OFFERING:
        return (
            f"{name} Announces ${amount} Million Registered Direct Offering",
            f"{name} ({symbol}) entered into agreements to sell common stock and warrants; gross proceeds are expected to be about ${amount} million.",
        )
    if keyword == _BANKRUPTCY:
        return (
            f"{name} Files Voluntary Petitions for Chapter 11 Bankruptcy",
            f"{name} ({symbol}) commenced a restructuring process under Chapter 11 of the U.S. Bankruptcy Code.",
        )
    if keyword == _HALT:
        return (
            f"{name} ({symbol}) Shares Halted on Volatility",
            f"Trading in {symbol} was paused under the limit up-limit down mechanism.",
        )
    if keyword == _EARNINGS:
        if sentiment > 0:
            return (
                f"{name} Reports Record Quarterly Revenue",
                f"{name} ({symbol}) posted revenue growth ahead of expectations.",
            )
        if sentiment < 0:
            return (
                f"{name} Reports Quarterly Results Below Expectations",
                f"{name} ({symbol}) reported a wider loss and lower revenue.",
            )
        return (
            f"{name} Reports Quarterly Results",
            f"{name} ({symbol}) filed its quarterly report.",
        )
    if keyword == _CONTRACT:
        if sentiment > 0:
            return (
                f"{name} Awarded ${amount} Million Contract",
                f"{name} ({symbol}) won a multi-year contract valued at up to ${amount} million.",
            )
        return (
            f"{name} Provides Update on Contract Pipeline",
            f"{name} ({symbol}) commented on the status of pending contracts.",
        )
    if sentiment > 0:
        return (
            f"{name} Announces Strategic Partnership with {partner}",
            f"The partnership expands {symbol}'s commercial reach.",
        )
    return (
        f"{name} Comments on Partnership Discussions",
        f"{name} ({symbol}) said talks with potential partners are ongoing.",
    )


def _reasoning(keyword: int, sentiment: int, name: str) -> str:
    what = KEYWORDS[keyword]
    if sentiment > 0:
        return f"The {what} news is a clear positive catalyst for {name}."
    if sentiment < 0:
        return f"The {what} news weighs on {name}: investors read it as a negative development."
    return f"The {what} news is informational for {name} and has no clear direction."
