"""Linear recurrences h_t = a_t * h_{t-1} + b_t (h_{-1} = 0) along dim 1, for the Mamba block.

Four functions, one recurrence:

* `sequential_scan` — the reference: a plain loop that autograd differentiates. Tests compare
  everything else with it; nothing in a model calls it.
* `parallel_scan` — the general scan: a *blocked associative scan*. The combine operator
  (a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2) is associative, so the sequence is cut into
  chunks of about sqrt(L) steps; pass 1 reduces every chunk to one (a, b) pair (all chunks
  at once), the chunk pairs are scanned recursively, and pass 2 re-runs each chunk from its
  incoming state (all chunks at once). That is Blelloch's reduce-then-scan with blocks: about
  4 sqrt(L) vectorised steps instead of L, and work linear in L. Why not a Hillis–Steele or
  Blelloch tree over single steps (mambapy)? On a CPU the scan is memory-bound: a tree pass
  reads and writes the whole (B, L, D, N) tensor log2(L) times, the blocked scan reads it
  twice and writes it once. The backward pass is the same scan run in reverse
  (g_t = dh_t + a_{t+1} g_{t+1}), written out in `_ParallelScan.backward`, so autograd does not
  keep one graph node per step. Chunk length and threads come from a per-shape `ScanPlan`
  (`scan_plan.py`: a fixed rule, or a measured plan cached on disk); any chunk length gives
  the same states up to rounding.
* `selective_scan` — what the Mamba block uses: C_t . h_t with a_t = exp(delta_t A) and
  b_t = v_t (x) B_t built inside one autograd function, the same blocked scan, and every
  gradient written out as a batched matmul over tensors that exist anyway.
* `final_state` — only h_{L-1}, as one parallel reduction, for a last layer whose earlier
  outputs nobody reads. With log a = delta * A (Mamba's discretisation, A constant over time)
  the decay from step s to the end is exp(A * sum_{r>s} delta_r): a reverse cumulative sum
  over (B, L, D) and one exp, every exponent <= 0, so nothing overflows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from causalcast.models.scan_plan import (
    ScanPlan,
    autotune_enabled,
    chunk_size,
    is_tuned,
    plan_for,
    threads_for,
    tune_plan,
)

__all__ = ["chunk_size", "final_state", "parallel_scan", "selective_last", "selective_scan",
           "sequential_scan", "tune_selective_scan"]

#: Below this length the blocked scan is a plain loop (chunking would not save a step).
MIN_BLOCKED = 16


def sequential_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Reference recurrence, one step at a time; a, b: (B, L, ...). Used by tests only."""
    if a.shape != b.shape:
        raise ValueError(f"sequential_scan: a {tuple(a.shape)} and b {tuple(b.shape)} differ")
    h = torch.zeros_like(b[:, 0])
    out = []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, dim=1)


def _loop(a: torch.Tensor, b: torch.Tensor, reverse: bool) -> torch.Tensor:
    """The recurrence along dim 1 (backwards when `reverse`), from a zero state."""
    out = torch.empty(b.shape, dtype=b.dtype, device=b.device)
    steps = range(a.shape[1] - 1, -1, -1) if reverse else range(a.shape[1])
    prev = None
    for t in steps:
        if prev is None:
            out[:, t].copy_(b[:, t])
        else:
            torch.addcmul(b[:, t], a[:, t], prev, out=out[:, t])
        prev = out[:, t]
    return out


def _blocked(a: torch.Tensor, b: torch.Tensor, reverse: bool,
             chunk: int | None = None, overwrite_b: bool = False) -> torch.Tensor:
    """Reduce-then-scan over chunks of `chunk` steps (default: near sqrt(L)); no autograd,
    see the module docstring. Any chunk length >= 1 gives the same states up to rounding.

    `overwrite_b`: write the states into `b` (a contiguous temporary of the caller's), which
    saves allocating, and first touching, one more (B, L, ...) tensor."""
    batch, length = a.shape[:2]
    rest = a.shape[2:]
    if length <= MIN_BLOCKED and chunk is None:
        return _loop(a, b, reverse)
    chunk = chunk_size(length) if chunk is None else max(1, min(int(chunk), length))
    if chunk == 1 or chunk == length:
        return _loop(a, b, reverse)
    n_chunks = -(-length // chunk)
    pad = n_chunks * chunk - length
    if pad:  # identity-like padding at the end: (a=0, b=0) keeps the reverse state at zero
        widths = (0, 0) * len(rest) + (0, pad)
        a, b = F.pad(a, widths), F.pad(b, widths)
    a5 = a.reshape(batch, n_chunks, chunk, *rest)
    b5 = b.reshape(batch, n_chunks, chunk, *rest)
    steps = list(range(chunk - 1, -1, -1) if reverse else range(chunk))
    # Pass 1: every chunk reduced to (product of a, state at its end from a zero start).
    h = b5[:, :, steps[0]].clone()
    p = a5[:, :, steps[0]].clone()
    for t in steps[1:]:
        h.mul_(a5[:, :, t]).add_(b5[:, :, t])
        p.mul_(a5[:, :, t])
    carry = _blocked(p, h, reverse)          # true state at each chunk's end
    init = torch.zeros_like(carry)           # state entering each chunk
    if reverse:
        init[:, :-1] = carry[:, 1:]
    else:
        init[:, 1:] = carry[:, :-1]
    # Pass 2: re-run every chunk from its incoming state.
    out = b5 if overwrite_b else torch.empty(b5.shape, dtype=b.dtype, device=b.device)
    prev = init
    for t in steps:
        torch.addcmul(b5[:, :, t], a5[:, :, t], prev, out=out[:, :, t])
        prev = out[:, :, t]
    out = out.view(batch, n_chunks * chunk, *rest)
    return out[:, :length] if pad else out


def _plan(a: torch.Tensor, chunk: int | ScanPlan | None) -> ScanPlan:
    """The plan for a (B, L, ...) tensor: the caller's plan or chunk, else the cached or
    default plan for its shape."""
    if isinstance(chunk, ScanPlan):
        return chunk
    plan = plan_for(a.shape[1], a.numel() // max(a.shape[1], 1), a.dtype)
    return plan if chunk is None else ScanPlan(chunk=chunk, threads=plan.threads)


def _reverse_states(a: torch.Tensor, grad_h: torch.Tensor, plan: ScanPlan,
                    overwrite: bool = False) -> torch.Tensor:
    """g_t = grad_h_t + a_{t+1} g_{t+1} (g past the end = 0): dL/db of the forward scan.
    `overwrite`: grad_h is a contiguous temporary that may receive the result."""
    a_next = F.pad(a[:, 1:], (0, 0) * (a.dim() - 2) + (0, 1))
    with threads_for(plan):
        return _blocked(a_next, grad_h.contiguous(), reverse=True, chunk=plan.chunk,
                        overwrite_b=overwrite)


class _ParallelScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor,  # type: ignore[override]
                chunk: int | None) -> torch.Tensor:
        plan = _plan(a, chunk)
        with threads_for(plan):
            h = _blocked(a.contiguous(), b.contiguous(), reverse=False, chunk=plan.chunk)
        ctx.save_for_backward(a, h)
        ctx.plan = plan
        return h

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor):  # type: ignore[override]
        a, h = ctx.saved_tensors
        # dL/db_t = g_t with g_t = grad_h_t + a_{t+1} g_{t+1}: the same scan, reversed.
        grad_b = _reverse_states(a, grad_h, ctx.plan)
        grad_a = torch.empty_like(a)
        grad_a[:, 0].zero_()
        torch.mul(grad_b[:, 1:], h[:, :-1], out=grad_a[:, 1:])
        return grad_a, grad_b, None


def _check(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name}: a {tuple(a.shape)} and b {tuple(b.shape)} differ")
    if a.dim() < 2 or a.shape[1] == 0:
        raise ValueError(f"{name}: need (batch, length, ...) with length >= 1, "
                         f"got {tuple(a.shape)}")


def parallel_scan(a: torch.Tensor, b: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """All states h_t of h_t = a_t h_{t-1} + b_t; a, b: (B, L, ...), same shape and dtype.

    `chunk` overrides the plan's chunk length (tests use it; the result does not depend on it
    beyond rounding)."""
    _check("parallel_scan", a, b)
    return _ParallelScan.apply(a, b, chunk)


class _SelectiveScan(torch.autograd.Function):
    """y = C_t . h_t with h_t = exp(delta_t A) h_{t-1} + v_t (x) B_t, gradients by hand.

    Autograd through exp(delta A), v (x) B and the scan writes five (B, L, D, N) products in
    the backward pass and reduces each; here every reduction is one batched matmul over the
    (B, L, D, N) tensors that exist anyway (a, h, the reverse states g), so the backward
    pass reads each of them about twice and writes two."""

    @staticmethod
    def forward(ctx, delta, A, v, Bm, C, chunk):  # type: ignore[override]
        delta, A, v, Bm, C = (t.contiguous() for t in (delta, A, v, Bm, C))
        a = torch.mul(delta.unsqueeze(-1), A).exp_()                      # (B, L, D, N)
        bx = torch.mul(v.unsqueeze(-1), Bm.unsqueeze(2))                  # (B, L, D, N)
        plan = _plan(a, chunk)
        with threads_for(plan):
            h = _blocked(a, bx, reverse=False, chunk=plan.chunk, overwrite_b=True)
        y = torch.matmul(h, C.unsqueeze(-1)).squeeze(-1)                 # (B, L, D)
        ctx.save_for_backward(delta, A, v, Bm, C, a, h)
        ctx.plan = plan
        return y

    @staticmethod
    def backward(ctx, gy):  # type: ignore[override]
        delta, A, v, Bm, C, a, h = ctx.saved_tensors
        gy = gy.contiguous()
        grad_C = torch.matmul(gy.unsqueeze(2), h).squeeze(2)             # sum_d gy h (B, L, N)
        g = _reverse_states(a, gy.unsqueeze(-1) * C.unsqueeze(2), ctx.plan,  # dL/d(bx)
                            overwrite=True)
        grad_v = torch.matmul(g, Bm.unsqueeze(-1)).squeeze(-1)           # sum_n g B
        grad_B = torch.matmul(v.unsqueeze(2), g).squeeze(2)              # sum_d v g
        # dL/d(delta A)_t = g_t h_{t-1} a_t (zero at t = 0), in place of g
        g[:, 1:].mul_(h[:, :-1]).mul_(a[:, 1:])
        g[:, 0].zero_()
        d = A.shape[0]
        grad_A = torch.matmul(delta.reshape(-1, d).t().unsqueeze(1),      # sum_bl r delta
                              g.reshape(-1, d, A.shape[1]).transpose(0, 1)).squeeze(1)
        grad_delta = g.mul_(A).sum(-1)                                    # sum_n r A
        return grad_delta, grad_A, grad_v, grad_B, grad_C, None


def selective_scan(delta: torch.Tensor, A: torch.Tensor, v: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, chunk: int | ScanPlan | None = None) -> torch.Tensor:
    """C_t . h_t for every t, h_t = exp(delta_t A) h_{t-1} + v_t (x) B_t, per channel.

    delta, v: (B, L, D); A: (D, N); B, C: (B, L, N). Returns (B, L, D). The same numbers as
    `parallel_scan(exp(delta A), v (x) B)` contracted with C, without autograd's
    intermediates."""
    if delta.dim() != 3 or v.shape != delta.shape:
        raise ValueError(f"selective_scan: delta {tuple(delta.shape)} and v "
                         f"{tuple(v.shape)} must both be (B, L, D)")
    if A.shape[0] != delta.shape[2] or B.shape != C.shape or B.shape[:2] != delta.shape[:2] \
            or B.shape[2] != A.shape[1]:
        raise ValueError(f"selective_scan: A {tuple(A.shape)}, B {tuple(B.shape)}, "
                         f"C {tuple(C.shape)} do not fit delta {tuple(delta.shape)}")
    if chunk is None and autotune_enabled():
        batch, length, channels = delta.shape
        if not is_tuned(length, batch * channels * A.shape[1], delta.dtype):
            with torch.enable_grad():
                tune_selective_scan(batch, length, channels, A.shape[1], delta.dtype)
    return _SelectiveScan.apply(delta, A, v, B, C, chunk)


def tune_selective_scan(batch: int, length: int, channels: int, state: int,
                        dtype: torch.dtype = torch.float32, reps: int = 3) -> ScanPlan:
    """Autotune (and cache on disk) the plan `selective_scan` uses for this shape: times its
    forward and backward on random Mamba-like inputs for each candidate plan."""
    g = torch.Generator().manual_seed(0)
    delta = torch.rand(batch, length, channels, generator=g, dtype=dtype) * 0.1
    A = -torch.arange(1, state + 1, dtype=dtype).repeat(channels, 1)
    v = torch.randn(batch, length, channels, generator=g, dtype=dtype)
    B, C = (torch.randn(batch, length, state, generator=g, dtype=dtype) for _ in range(2))
    args = [t.requires_grad_() for t in (delta, A, v, B, C)]

    def run(plan: ScanPlan) -> None:
        selective_scan(*args, chunk=plan).sum().backward()

    return tune_plan(length, batch * channels * state, dtype, run, reps=reps)


def final_state(delta: torch.Tensor, A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_{L-1} of the recurrence with a_t = exp(delta_t[..., None] * A), as one reduction.

    delta: (B, L, D) positive step sizes; A: (D, N) negative; b: (B, L, D, N). Returns
    (B, D, N), equal to ``parallel_scan(exp(delta[..., None] * A), b)[:, -1]``. Plain
    autograd; the model uses the fused `selective_last` instead."""
    decay = torch.exp(_after(delta).unsqueeze(-1) * A)                 # (B, L, D, N), <= 1
    return torch.einsum("bldn,bldn->bdn", decay, b)


def _after(delta: torch.Tensor) -> torch.Tensor:
    """sum_{r > s} delta_r for every s (B, L, D): one matmul with a strictly upper-triangular
    matrix of ones — exact per element, and much faster on a CPU than flip + cumsum."""
    length = delta.shape[1]
    upper = torch.ones(length, length, dtype=delta.dtype, device=delta.device).triu(1)
    return torch.einsum("sr,brd->bsd", upper, delta)


#: Elements of the (chunk, L, D, N) decay tensor processed at once: about 1 MB of float32,
#: so the fused reduction below works in cache instead of streaming (B, L, D, N) tensors.
CHUNK_ELEMENTS = 1 << 18


class _DecayContract(torch.autograd.Function):
    """y[b, d] = sum_l v[b,l,d] sum_n w[b,l,n] exp(tau[b,l,d] A[d,n]), batch chunk by chunk.

    The (B, L, D, N) decay tensor is never stored: forward keeps only s = sum_n w K (B, L, D)
    and backward recomputes K per chunk, so memory is O(B L D) and each chunk stays in
    cache."""

    @staticmethod
    def forward(ctx, tau, A, v, w):  # type: ignore[override]
        tau, A, v, w = (t.contiguous() for t in (tau, A, v, w))
        batch, length, d = tau.shape
        n = A.shape[1]
        chunk = max(1, CHUNK_ELEMENTS // (length * d * n))
        s = torch.empty_like(tau)
        for i in range(0, batch, chunk):
            part = slice(i, i + chunk)
            k = torch.exp(tau[part].unsqueeze(-1) * A)                     # (b, L, D, N)
            rows = k.shape[0] * length
            torch.bmm(k.view(rows, d, n), w[part].reshape(rows, n, 1),
                      out=s[part].view(rows, d, 1))
        ctx.save_for_backward(tau, A, v, w, s)
        ctx.chunk = chunk
        return (v * s).sum(1)

    @staticmethod
    def backward(ctx, gy):  # type: ignore[override]
        tau, A, v, w, s = ctx.saved_tensors
        length, d = tau.shape[1:]
        n = A.shape[1]
        gy = gy.unsqueeze(1)
        grad_v = gy * s
        gs = gy * v                                                        # dL/ds (B, L, D)
        grad_w, grad_tau = torch.empty_like(w), torch.empty_like(tau)
        grad_A = torch.zeros_like(A)
        for i in range(0, tau.shape[0], ctx.chunk):
            part = slice(i, i + ctx.chunk)
            k = torch.exp(tau[part].unsqueeze(-1) * A)
            rows = k.shape[0] * length
            kf = k.view(rows, d, n)
            g = gs[part].reshape(rows, d, 1)
            torch.bmm(kf.transpose(1, 2), g, out=grad_w[part].view(rows, n, 1))
            r = kf.mul_(g).mul_(w[part].reshape(rows, 1, n))   # dL/d(tau A), in place of k
            grad_tau[part] = (r * A).sum(-1).view_as(grad_tau[part])
            grad_A += torch.einsum("kdn,kd->dn", r, tau[part].reshape(rows, d))
        return grad_tau, grad_A, grad_v, grad_w


def selective_last(delta: torch.Tensor, A: torch.Tensor, v: torch.Tensor, B: torch.Tensor,
                   c_last: torch.Tensor) -> torch.Tensor:
    """C_{L-1} . h_{L-1} for h_t = exp(delta_t A) h_{t-1} + v_t (x) B_t, per channel.

    delta, v: (B, L, D); A: (D, N); B: (B, L, N); c_last: (B, N). Returns (B, D). The state
    decays from step s to the end by exp(A * sum_{r>s} delta_r) — every exponent <= 0, so
    nothing overflows — and the sum over s is one parallel reduction."""
    return _DecayContract.apply(_after(delta), A, v, B * c_last.unsqueeze(1))
