"""Who is in the market: identities, listing lifecycles and long-run traits of every ticker.

Each ticker's traits come from its own stream, so ticker ``i`` is the same company whatever
``n_tickers`` is (only symbol collisions are resolved in ticker order).
"""

from __future__ import annotations

import base64
import math
import string
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum
from typing import Any, Final

import numpy as np

from smallcaps_assets.sources.simulator.calendar import Sessions
from smallcaps_assets.sources.simulator.rng import Purpose, stream


class Kind(IntEnum):
    CS = 0  # listed common stock: the universe the research is about
    ETF = 1
    ADR = 2  # listed American depositary receipt (type ADRC)
    OTC = 3  # common stock quoted over the counter


class DelistReason(IntEnum):
    NONE = 0
    BANKRUPTCY = 1
    ACQUISITION = 2
    COMPLIANCE = 3


OTC_VENUE: Final = "OTCM"
SESSIONS_PER_YEAR: Final = 252

# (SIC code, SIC description as EDGAR spells it, sector tag, weight)
SECTORS: Final = (
    ("2834", "PHARMACEUTICAL PREPARATIONS", "bio", 0.17),
    ("2836", "BIOLOGICAL PRODUCTS, (NO DIAGNOSTIC SUBSTANCES)", "bio", 0.08),
    ("8731", "SERVICES-COMMERCIAL PHYSICAL & BIOLOGICAL RESEARCH", "bio", 0.05),
    ("3841", "SURGICAL & MEDICAL INSTRUMENTS & APPARATUS", "med", 0.08),
    ("7372", "SERVICES-PREPACKAGED SOFTWARE", "tech", 0.10),
    ("3674", "SEMICONDUCTORS & RELATED DEVICES", "tech", 0.05),
    ("1311", "CRUDE PETROLEUM & NATURAL GAS", "energy", 0.07),
    ("1040", "GOLD AND SILVER ORES", "mining", 0.06),
    ("4412", "DEEP SEA FOREIGN TRANSPORTATION OF FREIGHT", "shipping", 0.05),
    ("6022", "STATE COMMERCIAL BANKS", "bank", 0.06),
    ("3714", "MOTOR VEHICLE PARTS & ACCESSORIES", "auto", 0.05),
    ("5961", "RETAIL-CATALOG & MAIL-ORDER HOUSES", "retail", 0.04),
    ("6770", "BLANK CHECKS", "spac", 0.04),
    ("3690", "MISCELLANEOUS ELECTRICAL MACHINERY, EQUIPMENT & SUPPLIES", "energy", 0.05),
    ("6199", "FINANCE SERVICES", "fin", 0.05),
)
_SECTOR_CUMULATIVE: Final = np.cumsum([s[3] for s in SECTORS]) / sum(s[3] for s in SECTORS)

_NAME_HEADS: Final = (
    "Aero",
    "Alto",
    "Arca",
    "Avia",
    "Bio",
    "Cala",
    "Cel",
    "Cora",
    "Cyto",
    "Delta",
    "Eno",
    "Evo",
    "Flux",
    "Gen",
    "Helio",
    "Hydro",
    "Ima",
    "Kine",
    "Lumi",
    "Medi",
    "Nano",
    "Neuro",
    "Nova",
    "Ocu",
    "Omni",
    "Pala",
    "Quant",
    "Rho",
    "Sol",
    "Syn",
    "Terra",
    "Tri",
    "Vas",
    "Vira",
    "Xeno",
    "Zeta",
    "Ampli",
    "Bright",
    "Clear",
    "North",
    "Silver",
    "Blue",
    "Iron",
    "Red",
    "Summit",
)
_NAME_TAILS: Final = (
    "gen",
    "tech",
    "nix",
    "tra",
    "vance",
    "lytics",
    "core",
    "pharm",
    "mune",
    "sys",
    "dyne",
    "works",
    "mark",
    "bridge",
    "point",
    "stream",
    "wave",
    "field",
    "via",
    "logic",
    "sense",
    "cept",
    "ra",
    "tide",
    "gate",
    "rock",
    "stone",
    "path",
    "shift",
    "scape",
)
_SECTOR_WORDS: Final = {
    "bio": ("Therapeutics", "Biosciences", "Pharmaceuticals", "Bio", "Oncology"),
    "med": ("Medical", "Health", "Diagnostics", "Surgical"),
    "tech": ("Technologies", "Software", "Systems", "Digital", "AI"),
    "energy": ("Energy", "Power", "Petroleum", "Resources"),
    "mining": ("Mining", "Gold", "Metals", "Minerals"),
    "shipping": ("Shipping", "Maritime", "Tankers", "Carriers"),
    "bank": ("Bancorp", "Financial", "Bancshares"),
    "auto": ("Motors", "Mobility", "Automotive", "EV"),
    "retail": ("Brands", "Retail", "Commerce", "Direct"),
    "spac": ("Acquisition", "Capital Acquisition"),
    "fin": ("Capital", "Holdings", "Financial Group"),
}
_SECTOR_BLURBS: Final = {
    "bio": "a clinical-stage biopharmaceutical company developing therapies for oncology and "
    "rare diseases",
    "med": "a medical technology company that designs and sells devices for minimally invasive "
    "procedures",
    "tech": "a technology company providing cloud software and data services to businesses",
    "energy": "an energy company engaged in the acquisition, exploration and development of "
    "oil, gas and power assets",
    "mining": "a mineral exploration company with gold and silver projects in North America",
    "shipping": "an international shipping company that owns and operates dry bulk and tanker "
    "vessels",
    "bank": "the holding company of a community bank offering deposit, lending and treasury "
    "services",
    "auto": "a company that designs and manufactures electric vehicle components",
    "retail": "a direct-to-consumer retailer selling apparel and home goods online",
    "spac": "a blank check company formed to effect a merger or similar business combination",
    "fin": "a financial services company providing specialty lending and payments",
}
_CITIES: Final = (
    ("NEW YORK", "NY", "10001", "212"),
    ("SAN DIEGO", "CA", "92121", "858"),
    ("BOSTON", "MA", "02110", "617"),
    ("CAMBRIDGE", "MA", "02139", "617"),
    ("HOUSTON", "TX", "77002", "713"),
    ("AUSTIN", "TX", "78701", "512"),
    ("MIAMI", "FL", "33131", "305"),
    ("DENVER", "CO", "80202", "303"),
    ("SEATTLE", "WA", "98101", "206"),
    ("CHICAGO", "IL", "60601", "312"),
    ("IRVINE", "CA", "92618", "949"),
    ("LAS VEGAS", "NV", "89101", "702"),
    ("PRINCETON", "NJ", "08540", "609"),
    ("SALT LAKE CITY", "UT", "84101", "801"),
    ("ATLANTA", "GA", "30303", "404"),
    ("SOUTH SAN FRANCISCO", "CA", "94080", "650"),
)
_STREETS: Final = (
    "MAIN STREET",
    "PARK AVENUE",
    "INNOVATION DRIVE",
    "COMMERCE WAY",
    "TECHNOLOGY PARKWAY",
    "SCIENCE CENTER DRIVE",
    "MARKET STREET",
    "HARBOR BOULEVARD",
    "CORPORATE CIRCLE",
)
_ETF_THEMES: Final = (
    "Micro-Cap",
    "Small Cap Growth",
    "Small Cap Value",
    "Biotech Small Cap",
    "Junior Miners",
    "Clean Energy Small Cap",
    "Regional Banks",
    "Small Cap Momentum",
)
_FIGI_ALPHABET: Final = "0123456789BCDFGHJKLMNPQRSTVWXYZ"

# Share of names listed before the history starts, and yearly delisting hazard: together they
# keep about three quarters of the names listed on a typical session.
_PRE_LISTED_SHARE: Final = 0.80
_DELIST_HAZARD_PER_YEAR: Final = 0.045


@dataclass(frozen=True, eq=False)
class Universe:
    """Static traits by ticker id (arrays are indexed by id)."""

    symbols: tuple[str, ...]
    names: tuple[str, ...]
    kind: np.ndarray  # int8 Kind
    exchange: tuple[str, ...]  # primary exchange MIC
    sector: tuple[str, ...]  # sector tag ("" for ETFs)
    sic_code: tuple[str | None, ...]
    sic_description: tuple[str | None, ...]
    cik: tuple[str | None, ...]
    composite_figi: tuple[str, ...]
    share_class_figi: tuple[str, ...]
    list_date: tuple[date, ...]  # first trading day (before the history for pre-listed names)
    list_idx: np.ndarray  # int64 first listed session index (0 for pre-listed names)
    is_ipo: np.ndarray  # bool: listed inside the history
    scheduled_delist_idx: np.ndarray  # int64 first session no longer listed (count = never)
    delist_reason: np.ndarray  # int8 DelistReason
    base_vol: np.ndarray  # daily log-return volatility level
    beta: np.ndarray
    drift: np.ndarray  # daily log drift of the economic price
    start_price: np.ndarray  # economic price at the first listed session
    start_shares: np.ndarray  # shares outstanding at the first listed session
    float_fraction: np.ndarray
    turnover: np.ndarray  # typical daily volume / float
    trade_size: np.ndarray  # typical shares per trade at a $5 price
    catalyst_rate: np.ndarray  # news catalysts per session
    offering_rate: np.ndarray  # offerings per session
    dividend_payer: np.ndarray  # bool
    employees: np.ndarray  # int64
    address: tuple[tuple[str, str, str, str], ...]  # street, city, state, postal code
    phone: tuple[str, ...]
    homepage: tuple[str, ...]
    description: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.symbols)

    def type_code(self, tid: int) -> str:
        return ("CS", "ETF", "ADRC", "CS")[int(self.kind[tid])]

    def market(self, tid: int) -> str:
        return "otc" if self.kind[tid] == Kind.OTC else "stocks"


@dataclass(frozen=True, slots=True)
class _Traits:
    symbol: str
    name: str
    kind: Kind
    exchange: str
    sector: str
    sic_code: str | None
    sic_description: str | None
    cik: str | None
    composite_figi: str
    share_class_figi: str
    list_date: date
    list_idx: int
    is_ipo: bool
    delist_idx: int
    delist_reason: DelistReason
    base_vol: float
    beta: float
    drift: float
    start_price: float
    start_shares: float
    float_fraction: float
    turnover: float
    trade_size: float
    catalyst_rate: float
    offering_rate: float
    dividend_payer: bool
    employees: int
    address: tuple[str, str, str, str]
    phone: str
    homepage: str
    description: str


def build_universe(seed: int, n_tickers: int, sessions: Sessions) -> Universe:
    taken: set[str] = set()
    traits = [_ticker_traits(seed, tid, sessions, taken) for tid in range(n_tickers)]

    def values(field: str) -> tuple[Any, ...]:
        return tuple(getattr(t, field) for t in traits)

    def numbers(field: str, dtype: type = np.float64) -> np.ndarray:
        return np.array([getattr(t, field) for t in traits], dtype=dtype)

    return Universe(
        symbols=values("symbol"),
        names=values("name"),
        kind=numbers("kind", np.int8),
        exchange=values("exchange"),
        sector=values("sector"),
        sic_code=values("sic_code"),
        sic_description=values("sic_description"),
        cik=values("cik"),
        composite_figi=values("composite_figi"),
        share_class_figi=values("share_class_figi"),
        list_date=values("list_date"),
        list_idx=numbers("list_idx", np.int64),
        is_ipo=numbers("is_ipo", bool),
        scheduled_delist_idx=numbers("delist_idx", np.int64),
        delist_reason=numbers("delist_reason", np.int8),
        base_vol=numbers("base_vol"),
        beta=numbers("beta"),
        drift=numbers("drift"),
        start_price=numbers("start_price"),
        start_shares=numbers("start_shares"),
        float_fraction=numbers("float_fraction"),
        turnover=numbers("turnover"),
        trade_size=numbers("trade_size"),
        catalyst_rate=numbers("catalyst_rate"),
        offering_rate=numbers("offering_rate"),
        dividend_payer=numbers("dividend_payer", bool),
        employees=numbers("employees", np.int64),
        address=values("address"),
        phone=values("phone"),
        homepage=values("homepage"),
        description=values("description"),
    )


PENNY_SHARE = 0.2


def _log_uniform(u: float, low: float, high: float) -> float:
    return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def _ticker_traits(seed: int, tid: int, sessions: Sessions, taken: set[str]) -> _Traits:
    rng = stream(seed, Purpose.STATIC, tid)
    u = rng.random(32).tolist()
    n_sessions = sessions.count

    if u[0] < 0.03:
        kind = Kind.ETF
    elif u[0] < 0.07:
        kind = Kind.ADR
    elif u[0] < 0.13:
        kind = Kind.OTC
    else:
        kind = Kind.CS
    if kind == Kind.ETF:
        exchange = "ARCX" if u[1] < 0.7 else "BATS"
    elif kind == Kind.OTC:
        exchange = OTC_VENUE
    else:
        exchange = "XNAS" if u[1] < 0.62 else "XASE" if u[1] < 0.84 else "XNYS"

    if kind == Kind.ETF:
        sector, sic_code, sic_desc = "", None, None
    else:
        s = min(int(np.searchsorted(_SECTOR_CUMULATIVE, u[24])), len(SECTORS) - 1)
        sic_code, sic_desc, sector = SECTORS[s][0], SECTORS[s][1], SECTORS[s][2]

    name, stem = _company_name(rng, kind, sector)
    symbol = _unique_symbol(rng, stem, kind, taken)

    # Listing lifecycle.
    if u[2] < _PRE_LISTED_SHARE:
        list_idx, is_ipo = 0, False
        list_day = sessions.days[0] - timedelta(days=int((1 + 24 * u[3]) * 365.25))
        while list_day.weekday() >= 5:
            list_day -= timedelta(days=1)
    else:
        list_idx, is_ipo = int(1 + u[3] * (n_sessions - 2)), True
        list_day = sessions.days[list_idx]
    hazard = _DELIST_HAZARD_PER_YEAR * (0.4 if kind == Kind.ETF else 1.0)
    life = int(-math.log(1.0 - u[4]) / hazard * SESSIONS_PER_YEAR)
    delist_idx = list_idx + max(life, 60)
    if delist_idx >= n_sessions:
        delist_idx, reason = n_sessions, DelistReason.NONE
    elif kind == Kind.ETF or u[5] >= 0.75:
        reason = DelistReason.COMPLIANCE
    else:
        reason = DelistReason.BANKRUPTCY if u[5] < 0.40 else DelistReason.ACQUISITION

    bio = sector == "bio"
    if kind == Kind.ETF:
        base_vol = _log_uniform(u[6], 0.010, 0.020)
        price = _log_uniform(u[7], 10.0, 45.0)
        shares = _log_uniform(u[8], 1e6, 2e7)
        drift = 0.0002
        turnover = 0.004
    elif kind == Kind.OTC:
        base_vol = _log_uniform(u[6], 0.035, 0.08)
        price = _log_uniform(u[7], 0.05, 3.0)
        shares = _log_uniform(u[8], 5e7, 8e8)
        drift = -0.0006 - 0.0008 * u[9]
        turnover = 0.002 * math.exp(0.6 * rng.standard_normal())
    else:
        base_vol = _log_uniform(u[6], 0.011, 0.042) * (1.15 if bio else 1.0)
        high = 60.0 if kind == Kind.CS else 25.0
        # Most small caps trade at a few dollars to a few tens; a fifth are penny names that
        # drift under $1 and reverse split (the band's median close is then ~$9, as measured).
        penny = kind == Kind.CS and u[30] < PENNY_SHARE
        price = _log_uniform(u[7], 0.4, 2.5) if penny else _log_uniform(u[7], 9.0, high)
        shares = _log_uniform(u[8], 4e6, 1.4e8)
        # Small caps bleed on average (dilution, cash burn); some drift up.
        drift = -0.0005 + 0.0011 * u[9]
        turnover = 0.009 * math.exp(0.7 * rng.standard_normal())
    if kind == Kind.CS:
        catalyst_rate = _log_uniform(u[13], 0.008, 0.025) * (1.3 if bio else 1.0)
        offering_rate = _log_uniform(u[14], 0.0005, 0.003) * (1.5 if bio else 1.0)
    elif kind == Kind.ETF:
        catalyst_rate, offering_rate = 0.0, 0.0
    else:
        catalyst_rate, offering_rate = 0.003, 0.0
    dividend_odds = 0.6 if kind == Kind.ETF else 0.35 if sector == "bank" else 0.02

    city = _CITIES[int(u[16] * len(_CITIES))]
    domain = stem.lower() + (".com" if u[21] < 0.8 else ".io")
    if kind == Kind.ETF:
        description = (
            f"The fund seeks to track the performance of a {name.removesuffix(' ETF')} index."
        )
        employees = 0
    else:
        description = f"{name} is {_SECTOR_BLURBS[sector]}."
        employees = int(min(max(60 * math.exp(1.1 * rng.standard_normal()), 3), 5000))
    no_cik = kind == Kind.OTC and u[22] < 0.5
    return _Traits(
        symbol=symbol,
        name=name,
        kind=kind,
        exchange=exchange,
        sector=sector,
        sic_code=sic_code,
        sic_description=sic_desc,
        cik=None if no_cik else f"{1_600_000 + tid * 11 + int(u[23] * 11):010d}",
        composite_figi=_figi(tid, 0, u[25:29]),
        share_class_figi=_figi(tid, 1, u[28:32]),
        list_date=list_day,
        list_idx=list_idx,
        is_ipo=is_ipo,
        delist_idx=delist_idx,
        delist_reason=reason,
        base_vol=base_vol,
        beta=1.0 if kind == Kind.ETF else 0.4 + u[10],
        drift=drift,
        start_price=price,
        start_shares=shares,
        float_fraction=0.95 if kind == Kind.ETF else 0.35 + 0.6 * u[11],
        turnover=turnover,
        trade_size=80 + 220 * u[12],
        catalyst_rate=catalyst_rate,
        offering_rate=offering_rate,
        dividend_payer=u[15] < dividend_odds,
        employees=employees,
        address=(
            f"{int(10 + u[17] * 9000)} {_STREETS[int(u[18] * len(_STREETS))]}",
            city[0],
            city[1],
            city[2],
        ),
        phone=f"({city[3]}) {int(200 + u[19] * 799)}-{int(1000 + u[20] * 8999)}",
        homepage=f"https://www.{domain}",
        description=description,
    )


def _company_name(rng: np.random.Generator, kind: Kind, sector: str) -> tuple[str, str]:
    head = _NAME_HEADS[int(rng.integers(len(_NAME_HEADS)))]
    tail = _NAME_TAILS[int(rng.integers(len(_NAME_TAILS)))]
    stem = head + tail
    if kind == Kind.ETF:
        theme = _ETF_THEMES[int(rng.integers(len(_ETF_THEMES)))]
        return f"{stem} {theme} ETF", stem
    words = _SECTOR_WORDS[sector]
    word = words[int(rng.integers(len(words)))]
    suffix = ("Inc.", "Corp.", "Holdings Inc.", "Ltd.", "Co.")[int(rng.integers(5))]
    if kind == Kind.ADR:
        return f"{stem} {word} Ltd. American Depositary Shares", stem
    return f"{stem} {word} {suffix}", stem


def _unique_symbol(rng: np.random.Generator, stem: str, kind: Kind, taken: set[str]) -> str:
    letters = [c for c in stem.upper() if c.isalpha()]
    lengths = (2, 3, 4, 4, 4, 5) if kind == Kind.OTC else (3, 4, 4, 4)
    for attempt in range(200):
        draws = rng.random(8).tolist()
        if attempt < 6:
            # Mostly mnemonic symbols: the stem's first letter plus others in order.
            length = lengths[int(draws[0] * len(lengths))]
            rest = sorted({1 + int(x * (len(letters) - 1)) for x in draws[1:length]})
            symbol = letters[0] + "".join(letters[i] for i in rest)
        else:
            length = 1 + int(draws[0] * 5)
            symbol = "".join(string.ascii_uppercase[int(x * 26)] for x in draws[1 : 1 + length])
        if kind == Kind.OTC and len(symbol) == 4 and draws[7] < 0.3:
            symbol += "F"
        if 1 <= len(symbol) <= 5 and symbol not in taken:
            taken.add(symbol)
            return symbol
    raise RuntimeError("could not find a free ticker symbol")  # 26^5 symbols: unreachable


def _figi(tid: int, salt: int, noise: list[float]) -> str:
    # 12 characters: BBG + 9 from the FIGI alphabet; the id in the middle keeps them unique.
    base = len(_FIGI_ALPHABET)
    code = tid * 2 + salt
    middle = ""
    for _ in range(5):
        code, r = divmod(code, base)
        middle += _FIGI_ALPHABET[r]
    tail = "".join(_FIGI_ALPHABET[int(x * base)] for x in noise)
    return f"BBG{middle}{tail}"


def branding_urls(homepage: str) -> dict[str, str]:
    domain = homepage.removeprefix("https://")
    token = base64.urlsafe_b64encode(domain.encode()).decode().rstrip("=")
    root = f"https://api.polygon.io/v1/reference/company-branding/{token}/images"
    return {"logo_url": f"{root}/2024-01-02_logo.svg", "icon_url": f"{root}/2024-01-02_icon.png"}
