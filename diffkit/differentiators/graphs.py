"""A small cache of derivative graphs, so that repeated calls build each graph once; safe
to use from several threads (two threads asking for the same graph at once may both build
it, and both get the one remembered first)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable

from ..ir.node import Node

__all__ = ["cached_graph", "clear_cache"]

_CACHE: "OrderedDict[tuple, tuple[Any, Any]]" = OrderedDict()
_LOCK = threading.Lock()
_SIZE = 256


def cached_graph(key: tuple, build: Callable[[], Any]):
    """``build()``, remembered under ``key``; nodes in the key are held so their ids stay valid."""
    ident = tuple(id(k) if isinstance(k, Node) else k for k in key)
    with _LOCK:
        hit = _CACHE.get(ident)
        if hit is not None:
            _CACHE.move_to_end(ident)
            return hit[1]
    value = build()  # outside the lock: building can take long, and may use the cache
    with _LOCK:
        hit = _CACHE.get(ident)
        if hit is not None:
            _CACHE.move_to_end(ident)
            return hit[1]
        _CACHE[ident] = (key, value)
        if len(_CACHE) > _SIZE:
            _CACHE.popitem(last=False)
    return value


def clear_cache() -> None:
    """Forget every remembered graph."""
    with _LOCK:
        _CACHE.clear()
