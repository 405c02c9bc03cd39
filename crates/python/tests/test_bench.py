"""`cellshift.bench` ranks contenders on an AnnData like `cellshift bench suite --data`."""

from __future__ import annotations

import numpy as np

import cellshift
from conftest import read_json, same_number


def test_bench_frame_equals_cli_leaderboard(log_screen, cli, tmp_path):
    frame = cellshift.bench(log_screen, methods=["control", "context_mean"], seeds=1, name="screen",
                            progress=False)
    assert list(frame["method"]) and set(frame["method"]) == {"control", "context_mean"}
    assert sorted(frame["rank"]) == [1, 2]
    assert frame["mean_rmse"].notna().all()
    assert (np.diff(frame.sort_values("rank")["mean_rmse"].to_numpy()) >= 0).all()
    log_screen.write_h5ad(tmp_path / "screen.h5ad")
    cli("bench", "suite", "--data", tmp_path / "screen.h5ad", "--methods", "control,context_mean",
        "--seeds", "1", "--out", tmp_path / "board")
    board = read_json(tmp_path / "board" / "leaderboard.json")
    for entry in board["suites"][0]["entries"]:
        row = frame[frame["method"] == entry["method"]].iloc[0]
        assert row["rank"] == entry["rank"]
        for summary in entry["summary"]:
            assert same_number(row[summary["metric"]], summary["mean"]), summary["metric"]


def test_bench_built_in_suite_writes_only_when_asked(tmp_path):
    frame = cellshift.bench(suites="combinatorial", methods="additive,control", seeds=1, progress=False,
                            out=tmp_path / "board")
    assert set(frame["suite"]) == {"combinatorial"}
    assert (tmp_path / "board" / "leaderboard.json").exists()
