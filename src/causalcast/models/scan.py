"""Linear recurrences h_t = a_t * h_{t-1} + b_t (h_{-1} = 0) along dim 1, for the Mamba block.

Three functions, one recurrence:

* `sequential_scan` — the reference: a plain loop that autograd differentiates. Tests compare
  everything else with it; nothing in a model calls it.
* `parallel_scan` — what the model uses: a *blocked associative scan*. The combine operator
  (a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2) is associative, so the sequence is cut into
  chunks of about sqrt(L) steps; pass 1 reduces every chunk to one (a, b) pair (all chunks
  at once), the chunk pairs are scanned recursively, and pass 2 re-runs each chunk from its
  incoming state (all chunks at once). That is Blelloch's reduce-then-scan with blocks: about
  4 sqrt(L) vectorised steps instead of L, and work linear in L. Why not a Hillis–Steele or
  Blelloch tree over single steps (mambapy)? On a CPU the scan is memory-bound: a tree pass
  reads and writes the whole (B, L, D, N) tensor log2(L) times, the blocked scan reads it
  twice and writes it once. The backward pass is the same scan run in reverse
  (g_t = dh_t + a_{t+1} g_{t+1}), written out in `_ParallelScan.backward`, so autograd does not
  keep one graph node per step.
* `final_state` — only h_{L-1}, as one parallel reduction, for a last layer whose earlier
  outputs nobody reads. With log a = delta * A (Mamba's discretisation, A constant over time)
  the decay from step s to the end is exp(A * sum_{r>s} delta_r): a reverse cumulative sum
  over (B, L, D) and one exp, every exponent <= 0, so nothing overflows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

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


def chunk_size(length: int) -> int:
    """Chunk length near sqrt(L); a divisor of L when one is close, so no padding is needed."""
    root = math.sqrt(length)
    divisors = [c for c in range(max(2, int(root / 2)), int(2 * root) + 1) if length % c == 0]
    if divisors:
        return min(divisors, key=lambda c: (abs(c - root), c))
    return max(2, round(root))


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


def _blocked(a: torch.Tensor, b: torch.Tensor, reverse: bool) -> torch.Tensor:
    """Reduce-then-scan over chunks (no autograd; see the module docstring)."""
    batch, length = a.shape[:2]
    rest = a.shape[2:]
    if length <= MIN_BLOCKED:
        return _loop(a, b, reverse)
    chunk = chunk_size(length)
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
    out = torch.empty(b5.shape, dtype=b.dtype, device=b.device)
    prev = init
    for t in steps:
        torch.addcmul(b5[:, :, t], a5[:, :, t], prev, out=out[:, :, t])
        prev = out[:, :, t]
    out = out.view(batch, n_chunks * chunk, *rest)
    return out[:, :length] if pad else out


class _ParallelScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h = _blocked(a.contiguous(), b.contiguous(), reverse=False)
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor):  # type: ignore[override]
        a, h = ctx.saved_tensors
        # dL/db_t = g_t with g_t = grad_h_t + a_{t+1} g_{t+1}: the same scan, reversed.
        a_next = F.pad(a[:, 1:], (0, 0) * (a.dim() - 2) + (0, 1))
        grad_b = _blocked(a_next, grad_h.contiguous(), reverse=True)
        grad_a = torch.empty_like(a)
        grad_a[:, 0].zero_()
        torch.mul(grad_b[:, 1:], h[:, :-1], out=grad_a[:, 1:])
        return grad_a, grad_b


def parallel_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """All states h_t of h_t = a_t h_{t-1} + b_t; a, b: (B, L, ...), same shape and dtype."""
    if a.shape != b.shape:
        raise ValueError(f"parallel_scan: a {tuple(a.shape)} and b {tuple(b.shape)} differ")
    if a.dim() < 2 or a.shape[1] == 0:
        raise ValueError(f"parallel_scan: need (batch, length, ...) with length >= 1, "
                         f"got {tuple(a.shape)}")
    return _ParallelScan.apply(a, b)


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
