"""``smallcaps canary``: the leakage canary, the whole demo on a market without signal, judged."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import polars as pl

import smallcaps_assets.warnings_filter  # noqa: F401  (before the assets are declared)
from smallcaps_assets import settings
from smallcaps_assets.cli import demo
from smallcaps_assets.cli.args import check_writable_root
from smallcaps_assets.cli.report import dollars
from smallcaps_assets.core import performance
from smallcaps_assets.core.modeling import pooled_out_of_sample
from smallcaps_assets.core.storage import DataStore
from smallcaps_assets.defs.backtest import SUMMARY_FILE, BacktestSettingsResource, no_skill_trades

CANARY_TOLERANCE = 0.02
CANARY_MIN_EVENTS = 4_000
CANARY_MIN_MONTHS = 6
CANARY_MAX_GROSS_T = 2.0


def check(args: argparse.Namespace) -> None:
    """The window holds partitions and every seed's data root can be written."""
    demo.partition_keys(args.start, args.end)
    for seed in args.seeds or [args.seed]:
        root = str(canary_data_dir(args, seed))
        check_writable_root(root, "--data-dir" if args.data_dir else "the data root")


def run(args: argparse.Namespace) -> int:
    """The leakage canary, on every seed of ``--seeds``: the whole pipeline on a market whose
    gap-day paths carry no signal (signal 0) must score out of sample at AUC 0.50 +/- 0.02, and
    the model's selected trades must earn no more than trading every event (the no-skill
    baseline) under the same rules and costs, with a negative net expectancy."""
    seeds = args.seeds or [args.seed]
    if args.data_dir and len(seeds) > 1:
        print("error: --data-dir holds one market; give one seed with it", file=sys.stderr)
        return 2
    verdicts: list[tuple[int, bool]] = []
    for seed in seeds:
        data_dir = canary_data_dir(args, seed)
        run_args = argparse.Namespace(**{**vars(args), "seed": seed, "data_dir": str(data_dir)})
        os.environ[settings.MLRUNS_DIR_ENV] = str(data_dir.resolve() / "mlruns")
        code = demo.run(run_args)
        if code != 0:
            return code
        verdicts.append((seed, _canary_verdict(data_dir, run_args.signal, seed)))
    if len(verdicts) > 1:
        print(
            "\ncanary over seeds: "
            + ", ".join(f"seed {s} {'PASS' if ok else 'FAIL'}" for s, ok in verdicts)
        )
    return 0 if all(ok for _, ok in verdicts) else 1


def canary_data_dir(args: argparse.Namespace, seed: int) -> Path:
    return Path(
        args.data_dir
        or settings.project_root() / "data" / f"canary-signal{args.signal:g}-seed{seed}"
    )


def _canary_verdict(data_dir: Path, signal: float, seed: int) -> bool:
    store = DataStore(str(data_dir.resolve()))
    months = store.partitions("ml", "predictions")
    pooled = pooled_out_of_sample(
        store.read_many("ml", "predictions", months),
        store.read_many("labels", "events", store.partitions("labels", "events")),
    )
    enough = pooled["events"] >= CANARY_MIN_EVENTS and pooled["months"] >= CANARY_MIN_MONTHS
    print(
        f"\nleakage canary (signal {signal:g}, seed {seed}): pooled out-of-sample AUC "
        f"{pooled['auc']:.4f} over {int(pooled['events']):,} events in {int(pooled['months'])} "
        f"months (winning-trade base rate {pooled['base_rate']:.3f})"
    )
    skill = _baseline_comparison(store)
    if signal != 0:
        print("  (signal > 0: the comparison run; the selected trades should beat the baseline)")
        return skill is not None and skill > CANARY_MAX_GROSS_T
    if not enough:
        print(
            f"  INCONCLUSIVE: needs >= {CANARY_MIN_EVENTS:,} events over >= {CANARY_MIN_MONTHS} "
            "months; raise --tickers or widen the window"
        )
        return False
    auc_ok = abs(pooled["auc"] - 0.5) <= CANARY_TOLERANCE
    if auc_ok:
        print(f"  PASS: AUC within 0.50 +/- {CANARY_TOLERANCE}")
    else:
        print(f"  FAIL: AUC outside 0.50 +/- {CANARY_TOLERANCE}: something sees the future")
    skill_ok = skill is not None and abs(skill) < CANARY_MAX_GROSS_T
    print(
        f"  {'PASS' if skill_ok else 'FAIL'}: selected trades "
        f"{'indistinguishable from' if skill_ok else 'differ from'} the no-skill baseline "
        f"(|t| < {CANARY_MAX_GROSS_T:g})"
    )
    return auc_ok and skill_ok and _backtest_canary(store)


def _baseline_comparison(store: DataStore) -> float | None:
    """Mean net P&L per trade of the model's selected trades against trading every event under
    the same rules and costs; prints both and returns the t statistic of the difference."""
    months = store.partitions("backtest", "trades")
    if not months:
        print("  baseline: no backtest trades were written")
        return None
    selected = store.read_many("backtest", "trades", months).get_column("net_pnl")
    settings_ = BacktestSettingsResource()
    baseline = no_skill_trades(store, settings_.rules(), settings_.costs()).get_column("net_pnl")
    diff, se, t = performance.mean_difference_t(selected.to_list(), baseline.to_list())
    print(
        f"  selected {selected.len():,} trades, net {dollars(_mean(selected))} per "
        f"trade; no-skill baseline (every event) {baseline.len():,} trades, net "
        f"{dollars(_mean(baseline))}; difference {dollars(diff)} "
        f"(s.e. {dollars(se)}, t = {t:.2f})"
    )
    return None if t != t else t


def _mean(values: pl.Series) -> float:
    """The mean, 0.0 for no values."""
    mean = values.mean()
    return float(mean) if isinstance(mean, int | float) else 0.0


def _backtest_canary(store: DataStore) -> bool:
    """Without signal the selected trades' net expectancy must be negative (the modelled
    costs and the gappers' fade are all they earn)."""
    text = store.read_text(SUMMARY_FILE)
    if not text:
        print("  backtest: FAIL: no backtest summary was written")
        return False
    s = json.loads(text)
    gross, se, t = s["expectancy_gross"], s["expectancy_gross_se"], s["expectancy_gross_t"]
    net, costs = s["expectancy_net"], s["costs_per_trade"]
    if gross is None or t is None:
        print(f"  backtest: INCONCLUSIVE: {s['n_trades']} trades")
        return False
    print(
        f"  backtest at signal 0: {s['n_trades']:,} trades, gross expectancy {dollars(gross)} per "
        f"trade (s.e. {dollars(se)}, t = {t:.2f}); net {dollars(net)} = gross - "
        f"{dollars(costs)} costs"
    )
    net_ok = bool(net < 0)
    print(
        f"  {'PASS' if net_ok else 'FAIL'}: net expectancy "
        f"{'negative' if net_ok else 'not negative'} (modelled costs {dollars(costs)} per trade)"
    )
    return net_ok
