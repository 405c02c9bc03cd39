"""Loads libtorch once, before the native module needs it.

cellshift's native module links libtorch 2.11.0 (the version its Rust bindings, ``tch`` 0.24, expect).
One process can hold only one libtorch, so:

* when PyTorch is installed, it must be that same version; cellshift then imports it first and uses its
  libraries (``import torch`` before or after ``import cellshift`` both work);
* a different PyTorch version is refused with a message naming both versions;
* without PyTorch, the libtorch the package was built against is used (found through the module's
  run path), or the one in ``$LIBTORCH`` when that is set.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os

TORCH_VERSION = "2.11.0"
"""The libtorch version the native module is built for."""

# Loaded in dependency order, globally, so the native module's references resolve to them.
_LIBRARIES = ("libc10.so", "libtorch_cpu.so", "libtorch.so")


def installed_torch_version() -> str | None:
    """The version of the installed ``torch`` distribution, or ``None`` when it is not installed."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def _preload(folder: str) -> None:
    for name in _LIBRARIES:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def load() -> str:
    """Makes libtorch available to the native module; returns where it comes from (for messages)."""
    version = installed_torch_version()
    if version is not None:
        if version.split("+")[0] != TORCH_VERSION:
            raise ImportError(
                f"cellshift needs libtorch {TORCH_VERSION}, but torch {version} is installed in this "
                f"environment, and one process can hold only one libtorch. Install torch=={TORCH_VERSION} "
                f"(`pip install torch=={TORCH_VERSION}`) or use cellshift in an environment without torch."
            )
        import torch  # noqa: F401  (its libtorch is the one the native module then binds to)

        return f"torch {version}"
    folder = os.environ.get("LIBTORCH")
    if folder:
        lib = os.path.join(folder, "lib")
        if not os.path.exists(os.path.join(lib, "libtorch_cpu.so")):
            raise ImportError(
                f"LIBTORCH is set to {folder}, but {lib} holds no libtorch_cpu.so; point LIBTORCH at a "
                f"libtorch {TORCH_VERSION} folder (the one with lib/ and include/), or unset it"
            )
        _preload(lib)
        return f"libtorch in {folder}"
    return "the libtorch cellshift was built against"
