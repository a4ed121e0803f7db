"""Imports deferred to first use, so that ``irdistill --help`` and light verbs do not pay for the whole stack (pandas,
torch, transformers: seconds of CPU).

``module("pandas")`` stands for the module and imports it on the first attribute read; ``exports(...)`` gives a
package's ``__getattr__`` that imports a name's submodule when the name is first read (PEP 562)."""

from __future__ import annotations

import importlib


class _Deferred:
    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<deferred module {self._name}>"


def module(name: str):
    """``name``, imported on the first attribute read.

    >>> json = module("json")
    >>> json.dumps([1])
    '[1]'
    """
    return _Deferred(name)


def exports(package: str, names: dict[str, str], namespace: dict):
    """A ``__getattr__`` for ``package`` that imports ``names[name]`` (a submodule, relative) when ``name`` is read,
    and keeps the value in ``namespace`` (the package's globals) so it is imported once."""

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name], package), name)
        namespace[name] = value
        return value

    return __getattr__


def names_of(table: dict[str, list[str]]) -> dict[str, str]:
    """``{submodule: [names]}`` turned into ``{name: submodule}``."""
    return {name: sub for sub, names in table.items() for name in names}
