"""Adding an op touches one file: a record written in a module of its own (here a
temporary one, imported at test time) is parsed, dispatched from numpy, batched,
differentiated and fuzzed, with no other file changed."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

import diffkit as dk
from diffkit.differentiators.batching import batch_graph
from diffkit.ir.op import unregister

TOY = '''
"""A toy op: softsign x / (1 + |x|)."""

import mpmath
import numpy as np
import sympy

from diffkit.ir.op import ELEMENTWISE, Op, Sample, register
from diffkit.ir.shapes import elementwise_shape

#: a numpy ufunc of its own, so that numpy code can call the op
toy_ufunc = np.frompyfunc(lambda v: v / (1 + abs(v)), 1, 1)


def _impl(x):
    return x / (1 + np.abs(x))


TOY = register(
    Op(
        name="toy_softsign",
        shape=elementwise_shape("toy_softsign"),
        impl=_impl,
        # d/dx x / (1 + |x|) = 1 / (1 + |x|)^2
        vjp=lambda ct, out, x: (ct / (1 + abs(x)) ** 2,),
        jvp=ELEMENTWISE,
        mpmath=lambda x: x / (1 + abs(x)),
        sympy=lambda x: x / (1 + sympy.Abs(x)),
        samples=(Sample(((),), low=0.2), Sample(((3, 4),), low=0.2)),
        analytic=False,
        kind="elementwise",
        names=("toysign",),
        numpy=(toy_ufunc,),
    )
)
'''


@pytest.fixture
def toy(tmp_path):
    path = tmp_path / "toy_ops.py"
    path.write_text(TOY)
    spec = importlib.util.spec_from_file_location("toy_ops", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["toy_ops"] = module
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        unregister("toy_softsign")
        sys.modules.pop("toy_ops", None)


def test_a_record_in_a_new_module_joins_every_front_door_and_feature(toy):
    x = dk.variable("x")
    # the expression language knows it by its names
    f = dk.parse("toysign(x) * toy_softsign(x)")
    assert dk.evaluate(f, {"x": 1.0}) == pytest.approx(0.25)
    # numpy code calling its ufunc builds it
    v = dk.variable("v", (3,))
    node = toy.toy_ufunc(v)
    assert node.op is toy.TOY
    # derivatives from every method agree with the truth 1 / (1 + |x|)^2
    for method in ("reverse", "forward", "central", "symbolic"):
        assert dk.derivative(toy.toy_ufunc(x), "x", {"x": 1.0}, method=method) == pytest.approx(
            0.25, rel=1e-6
        )
    dk.check_grads(dk.sum(toy.toy_ufunc(v) ** 2), {"v": np.array([0.5, -1.0, 2.0])}, order=2)
    # batching derives its rule from the kind: B cases at once equal a loop
    bv = dk.variable("v_batched", (4, 3))
    ((out, batched),) = batch_graph([node], {v: bv}, 4)
    cases = np.random.default_rng(0).standard_normal((4, 3))
    assert batched
    np.testing.assert_allclose(
        dk.evaluate(out, {"v_batched": cases}), cases / (1 + np.abs(cases)), rtol=1e-15
    )
    # the random-expression fuzzer draws it
    from test_random_expressions import vocabulary

    assert "toy_softsign" in vocabulary()[1]


def test_the_op_is_registered_while_its_module_is_loaded(toy):
    assert "toy_softsign" in dk.registry()


def test_the_toy_is_gone_afterwards():
    assert "toy_softsign" not in dk.registry()
    with pytest.raises(dk.ParseError, match="unknown function 'toysign'"):
        dk.parse("toysign(x)")
