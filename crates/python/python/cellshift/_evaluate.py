"""``cellshift.evaluate``: score predicted against real cells, both AnnData in memory."""

from __future__ import annotations

import json
import math
from typing import Any, Optional

import pandas as pd

from . import _anndata, _core
from ._progress import Progress, reporter


def _number(value: Any) -> Any:
    return float("nan") if value is None else value


class Evaluation:
    """The scores of one prediction, as ``cellshift evaluate`` reports them.

    Attributes:
        report: the whole report, the JSON of ``cellshift evaluate --json`` as a dict (NaN as None).
        per_perturbation: one row per perturbation (index: its label), one column per scalar metric.
        summary: metric name → value: the ``mean`` block (over perturbations) and the ``global`` block.
        cell_eval: cell-eval's per-perturbation table (its column names), or None when not computed.
    """

    def __init__(self, report_json: str) -> None:
        self._json = report_json
        self.report: dict = json.loads(report_json)
        rows = {}
        for entry in self.report["per_perturbation"]:
            values = {k: _number(v) for k, v in entry.items() if k != "name" and not isinstance(v, list)}
            rows[entry["name"]] = values
        self.per_perturbation = pd.DataFrame.from_dict(rows, orient="index")
        self.per_perturbation.index.name = "perturbation"
        self.summary: dict = {k: _number(v) for k, v in self.report["mean"].items()}
        self.summary.update(
            {k: (v if isinstance(v, list) else _number(v)) for k, v in self.report["global"].items()}
        )
        block = self.report.get("cell_eval") or {}
        if block.get("status") == "ok":
            table = {name: {k: _number(v) for k, v in values.items()} for name, values in block["per_perturbation"].items()}
            self.cell_eval: Optional[pd.DataFrame] = pd.DataFrame.from_dict(table, orient="index")
            self.cell_eval.index.name = "perturbation"
        else:
            self.cell_eval = None

    def to_json(self) -> str:
        """The report as the command line writes it (``cellshift evaluate --json``)."""
        return self._json

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={v:.4g}" for k, v in list(self.summary.items())[:4] if isinstance(v, float) and not math.isnan(v)
        )
        return f"Evaluation({len(self.per_perturbation)} perturbations; {shown}, …)"


def evaluate(
    pred: Any,
    real: Any,
    *,
    perturbation_key: str = "perturbation",
    control: Optional[str] = None,
    context_key: Optional[str] = None,
    context: Optional[str] = None,
    metrics: str = "mappfn,celleval",
    allow_scale_mismatch: bool = False,
    value_key: str = "treatment_value",
    layer: Optional[str] = None,
    max_set_cells: int = 500,
    subsample_seed: int = 0,
    progress: Progress = True,
) -> Evaluation:
    """Scores predicted cells against real ones, exactly as ``cellshift evaluate --pred --real`` does.

    The real control cells of the context are the observational set; every perturbation of ``real``
    must have predicted cells in ``pred`` (same genes, same labels).

    Args:
        pred: predicted cells (``anndata.AnnData``; dense or CSR/CSC ``X``).
        real: real cells, with the control cells.
        perturbation_key: ``obs`` column with each cell's perturbation label.
        control: the control label; None detects it (``control``, ``ctrl``, ``non-targeting``, …).
        context_key: ``obs`` column with the context; None uses ``context``/``cell_type``/… when present.
        context: the context to score (needed when the data hold several).
        metrics: metric groups: ``mappfn``, ``celleval``, ``de``, ``perturbench``, ``systema``,
            ``distribution`` or ``all``, comma-separated.
        allow_scale_mismatch: score raw counts against log-normalised values anyway.
        value_key: ``obs`` column with intervention values (optional).
        layer: read the expression from this layer instead of ``X``.
        max_set_cells: cells of each set (controls, each perturbation's real and predicted cells) that
            the distribution metrics (W2, MMD, energy, E-distance) see; larger sets are subsampled with
            ``subsample_seed``, as ``cellshift evaluate --max-set-cells`` does. 0 keeps every cell.
        subsample_seed: seed of that subsampling.
        progress: True for a progress bar, False for none, or a callable ``(done, total, text)``.

    Returns:
        An :class:`Evaluation`.
    """
    columns = (perturbation_key, control, context_key, value_key)
    describe = lambda a: _anndata.describe(  # noqa: E731
        a, perturbation_key=perturbation_key, context_key=context_key, value_key=value_key, layer=layer
    )
    with reporter(progress, "evaluate") as callback:
        report = _core.evaluate(
            describe(pred),
            describe(real),
            columns,
            context,
            metrics,
            allow_scale_mismatch,
            max_set_cells,
            subsample_seed,
            callback,
        )
    return Evaluation(report)
