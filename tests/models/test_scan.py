"""The Mamba scan: parallel (blocked associative) scan == sequential reference, values and
gradients, on random shapes; the final-state reduction == the last state of the reference."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.models.mamba import MambaConfig, MambaForecaster, ResidualBlock
from causalcast.models.scan import (
    chunk_size,
    final_state,
    parallel_scan,
    selective_last,
    selective_scan,
    sequential_scan,
)

shapes = st.tuples(st.integers(1, 3), st.integers(1, 130), st.integers(1, 5),
                   st.integers(1, 4))


def _inputs(shape, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=dtype)          # decays in [0, 1)
    b = torch.randn(shape, generator=g, dtype=dtype)
    return a, b


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), double=st.booleans())
def test_parallel_scan_equals_sequential_reference(shape, seed, double):
    a, b = _inputs(shape, seed, torch.float64 if double else torch.float32)
    torch.testing.assert_close(parallel_scan(a, b), sequential_scan(a, b),
                               rtol=1e-5, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_parallel_scan_gradients_equal_reference(shape, seed):
    a, b = _inputs(shape, seed, torch.float64)
    w = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    grads = []
    for scan in (parallel_scan, sequential_scan):
        a_, b_ = a.clone().requires_grad_(), b.clone().requires_grad_()
        (scan(a_, b_) * w).sum().backward()
        grads.append((a_.grad, b_.grad))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_final_state_equals_last_reference_state(shape, seed):
    bsz, length, d, n = shape
    g = torch.Generator().manual_seed(seed)
    delta = torch.rand(bsz, length, d, generator=g, dtype=torch.float64) * 2
    A = -torch.rand(d, n, generator=g, dtype=torch.float64) * 8
    b = torch.randn(bsz, length, d, n, generator=g, dtype=torch.float64)
    a = torch.exp(delta.unsqueeze(-1) * A)
    torch.testing.assert_close(final_state(delta, A, b), sequential_scan(a, b)[:, -1],
                               rtol=1e-10, atol=1e-10)


def test_chunk_size_prefers_divisors():
    assert chunk_size(60) in (6, 10) and 60 % chunk_size(60) == 0
    assert chunk_size(64) == 8
    assert chunk_size(97) >= 2  # prime: padded


def test_block_last_only_matches_full_sequence():
    torch.manual_seed(0)
    cfg = MambaConfig(n_features=3, n_horizons=2, lookback=40, d_model=8, d_state=4)
    block = ResidualBlock(cfg).double()
    x = torch.randn(4, 40, 8, dtype=torch.float64)
    torch.testing.assert_close(block(x, last_only=True)[:, 0], block(x)[:, -1])


def test_mamba_init_is_standard_and_complete():
    cfg = MambaConfig(n_features=3, n_horizons=2, lookback=20, d_model=16, d_state=4,
                      dt_min=1e-3, dt_max=1e-1)
    model = MambaForecaster(cfg)
    keys = set(model.state_dict())
    model(torch.randn(2, 20, 3))
    assert set(model.state_dict()) == keys  # nothing built on the first batch
    mixer = model.layers[0].mixer
    A = -torch.exp(mixer.A_log)
    torch.testing.assert_close(A[0], -torch.arange(1, 5, dtype=torch.float32))  # S4D-real
    dt = torch.nn.functional.softplus(mixer.dt_proj.bias)
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 1e-1 * 1.001
    assert cfg.dt_rank == 1


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_selective_last_equals_reference_values_and_gradients(shape, seed):
    bsz, length, d, n = shape
    g = torch.Generator().manual_seed(seed)
    delta = (torch.rand(bsz, length, d, generator=g, dtype=torch.float64) * 2)
    A = -torch.rand(d, n, generator=g, dtype=torch.float64) * 8
    v = torch.randn(bsz, length, d, generator=g, dtype=torch.float64)
    B = torch.randn(bsz, length, n, generator=g, dtype=torch.float64)
    c = torch.randn(bsz, n, generator=g, dtype=torch.float64)
    w = torch.randn(bsz, d, generator=g, dtype=torch.float64)

    def reference(delta, A, v, B, c):
        h = sequential_scan(torch.exp(delta.unsqueeze(-1) * A), v.unsqueeze(-1) * B.unsqueeze(2))
        return torch.einsum("bdn,bn->bd", h[:, -1], c)

    grads = []
    for fn in (selective_last, reference):
        args = [t.clone().requires_grad_() for t in (delta, A, v, B, c)]
        out = fn(*args)
        (out * w).sum().backward()
        grads.append((out.detach(), *(t.grad for t in args)))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-9)


def test_causal_conv_is_causal():
    torch.manual_seed(1)
    cfg = MambaConfig(n_features=3, n_horizons=2, lookback=30, d_model=8, d_conv=4)
    mixer = MambaForecaster(cfg).layers[0].mixer
    u = torch.randn(3, 30, cfg.d_inner)
    u2 = u.clone()
    u2[:, 20:] += 1.0                       # change the future ...
    torch.testing.assert_close(mixer._causal_conv(u2)[:, :20], mixer._causal_conv(u)[:, :20])
    assert not torch.allclose(mixer._causal_conv(u2)[:, 20], mixer._causal_conv(u)[:, 20])


@settings(max_examples=25, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), chunk=st.integers(1, 140))
def test_parallel_scan_does_not_depend_on_chunk_length(shape, seed, chunk):
    a, b = _inputs(shape, seed, torch.float64)
    w = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    results = []
    for size in (None, chunk):
        a_, b_ = a.clone().requires_grad_(), b.clone().requires_grad_()
        h = parallel_scan(a_, b_, chunk=size)
        (h * w).sum().backward()
        results.append((h.detach(), a_.grad, b_.grad))
    torch.testing.assert_close(results[0], results[1], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(results[1][0], sequential_scan(a, b), rtol=1e-10, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), chunk=st.one_of(st.none(),
                                                                     st.integers(1, 140)))
def test_selective_scan_equals_reference_values_and_gradients(shape, seed, chunk):
    bsz, length, d, n = shape
    g = torch.Generator().manual_seed(seed)
    delta = torch.rand(bsz, length, d, generator=g, dtype=torch.float64) * 2
    A = -torch.rand(d, n, generator=g, dtype=torch.float64) * 8
    v = torch.randn(bsz, length, d, generator=g, dtype=torch.float64)
    B = torch.randn(bsz, length, n, generator=g, dtype=torch.float64)
    C = torch.randn(bsz, length, n, generator=g, dtype=torch.float64)
    w = torch.randn(bsz, length, d, generator=g, dtype=torch.float64)

    def reference(delta, A, v, B, C, chunk):
        h = sequential_scan(torch.exp(delta.unsqueeze(-1) * A), v.unsqueeze(-1) * B.unsqueeze(2))
        return torch.einsum("bldn,bln->bld", h, C)

    results = []
    for fn in (selective_scan, reference):
        args = [t.clone().requires_grad_() for t in (delta, A, v, B, C)]
        out = fn(*args, chunk)
        (out * w).sum().backward()
        results.append((out.detach(), *(t.grad for t in args)))
    torch.testing.assert_close(results[0], results[1], rtol=1e-9, atol=1e-9)


def test_selective_scan_float32_matches_float64_at_model_scale():
    """The model's own regime (float32, L = 512, Mamba-like decays) to float tolerance."""
    g = torch.Generator().manual_seed(3)
    delta = torch.rand(2, 512, 6, generator=g, dtype=torch.float64) * 0.1
    A = -torch.arange(1, 9, dtype=torch.float64).repeat(6, 1)
    v, B, C = (torch.randn(2, 512, k, generator=g, dtype=torch.float64) for k in (6, 8, 8))
    exact = selective_scan(delta, A, v, B, C)
    for chunk in (None, 3, 16, 100):
        got = selective_scan(*(t.float() for t in (delta, A, v, B, C)), chunk=chunk)
        torch.testing.assert_close(got.double(), exact, rtol=1e-4, atol=1e-4)


def test_selective_scan_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="selective_scan: A"):
        selective_scan(torch.rand(2, 5, 3), -torch.rand(4, 2), torch.rand(2, 5, 3),
                       torch.rand(2, 5, 2), torch.rand(2, 5, 2))


def test_tuned_plan_is_cached_on_disk_and_reused(tmp_path, monkeypatch):
    from causalcast.models import scan_plan

    monkeypatch.setenv("CAUSALCAST_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(scan_plan, "_plans", None)
    assert scan_plan.plan_for(100, 64, torch.float32) == scan_plan.default_plan(100, 64)
    tried = []
    best = scan_plan.tune_plan(100, 64, torch.float32, run=tried.append, reps=1)
    assert best in tried and len(set(tried)) >= 4
    assert (tmp_path / scan_plan.CACHE_FILE).exists()
    monkeypatch.setattr(scan_plan, "_plans", None)          # a fresh process reads the file
    assert scan_plan.plan_for(100, 64, torch.float32) == best


def test_autotune_on_first_use_caches_the_shape_once(tmp_path, monkeypatch):
    from causalcast.models import scan_plan

    monkeypatch.setenv("CAUSALCAST_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CAUSALCAST_SCAN_AUTOTUNE", "1")
    monkeypatch.setattr(scan_plan, "_plans", None)
    args = (torch.rand(2, 24, 3) * 0.1, -torch.rand(3, 4), torch.randn(2, 24, 3),
            torch.randn(2, 24, 4), torch.randn(2, 24, 4))
    assert not scan_plan.is_tuned(24, 2 * 3 * 4, torch.float32)
    tuned = selective_scan(*args)
    assert scan_plan.is_tuned(24, 2 * 3 * 4, torch.float32)
    cached = (tmp_path / scan_plan.CACHE_FILE).read_text()
    torch.testing.assert_close(tuned, selective_scan(*args))      # same numbers, any plan
    assert (tmp_path / scan_plan.CACHE_FILE).read_text() == cached  # not tuned twice
    monkeypatch.setattr(scan_plan, "_plans", None)
