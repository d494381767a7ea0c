"""`make bench`'s harness: every section runs in order, the report holds each figure, and a
partial run (`--only`) never overwrites the committed results."""

from __future__ import annotations

import json

import pytest

import benchmarks.__main__ as harness


@pytest.fixture
def fake_sections(monkeypatch, tmp_path):
    ran: list[str] = []

    def section(name: str):
        def run() -> dict[str, object]:
            ran.append(name)
            return {"speed": {"ratio": 2.5, "target": ">= 2x"}, "rows": 10}

        return run

    monkeypatch.setattr(harness, "BENCHMARKS", {n: section(n) for n in ("first", "second")})
    monkeypatch.setattr(harness, "HERE", tmp_path)
    return ran


def test_a_full_run_writes_every_section_to_both_reports(fake_sections, tmp_path, capsys):
    assert harness.main([]) == 0
    assert fake_sections == ["first", "second"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results) == ["environment", "first", "second", "harness"]
    assert results["first"]["speed"] == {"ratio": 2.5, "target": ">= 2x"}
    assert results["harness"]["target"] == "< 900 s"
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert "## second" in markdown
    assert "| speed.ratio | 2.5 |" in markdown
    assert "| rows | 10 |" in markdown
    assert "| dagster |" in markdown  # versions of the machine's stack
    assert markdown in capsys.readouterr().out


def test_a_partial_run_leaves_the_committed_results_alone(fake_sections, tmp_path):
    assert harness.main(["--only", "second"]) == 0
    assert fake_sections == ["second"]
    assert not (tmp_path / "RESULTS.md").exists()
    assert not (tmp_path / "results.json").exists()


def test_an_unknown_section_is_refused(fake_sections):
    with pytest.raises(SystemExit) as exit_info:
        harness.main(["--only", "nonexistent"])
    assert exit_info.value.code == 2
    assert fake_sections == []


def test_a_generator_runner_is_timed_while_it_computes_not_while_its_consumer_works():
    import time

    from benchmarks.bench_backfills import Stopwatch

    def runner():
        for i in range(2):
            time.sleep(0.05)
            yield i
        return "done"

    watch = Stopwatch()
    timed = watch.wrap(runner)
    items = []
    for item in timed():
        items.append(item)
        time.sleep(0.1)  # the consumer (Dagster writing events) is not the runner's time
    assert items == [0, 1]
    assert watch.calls == 1
    assert 0.09 <= watch.seconds < 0.2
