"""``cellshift.preprocess``: normalise, log1p, gene panel or highly variable genes (scanpy parity)."""

from __future__ import annotations

from typing import Any, Optional, Union

from . import _anndata, _core
from ._progress import Progress, reporter


def _normalize_option(normalize: Union[str, float, None]) -> str:
    if normalize is None or normalize is False:
        return "none"
    if isinstance(normalize, (int, float)) and not isinstance(normalize, bool):
        return repr(float(normalize))
    return str(normalize)


def _log_option(log1p: Union[bool, str, int, None]) -> str:
    if log1p is True:
        return "e"
    if log1p is None or log1p is False:
        return "none"
    return str(log1p)


def preprocess(
    adata: Any,
    *,
    normalize: Union[str, float, None] = "median",
    log1p: Union[bool, str, int, None] = True,
    hvg: Optional[int] = None,
    hvg_drop_perturbed: bool = False,
    panel: Optional[int] = None,
    keep_unencodable: bool = False,
    min_cells: Optional[int] = None,
    pseudobulk: bool = False,
    seed: int = 42,
    perturbation_key: str = "perturbation",
    control: Optional[str] = None,
    context_key: Optional[str] = None,
    value_key: str = "treatment_value",
    layer: Optional[str] = None,
    progress: Progress = True,
) -> Any:
    """Preprocesses a screen as ``cellshift preprocess`` does (scanpy 1.11 parity); the input is not changed.

    Args:
        adata: the screen (raw counts for normalisation and HVG).
        normalize: ``"median"`` (of the per-cell totals, scanpy's default), a target sum such as 1e4,
            or None.
        log1p: True (natural log), 2, 10, or False.
        hvg: keep this many highly variable genes (scanpy ``seurat_v3`` on the counts); the measured
            perturbed genes are kept first unless ``hvg_drop_perturbed``.
        hvg_drop_perturbed: scanpy's plain top genes.
        panel: select the MapPFN gene panel of this many genes.
        keep_unencodable: with ``panel``, keep treatments whose target is not a panel gene.
        min_cells: drop treatments with fewer cells.
        pseudobulk: also return pseudo-bulk means per (context, treatment), with ``obs["n_cells"]``.
        seed: seed of the split that scores panel genes.
        perturbation_key, control, context_key, value_key, layer: how ``adata`` is annotated (see
            :func:`cellshift.evaluate`).
        progress: True for a progress bar, False for none, or a callable ``(done, total, text)``.

    Returns:
        The processed AnnData (``uns["cellshift"]["preprocess"]`` lists the steps), and with
        ``pseudobulk=True`` a pair (processed, pseudo-bulk).
    """
    columns = (perturbation_key, control, context_key, value_key)
    description = _anndata.describe(
        adata, perturbation_key=perturbation_key, context_key=context_key, value_key=value_key, layer=layer
    )
    with reporter(progress, "preprocess") as callback:
        processed, bulk, steps = _core.preprocess(
            description,
            columns,
            _normalize_option(normalize),
            _log_option(log1p),
            hvg,
            hvg_drop_perturbed,
            panel,
            keep_unencodable,
            min_cells,
            pseudobulk,
            seed,
            callback,
        )
    out = _anndata.to_anndata(processed)
    out.uns.setdefault("cellshift", {})["preprocess"] = list(steps)
    _carry_annotations(adata, out)
    if pseudobulk:
        return out, _anndata.to_anndata(bulk)
    return out


def _carry_annotations(source: Any, out: Any) -> None:
    """Copies the caller's other ``obs`` and ``var`` columns onto the cells and genes that were kept."""
    obs = source.obs.reindex(out.obs_names)
    for name in obs.columns:
        if name not in out.obs.columns:
            out.obs[name] = obs[name].to_numpy()
    var = source.var.reindex(out.var_names)
    for name in var.columns:
        if name not in out.var.columns:
            out.var[name] = var[name].to_numpy()
