"""Every public name in the package says what it is for: module-level functions and classes, and their public methods
(names without a leading underscore, or listed in `__all__`). Fast: imports the modules, runs nothing."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import sqnxt_edge

# Modules that do something when imported (the CLI entry point runs the app).
NOT_IMPORTED = {"sqnxt_edge.__main__"}


def _modules() -> tuple[list, list[str]]:
    """(the package's importable modules, the ones skipped because an optional extra is missing)."""
    found, skipped = [], []
    for info in pkgutil.walk_packages(sqnxt_edge.__path__, "sqnxt_edge."):
        if info.name in NOT_IMPORTED:
            continue
        try:
            found.append(importlib.import_module(info.name))
        except ModuleNotFoundError as exc:  # an extra (tflite, openvino ...) is not installed here
            if (exc.name or "").startswith("sqnxt_edge"):
                raise
            skipped.append(f"{info.name} (needs {exc.name})")
    return found, skipped


def _own_doc(obj) -> str:
    """The docstring written on `obj` itself (a dataclass's or NamedTuple's generated signature does not count)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if inspect.isclass(obj) and doc and doc.startswith(f"{obj.__name__}("):
        return ""
    return (doc or "").strip()


def _public(name: str, exported: set[str]) -> bool:
    return not name.startswith("_") or name in exported


def _method_doc(cls, name: str, attr) -> str:
    """A method's docstring; an override may rely on the one of the method it overrides (nn.Module.forward ...)."""
    if isinstance(attr, property):
        return (attr.fget.__doc__ or "").strip() if attr.fget else ""
    func = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
    return (inspect.getdoc(getattr(cls, name, func)) or "").strip()


def _undocumented(module) -> list[str]:
    exported = set(getattr(module, "__all__", ()))
    missing, seen = [], set()
    for name, obj in vars(module).items():
        if not _public(name, exported) or getattr(obj, "__module__", None) != module.__name__ or id(obj) in seen:
            continue  # private, imported from elsewhere (checked where it is defined), or an alias of a checked one
        seen.add(id(obj))
        if callable(obj) and not inspect.isclass(obj) and not _own_doc(obj):  # functions, lru_cache wrappers
            missing.append(f"{module.__name__}.{name}")
        if not inspect.isclass(obj):
            continue
        if not _own_doc(obj):
            missing.append(f"{module.__name__}.{name}")
        for attr_name, attr in vars(obj).items():
            kinds = (property, classmethod, staticmethod)
            if attr_name.startswith("_") or not (inspect.isfunction(attr) or isinstance(attr, kinds)):
                continue
            if not _method_doc(obj, attr_name, attr):
                missing.append(f"{module.__name__}.{name}.{attr_name}")
    return missing


def test_every_public_name_has_a_docstring():
    modules, skipped = _modules()
    assert len(modules) > 50, f"found only {len(modules)} modules (skipped: {skipped})"
    missing = [name for module in modules for name in _undocumented(module)]
    assert not missing, f"{len(missing)} public names without a docstring:\n  " + "\n  ".join(missing)


def test_the_check_sees_a_missing_docstring():
    """The walker itself: a public function, class, method and property without a docstring are all reported."""
    import types

    module = types.ModuleType("fake_module")

    def documented():
        """Here."""

    def bare():
        pass

    class Bare:
        def method(self):
            pass

        @property
        def prop(self):
            return 1

        def _private(self):
            pass

    for obj in (documented, bare, Bare):
        obj.__module__ = module.__name__
        setattr(module, obj.__name__, obj)
    assert _undocumented(module) == [
        "fake_module.bare",
        "fake_module.Bare",
        "fake_module.Bare.method",
        "fake_module.Bare.prop",
    ]
