"""Every public name documents itself: a summary, its arguments, and an example that runs.

The public names are those of ``diffkit``, ``diffkit.nn``, ``diffkit.nn.functional``,
``diffkit.train`` and ``diffkit.viz`` (their ``__all__``, submodules aside). Functions
and classes whose constructor takes parameters need an ``Args:`` section; every
function and class needs a ``>>>`` example. ``pytest --doctest-modules`` runs the
examples it finds in the modules; an example it cannot find (a docstring attached to
a function built elsewhere, as the custom blocks of ``ir/custom.py``) is run here.
"""

import doctest
import importlib
import inspect
import sys

import pytest

NAMESPACES = ("diffkit", "diffkit.nn", "diffkit.nn.functional", "diffkit.train", "diffkit.viz")


def _public():
    """(qualified name, object) of every public function and class, once per object."""
    seen, out = set(), []
    for module_name in NAMESPACES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [
            n for n in vars(module) if not n.startswith("_")
        ]
        for name in names:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
                continue  # submodules and data (such as ``SCHEMES``) have no docstring
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            out.append((f"{module_name}.{name}", obj))
    return out


PUBLIC = _public()
IDS = [name for name, _ in PUBLIC]


def _doc(obj):
    """The docstring of ``obj``, with its own ``__init__``'s for a class."""
    text = inspect.getdoc(obj) or ""
    if inspect.isclass(obj):
        init = obj.__dict__.get("__init__")
        if init is not None and init.__doc__:
            text += "\n" + inspect.cleandoc(init.__doc__)
    return text


def _parameters(obj):
    """Names of the parameters a caller passes (a class: those of its ``__init__``)."""
    if inspect.isclass(obj):
        init = next((c.__dict__["__init__"] for c in obj.__mro__ if "__init__" in c.__dict__), None)
        if not inspect.isfunction(init):
            return []  # object's or an exception's built-in constructor
        obj = init
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [p for p in signature.parameters if p not in ("self", "cls")]


@pytest.mark.parametrize("name, obj", PUBLIC, ids=IDS)
def test_documented(name, obj):
    text = _doc(obj)
    assert text.strip(), f"{name} has no docstring"
    assert text.strip().splitlines()[0].strip(), f"{name}'s docstring has no summary line"
    if _parameters(obj):
        assert "Args:" in text, f"{name} takes {_parameters(obj)} but has no Args: section"
    assert ">>>" in text, f"{name} has no example"


_FOUND = {}


def _collected_by_pytest(obj):
    """True when doctest's finder, which ``--doctest-modules`` uses, finds ``obj``'s
    examples in ``obj``'s own module."""
    module_name = getattr(obj, "__module__", None) or ""
    module = sys.modules.get(module_name)
    if module is None:
        return False
    if module_name not in _FOUND:
        _FOUND[module_name] = {t.name for t in doctest.DocTestFinder().find(module) if t.examples}
    return f"{module_name}.{getattr(obj, '__qualname__', '')}" in _FOUND[module_name]


UNCOLLECTED = [(name, obj) for name, obj in PUBLIC if not _collected_by_pytest(obj)]


@pytest.mark.parametrize("name, obj", UNCOLLECTED, ids=[n for n, _ in UNCOLLECTED])
def test_uncollected_examples_run(name, obj):
    tests = doctest.DocTestFinder(recurse=False).find(obj, name, globs={})
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0, f"{name}: no example found"
    assert result.failed == 0, f"{name}: {result.failed} example(s) failed"
