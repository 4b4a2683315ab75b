"""Who gets the cores (diffkit.parallel): the compiled loops within a program that runs
direct convolutions, numpy's BLAS everywhere else; and the BLAS thread count is given back."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit import parallel
from diffkit.ops import native


def test_threads_follow_the_environment(monkeypatch):
    monkeypatch.setenv("DIFFKIT_THREADS", "3")
    assert parallel.threads() == 3
    monkeypatch.setenv("DIFFKIT_THREADS", "0")
    assert parallel.threads() == 1
    monkeypatch.setenv("DIFFKIT_THREADS", "many")  # not a number: the cores
    assert parallel.threads() >= 1


def test_kernels_share_cores_only_within_parallel_kernels(monkeypatch):
    monkeypatch.setenv("DIFFKIT_THREADS", "2")
    before = parallel.blas_threads()
    assert native.threads() == 1
    with parallel.parallel_kernels():
        assert native.threads() == 2
        if before is not None:
            assert parallel.blas_threads() == 1
    assert native.threads() == 1
    assert parallel.blas_threads() == before


def test_one_thread_leaves_blas_alone(monkeypatch):
    monkeypatch.setenv("DIFFKIT_THREADS", "1")
    before = parallel.blas_threads()
    with parallel.parallel_kernels():
        assert native.threads() == 1
        assert parallel.blas_threads() == before


def _conv_program(stride):
    x = dk.variable("x", (2, 3, 12, 12))
    w = dk.variable("w", (4, 3, 3, 3))
    return dk.compile(dk.sum(dk.conv2d(x, w, stride=stride) ** 2))


def test_which_programs_take_the_cores():
    assert _conv_program(1)._blas is parallel.parallel_kernels  # direct convolution
    assert _conv_program(5)._blas is not parallel.parallel_kernels  # stride 5: im2col, matmul
    x = dk.variable("x", (50, 50))
    assert dk.compile(dk.sum(x @ x))._blas is not parallel.parallel_kernels


def test_a_refused_run_leaves_blas_and_the_kernels_as_they_were(monkeypatch):
    monkeypatch.setenv("DIFFKIT_THREADS", "2")
    before = parallel.blas_threads()
    program = _conv_program(1)
    with pytest.raises(dk.EvaluationError):
        program({"x": np.ones((2, 3, 12, 13)), "w": np.ones((4, 3, 3, 3))})
    assert parallel.blas_threads() == before
    assert native.threads() == 1


def test_more_threads_than_the_pool_has_are_capped(monkeypatch):
    monkeypatch.setenv("DIFFKIT_THREADS", "500")
    x = np.random.default_rng(0).standard_normal((130, 1, 6, 6)).astype(np.float32)
    w = np.ones((2, 1, 3, 3), np.float32)
    with parallel.parallel_kernels():
        assert len(native._ranges(130, 10**9)) == native.MAX_THREADS
        if native._DIRECT:
            fast = native.conv_direct(x, w, None, (1, 1), (0, 0), (4, 4))
            with native.use_native(False):
                from diffkit.ops.convolution import _direct_impl

                slow = _direct_impl(x, w, stride=(1, 1), padding=(0, 0))
            np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
