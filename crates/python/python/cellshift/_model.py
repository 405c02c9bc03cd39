"""``cellshift.fit``, ``cellshift.predict`` and :class:`Model`: train, load, save and predict with any
registered method (MapPFN, scDFM, CellTarNet, C3TL) or baseline, on AnnData in memory."""

from __future__ import annotations

import os
from typing import Any, Iterable, Optional, Sequence, Union

from . import _anndata, _core
from ._progress import Progress, reporter

METHODS, BASELINES = (tuple(names) for names in _core.method_names())
"""The registered methods and the baselines."""


def bundled_checkpoint() -> str:
    """The folder of the checkpoint shipped with cellshift (MapPFN pre-trained on SERGIO networks, 50 genes)."""
    return _core.bundled_checkpoint()


def _describe(adata: Any, perturbation_key: str, context_key: Optional[str], value_key: str, layer: Optional[str]) -> dict:
    return _anndata.describe(
        adata, perturbation_key=perturbation_key, context_key=context_key, value_key=value_key, layer=layer
    )


class Model:
    """A fitted or loaded predictor: a method's checkpoint or a fitted baseline.

    Make one with :func:`cellshift.fit` or :meth:`Model.load`; the bundled MapPFN is
    ``Model.load(cellshift.bundled_checkpoint())``.
    """

    def __init__(self, core: Any) -> None:
        self._core = core

    @property
    def method(self) -> str:
        """Method or baseline name."""
        return self._core.method

    @property
    def kind(self) -> str:
        """``"checkpoint"`` (a method's weights) or ``"baseline"``."""
        return self._core.kind

    @property
    def genes(self) -> Optional[list]:
        """The genes the model expects, in its order (None: any genes, used as given)."""
        return self._core.genes

    @classmethod
    def load(cls, directory: Union[str, os.PathLike], *, reference_sampler: bool = False) -> "Model":
        """Loads a checkpoint folder (``cellshift train``/``pretrain``/``finetune``, or :meth:`save`).

        Args:
            directory: the folder.
            reference_sampler: ignore the sampler settings the checkpoint recommends (MapPFN).
        """
        return cls(_core.load_model(os.fspath(directory), reference_sampler))

    def save(self, directory: Union[str, os.PathLike]) -> None:
        """Saves the model into a new (or empty) folder, atomically; :meth:`load` reads it back."""
        self._core.save(os.fspath(directory))

    def predict(
        self,
        adata: Any,
        queries: Union[str, Sequence[str]],
        *,
        context: Optional[str] = None,
        k: int = 8,
        cells: int = 200,
        seed: int = 0,
        value: float = 1.0,
        perturbation_key: str = "perturbation",
        control: Optional[str] = None,
        context_key: Optional[str] = None,
        value_key: str = "treatment_value",
        layer: Optional[str] = None,
        progress: Progress = True,
    ) -> Any:
        """Predicts the cells of ``queries`` in one context of ``adata``, as ``cellshift predict`` does.

        Each query's task holds the context's control cells and ``k`` other perturbations measured
        there. Raw counts are normalised as the model's checkpoint records.

        Args:
            adata: the screen (the model's genes; control cells and measured perturbations of the context).
            queries: perturbation labels to predict (a knock-out's label is its target gene).
            context: the context (needed when ``adata`` has several).
            k: context experiments per query.
            cells: cells per set, and cells predicted per query.
            seed: seed of the cell subsets, the context experiments and the sampling noise.
            value: intervention value of the queries (1 for knock-outs).
            perturbation_key, control, context_key, value_key, layer: how ``adata`` is annotated.
            progress: True for a progress bar, False for none, or a callable ``(done, total, text)``.

        Returns:
            An ``anndata.AnnData`` of predicted cells (``cells`` rows per query; one profile per query
            for pseudo-bulk methods such as C3TL), ``obs[perturbation_key]`` naming the query, and the
            provenance in ``uns["cellshift"]``.
        """
        if isinstance(queries, str):
            queries = [queries]
        columns = (perturbation_key, control, context_key, value_key)
        description = _describe(adata, perturbation_key, context_key, value_key, layer)
        with reporter(progress, f"predict ({self.method})") as callback:
            out = self._core.predict(
                description, columns, list(queries), context, float(value), k, cells, seed, callback
            )
        return _anndata.to_anndata(out)

    def __repr__(self) -> str:
        return f"Model(method={self.method!r}, kind={self.kind!r})"


def fit(
    method: str,
    adata: Any,
    *,
    preset: str = "tiny",
    steps: Optional[int] = None,
    cells: Optional[int] = None,
    batch_size: Optional[int] = None,
    accumulation: Optional[int] = None,
    lr: Optional[float] = None,
    seed: int = 0,
    model_options: Iterable[str] = (),
    run_dir: Optional[Union[str, os.PathLike]] = None,
    model: Union[str, os.PathLike, None] = None,
    k: int = 8,
    perturbation_key: str = "perturbation",
    control: Optional[str] = None,
    context_key: Optional[str] = None,
    value_key: str = "treatment_value",
    layer: Optional[str] = None,
    progress: Progress = True,
) -> Model:
    """Fits a baseline, trains a method, or fine-tunes MapPFN, on every perturbation of ``adata`` (hold
    out what you want to test by leaving it out of ``adata``).

    Args:
        method: a baseline (``cellshift.BASELINES``), a method trained on data (``c3tl``, ``scdfm``,
            ``celltarnet``), or ``mappfn``: the bundled checkpoint (or ``model``) fine-tuned on ``adata``
            as ``cellshift finetune`` does.
        adata: the training screen, used as given (preprocess it first).
        preset: the method's named size (``tiny``, ``small``, ``paper``).
        steps: training length in micro-batches (the method's default when None).
        cells: cells per set of training tasks.
        batch_size, accumulation, lr: items per micro-batch, micro-batches per optimiser update, peak
            learning rate (the method's defaults when None).
        seed: seed of the initial weights and of training.
        model_options: ``KEY=VALUE`` settings of the method's configuration.
        run_dir: folder for the checkpoints (resumed when it holds the same run); a temporary folder,
            removed with the model, when None.
        model: ``mappfn``: the checkpoint folder to fine-tune (default: the bundled one).
        k: ``mappfn``: context experiments per fine-tuning task.
        perturbation_key, control, context_key, value_key, layer: how ``adata`` is annotated.
        progress: True for a progress bar, False for none, or a callable ``(done, total, text)``.

    Returns:
        A :class:`Model`.
    """
    columns = (perturbation_key, control, context_key, value_key)
    description = _describe(adata, perturbation_key, context_key, value_key, layer)
    with reporter(progress, f"fit ({method})") as callback:
        core = _core.fit(
            method,
            description,
            columns,
            preset,
            steps,
            cells,
            (batch_size, accumulation, lr),
            seed,
            list(model_options),
            None if run_dir is None else os.fspath(run_dir),
            None if model is None else os.fspath(model),
            k,
            callback,
        )
    return Model(core)


def predict(
    adata: Any,
    queries: Union[str, Sequence[str], None] = None,
    *,
    method: Optional[str] = None,
    model: Union[Model, str, os.PathLike, None] = None,
    context: Optional[str] = None,
    k: int = 8,
    cells: int = 200,
    seed: int = 0,
    **options: Any,
) -> Any:
    """Predicts perturbations in one context of ``adata``: with ``model`` (a :class:`Model` or a
    checkpoint folder), with a baseline fitted on ``adata`` (``method="context_mean"``, …), or with the
    bundled MapPFN checkpoint (the default, or ``method="mappfn"``).

    Other keyword options are those of :meth:`Model.predict`. Returns the predicted cells as AnnData.
    """
    if queries is None:
        raise ValueError("no queries given; name the perturbations to predict, e.g. queries=['g1']")
    if model is not None:
        fitted = model if isinstance(model, Model) else Model.load(model)
    elif method is None or method == "mappfn":
        fitted = Model.load(bundled_checkpoint())
    elif method in BASELINES:
        keys = {key: options[key] for key in ("perturbation_key", "control", "context_key", "value_key", "layer") if key in options}
        fitted = fit(method, adata, progress=False, **keys)
    else:
        raise ValueError(
            f"method `{method}` needs a trained model: fit it with cellshift.fit({method!r}, adata) and pass "
            f"model=, or give a baseline ({', '.join(BASELINES)}) or mappfn (the bundled checkpoint)"
        )
    return fitted.predict(adata, queries, context=context, k=k, cells=cells, seed=seed, **options)
