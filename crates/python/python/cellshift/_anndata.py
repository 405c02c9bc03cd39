"""AnnData to and from the plain description the native module reads and writes.

The expression matrix is handed over as it is (a float32/float64 NumPy array, or the ``data``,
``indices`` and ``indptr`` arrays of a SciPy CSR/CSC matrix); the native module copies it once, keeping
sparse data sparse, and hands sparse results back as SciPy CSR matrices. Only the ``obs`` columns the conventions read are converted (categoricals as codes and
categories). The caller's AnnData is never modified.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
import scipy.sparse

from . import _core

AUTO_CONTEXT_COLUMNS = tuple(_core.AUTO_CONTEXT_COLUMNS)
"""``obs`` columns tried, in order, as the context when none is named."""


def _matrix(x: Any) -> Any:
    if scipy.sparse.issparse(x):
        if x.format not in ("csr", "csc"):
            x = x.tocsr()
        data = x.data if x.data.dtype in (np.float32, np.float64) else x.data.astype(np.float32)
        index_type = lambda a: a if a.dtype in (np.int32, np.int64) else a.astype(np.int64)  # noqa: E731
        return {
            "format": x.format,
            "data": data,
            "indices": index_type(x.indices),
            "indptr": index_type(x.indptr),
        }
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    return x


def _column(series: pd.Series) -> tuple:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return (
            "categorical",
            series.cat.codes.to_numpy().astype(np.int32, copy=False),
            [str(c) for c in dtype.categories],
            bool(dtype.ordered),
        )
    if pd.api.types.is_bool_dtype(dtype):
        return ("bool", series.to_numpy(dtype=bool))
    if pd.api.types.is_integer_dtype(dtype):
        return ("i64", series.to_numpy(dtype=np.int64))
    if pd.api.types.is_float_dtype(dtype):
        return ("f64", series.to_numpy(dtype=np.float64))
    # Strings (object or string dtype): as a categorical, so missing values are seen as missing.
    categorical = pd.Categorical(series.to_numpy())
    return (
        "categorical",
        categorical.codes.astype(np.int32, copy=False),
        [str(c) for c in categorical.categories],
        False,
    )


def describe(
    adata: Any,
    *,
    perturbation_key: str,
    context_key: Optional[str],
    value_key: str,
    layer: Optional[str] = None,
) -> dict:
    """The description of ``adata`` the native module reads (the expression of ``layer`` or ``X``)."""
    if not hasattr(adata, "obs") or not hasattr(adata, "var"):
        raise TypeError(f"expected an anndata.AnnData, got {type(adata).__name__}")
    if layer is not None:
        if layer not in adata.layers:
            raise ValueError(
                f"layer `{layer}` not found; available layers: {', '.join(adata.layers.keys()) or '(none)'}; "
                "name an existing layer, or layer=None for X"
            )
        x = adata.layers[layer]
    else:
        x = adata.X
        if x is None:
            raise ValueError("the AnnData has no X matrix; name the layer that holds the expression with layer=")
    wanted = {perturbation_key, value_key}
    wanted.update([context_key] if context_key is not None else AUTO_CONTEXT_COLUMNS)
    obs = adata.obs
    columns = {str(name): _column(obs[name]) for name in obs.columns if name in wanted}
    return {
        "x": _matrix(x),
        "obs_names": [str(n) for n in adata.obs_names],
        "var_names": [str(n) for n in adata.var_names],
        "obs_columns": [str(c) for c in obs.columns],
        "obs": columns,
    }


def _nan_for_none(value: Any) -> Any:
    if value is None:
        return float("nan")
    if isinstance(value, dict):
        return {k: _nan_for_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_for_none(v) for v in value]
    return value


def to_anndata(description: dict) -> Any:
    """An ``anndata.AnnData`` from a description the native module returned (``X`` is not copied)."""
    import anndata

    obs = pd.DataFrame(index=pd.Index(description["obs_names"]))
    for name, spec in description["obs"].items():
        kind = spec[0]
        if kind == "categorical":
            obs[name] = pd.Categorical.from_codes(spec[1], categories=spec[2], ordered=spec[3])
        elif kind == "str":
            obs[name] = spec[1]
        else:
            obs[name] = np.asarray(spec[1])
    var = pd.DataFrame(index=pd.Index(description["var_names"]))
    x = description["X"]
    if isinstance(x, dict):
        x = scipy.sparse.csr_matrix((x["data"], x["indices"], x["indptr"]), shape=tuple(x["shape"]))
    return anndata.AnnData(X=x, obs=obs, var=var, uns=_nan_for_none(description["uns"]))
