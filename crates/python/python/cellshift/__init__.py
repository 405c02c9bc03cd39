"""cellshift: predict how cells respond to genetic perturbations, on AnnData in memory.

Every function takes and returns ``anndata.AnnData`` (dense or CSR/CSC ``X``) and ``pandas`` objects,
runs the same Rust code as the ``cellshift`` command line (same numbers, same messages), releases the GIL
while it works, shows a progress bar on long calls (``progress=False`` hides it) and stops on Ctrl-C.
Nothing is written to disk unless asked. The caller's AnnData is never modified.

    import cellshift
    screen = cellshift.simulate("sergio", seed=1, log_normalize=True)
    pred = cellshift.predict(screen, queries=["g3", "g7"], k=4)     # bundled MapPFN
    scores = cellshift.evaluate(pred, real)
    scores.summary["w2"], scores.per_perturbation
"""

from ._libtorch import TORCH_VERSION, load as _load_libtorch

LIBTORCH_SOURCE = _load_libtorch()
"""Where this process's libtorch came from (``torch X`` or the one cellshift was built against)."""

from . import _core  # noqa: E402  (after libtorch is loaded)
from ._bench import bench  # noqa: E402
from ._evaluate import Evaluation, evaluate  # noqa: E402
from ._model import BASELINES, METHODS, Model, bundled_checkpoint, fit, predict  # noqa: E402
from ._preprocess import preprocess  # noqa: E402
from ._simulate import simulate  # noqa: E402

set_threads = _core.set_threads

__all__ = [
    "BASELINES",
    "Evaluation",
    "LIBTORCH_SOURCE",
    "METHODS",
    "Model",
    "TORCH_VERSION",
    "bench",
    "bundled_checkpoint",
    "evaluate",
    "fit",
    "predict",
    "preprocess",
    "set_threads",
    "simulate",
]
