"""``cellshift.simulate``: synthetic screens from the priors and the benchmark suites, in memory."""

from __future__ import annotations

import json
from typing import Any, Optional

from . import _anndata, _core
from ._progress import Progress, reporter


def simulate(
    prior: str = "sergio",
    *,
    seed: int = 0,
    contexts: int = 1,
    genes: Optional[int] = None,
    cells: Optional[int] = None,
    log_normalize: bool = False,
    clean: bool = False,
    paired: Optional[bool] = None,
    suite: Optional[str] = None,
    scale: str = "tiny",
    grns: int = 1,
    cell_types: Optional[int] = None,
    doubles: Optional[int] = None,
    progress: Progress = True,
) -> Any:
    """Simulates a screen as ``cellshift simulate`` does; ``obs`` has ``perturbation``, ``context`` and
    ``treatment_value``, the control label is ``control``.

    Args:
        prior: ``"sergio"`` (random scale-free networks simulated with SERGIO, raw counts with 10x-like
            noise) or ``"linear"`` (linear structural causal models). Ignored with ``suite``.
        seed: seed; network (context) i uses seed + i. The same seed gives the same screen.
        contexts: networks, one context each; every gene is knocked out once in each, plus the control.
        genes: genes per network (default 50 for SERGIO, 20 for linear).
        cells: cells per condition (default 200 for SERGIO, 500 for linear).
        log_normalize: SERGIO: normalise each network (median total, natural log1p).
        clean: SERGIO: expression without technical noise.
        paired: paired noise across conditions (default: paired for SERGIO, unpaired for linear).
        suite: a benchmark suite instead: ``"multi-context"`` or ``"combinatorial"`` (statistics in
            ``uns["cellshift"]["suite_stats"]``).
        scale: suite size, ``"tiny"`` or ``"small"``.
        grns, cell_types, doubles: suite sizes (networks; cell types per network; double knock-outs).
        progress: True for a progress bar, False for none, or a callable ``(done, total, text)``.

    Returns:
        An ``anndata.AnnData``.
    """
    with reporter(progress, "simulate") as callback:
        if suite is not None:
            description, stats = _core.simulate_suite(
                suite, scale, seed, grns, cell_types, doubles, genes, cells, callback
            )
        else:
            description = _core.simulate(
                prior, contexts, genes, cells, seed, log_normalize, clean, paired, callback
            )
            stats = None
    adata = _anndata.to_anndata(description)
    if stats is not None:
        adata.uns["cellshift"]["suite_stats"] = _anndata._nan_for_none(json.loads(stats))
    return adata
