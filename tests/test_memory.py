"""The caching allocator compiled programs run with (diffkit.memory): steady-state runs
take no memory from the system, the handler is scoped to the program's run, recycled
blocks are zeroed where numpy asks for zeros, and the cache's limit is kept."""

from __future__ import annotations

import gc
import os
import threading

import numpy as np
import pytest

import diffkit as dk
from diffkit import memory

pytestmark = pytest.mark.skipif(not memory.available(), reason="no cache in this build")


def _handler(a: np.ndarray) -> str:
    try:
        from numpy._core.multiarray import get_handler_name  # numpy >= 2
    except ImportError:
        from numpy.core.multiarray import get_handler_name
    return get_handler_name(a)


@pytest.fixture(autouse=True)
def _fresh_cache():
    gc.collect()  # arrays of earlier tests, freed later, would come back into the cache
    memory.release_cache(1 << 30)
    yield
    memory.release_cache(1 << 30)


def _step_program():
    x = dk.variable("x", (64, 300))
    w = dk.variable("w", (300, 200))
    loss = dk.sum(dk.tanh(x @ w) ** 2)
    return dk.compile([loss] + dk.vjp_graph([loss], [dk.const(1.0)], [w])), {
        "x": np.random.default_rng(0).standard_normal((64, 300)),
        "w": np.random.default_rng(1).standard_normal((300, 200)),
    }


def test_repeated_runs_take_no_memory_from_the_system():
    program, at = _step_program()
    first = program(at)
    program(at)  # its outputs, while the first run's are still held, take new blocks
    before = memory.cache_info()
    assert before.misses > 0 and before.held > 0
    for _ in range(3):
        program(at)
    after = memory.cache_info()
    again = program(at)
    assert after.misses == before.misses  # every large block came from the cache
    assert after.hits > before.hits
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_the_cache_is_installed_for_the_run_only():
    program, at = _step_program()
    out = program(at)
    assert _handler(out[1]) == "diffkit_cache"  # returned arrays come from it
    assert _handler(np.empty(100_000)) != "diffkit_cache"  # outside the run: numpy's
    seen = {}

    def other_thread():
        seen["name"] = _handler(np.empty(100_000))

    with memory.owned_memory():
        assert _handler(np.empty(100_000)) == "diffkit_cache"
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert seen["name"] != "diffkit_cache"  # other threads keep their own handler


def test_small_programs_do_not_install_it():
    x = dk.variable("x", (10,))
    assert dk.compile(dk.sum(x * x))._memory is not memory.owned_memory
    assert _step_program()[0]._memory is memory.owned_memory


def test_recycled_blocks_are_zeroed_for_zeros_and_keep_their_size():
    with memory.owned_memory():
        a = np.full(50_000, 7.0)
        del a
        hits = memory.cache_info().hits
        z = np.zeros(50_000)
        assert memory.cache_info().hits == hits + 1
        assert not z.any()
        big = np.full(60_000, 3.0)  # a larger request does not take the smaller block
        assert (big == 3.0).all()
        grown = np.resize(big, 120_000)  # numpy's realloc path
        assert (grown == 3.0).all()


def test_limit_and_release():
    with memory.owned_memory():
        blocks = [np.ones(20_000) for _ in range(4)]  # 160 kB each
    del blocks
    assert memory.cache_info().held == 4 * 160_000
    memory.release_cache()
    assert memory.cache_info().held == 0
    memory.release_cache(200_000)
    with memory.owned_memory():
        blocks = [np.ones(20_000) for _ in range(4)]
    del blocks
    assert memory.cache_info().held == 160_000  # one block fits under the limit
    memory.release_cache(0)
    with memory.owned_memory():
        np.ones(20_000)
    assert memory.cache_info().held == 0
    for bad in (-1, 1.5, True, "1 GB"):
        with pytest.raises(ValueError, match="limit"):
            memory.release_cache(bad)


def _run_step_program():
    program, at = _step_program()
    first = program(at)
    return float(first[0]), float(program(at)[0])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_uses_the_cache_it_inherited():
    import multiprocessing

    expected = _run_step_program()  # the parent's cache holds blocks now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_run_step_program).get(timeout=60) == expected
