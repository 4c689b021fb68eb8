"""The method registry: name -> Method (see `acc_core.methods.base`).

One file per method; this dict is the single source of the method names that the CLI's
choices, the app's widgets and the tests' parametrization read. Modules are imported lazily
so that `import acc_core.methods` stays cheap.
"""

from __future__ import annotations

import importlib

from acc_core.methods.base import Method

# name -> module that defines `METHOD` (an instance of a Method subclass)
_MODULES: dict[str, str] = {
    "acc": "acc_core.methods.acc",
    "hue_infonce": "acc_core.methods.infonce",
    "hue_infonce_ref": "acc_core.methods.infonce",
    "lord": "acc_core.methods.lord",
    "beta_vae": "acc_core.methods.vae",
    "ml_vae": "acc_core.methods.vae",
    "ada_gvae": "acc_core.methods.vae",
    "mixing": "acc_core.methods.mixing",
    "rci": "acc_core.methods.rci",
    "acc_pose": "acc_core.methods.acc_pose",
}
_LOADED: dict[str, Method] = {}


def names() -> list[str]:
    """Every registered method, in the order pickers show them."""
    return list(_MODULES)


def get(name: str) -> Method:
    if name not in _MODULES:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(_MODULES)}")
    if name not in _LOADED:
        module = importlib.import_module(_MODULES[name])
        found = getattr(module, "METHODS", None) or {module.METHOD.name: module.METHOD}
        _LOADED.update(found)
    return _LOADED[name]


def all_methods() -> list[Method]:
    return [get(n) for n in names()]


__all__ = ["Method", "all_methods", "get", "names"]
