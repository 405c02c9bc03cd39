"""``cellshift.bench``: the leaderboard (``cellshift bench suite``) as a DataFrame."""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Optional, Sequence, Union

import pandas as pd

from . import _anndata, _core
from ._progress import Progress, reporter


def _names(value: Union[str, Sequence[str]]) -> str:
    return value if isinstance(value, str) else ",".join(value)


def bench(
    adata: Any = None,
    *,
    methods: Union[str, Sequence[str]] = "all",
    suites: Union[str, Sequence[str], None] = None,
    name: str = "screen",
    scale: str = "tiny",
    seeds: int = 3,
    cells: Optional[int] = None,
    seed: int = 0,
    metrics: str = "mappfn,celleval",
    columns: str = "default",
    model_options: Iterable[str] = (),
    out: Optional[Union[str, os.PathLike]] = None,
    shared: Optional[Union[str, os.PathLike]] = None,
    perturbation_key: str = "perturbation",
    control: Optional[str] = None,
    context_key: Optional[str] = None,
    value_key: str = "treatment_value",
    layer: Optional[str] = None,
    protocol: str = "auto",
    folds: int = 5,
    bootstrap: int = 1000,
    progress: Progress = True,
) -> pd.DataFrame:
    """Ranks methods and baselines on a screen, as ``cellshift bench suite --data`` does.

    Each contender is fitted on the screen's training conditions and scored on the held-out ones (the
    split follows the screen: held-out doubles, a held-out context, or half of one context's
    perturbations; under cross-validation, the default on a screen, every such perturbation is held out
    once), ranked by ``mean_rmse``. Without ``adata`` the
    built-in ``suites`` are benched (``multi-context``, ``combinatorial``, …).

    Args:
        adata: the screen (raw counts are log-normalised), or None with ``suites``.
        methods: ``"all"``, ``"methods"``, ``"baselines"``, or names.
        suites: built-in suites (when ``adata`` is None).
        name: the screen's name in the table.
        scale: size of the synthetic suites (``tiny``, ``small``); also sets the default cells per set.
        seeds: resampling seeds.
        cells: cells per set.
        seed: seed of the split and of trained methods.
        metrics: metric groups computed.
        columns: the table's metrics (``default``, ``celleval-paper`` or names); always in the frame.
        model_options: ``CONTENDER:KEY=VALUE`` settings of trained contenders.
        out: also write ``leaderboard.md``, ``leaderboard.json``, the heat maps and trained runs here;
            when None trained runs go to a temporary folder that is removed.
        shared: the shared data folder of the real suites (default ``$CELLSHIFT_SHARED`` or ``../shared``).
        perturbation_key, control, context_key, value_key, layer: how ``adata`` is annotated.
        protocol: ``"auto"`` (cross-validation on a real screen — ``adata`` or a real suite — and the
            standard split on the synthetic suites), ``"cv"`` or ``"standard"``, as
            ``cellshift bench suite --protocol``. Under cross-validation every metric also has
            ``<metric>_ci_low``/``<metric>_ci_high`` (bootstrap 95 % interval) and ranks may tie.
        folds: cross-validation folds.
        bootstrap: bootstrap resamples of each interval.
        progress: True for a progress bar, False for none, or a callable ``(done, total, text)``.

    Returns:
        One row per (suite, contender), ranked: ``suite``, ``method``, ``kind``, ``rank``, ``status``
        (``scored``/``not_applicable``), ``reason``, ``seconds``, then every metric's mean and, for the
        table's columns, ``<metric>_std``. ``frame.attrs["leaderboard"]`` holds the whole board.
    """
    if adata is None and suites is None:
        raise ValueError("give an AnnData to bench, or built-in suites with suites=['multi-context']")
    description = None
    if adata is not None:
        description = _anndata.describe(
            adata, perturbation_key=perturbation_key, context_key=context_key, value_key=value_key, layer=layer
        )
    suite_names = [] if suites is None else _names(suites).split(",")
    shared = shared if shared is not None else os.environ.get("CELLSHIFT_SHARED", "../shared")
    with reporter(progress, "bench") as callback:
        board_json = _core.bench(
            description,
            name,
            suite_names,
            (perturbation_key, control, context_key, value_key),
            _names(methods),
            scale,
            seeds,
            cells,
            seed,
            metrics,
            columns,
            list(model_options),
            os.fspath(shared),
            None if out is None else os.fspath(out),
            protocol,
            folds,
            bootstrap,
            callback,
        )
    board = json.loads(board_json)
    return _frame(board)


def _frame(board: dict) -> pd.DataFrame:
    table_columns = board["metrics"]
    rows = []
    for suite in board["suites"]:
        for entry in suite["entries"]:
            row = {
                "suite": suite["suite"],
                "method": entry["method"],
                "kind": entry["kind"],
                "rank": entry["rank"],
                "tied": entry.get("tied", False),
                "status": entry["status"],
                "reason": entry.get("reason"),
                "seconds": entry["seconds"],
            }
            for summary in entry.get("summary", []):
                value = summary["mean"]
                row[summary["metric"]] = float("nan") if value is None else value
                if summary["metric"] in table_columns:
                    std = summary["std"]
                    row[summary["metric"] + "_std"] = float("nan") if std is None else std
                    for end in ("ci_low", "ci_high"):
                        if end in summary:
                            bound = summary[end]
                            row[f"{summary['metric']}_{end}"] = float("nan") if bound is None else bound
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["leaderboard"] = board
    return frame
