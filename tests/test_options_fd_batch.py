"""The compiled FD pricer batches options of different maturities in one call: each parameter
set's answer is the one it gets alone, and skipping the European surface changes nothing."""

from __future__ import annotations

import numpy as np

from causalcast.options.fd import FDGrid, fd_price, solve_put_surface


def test_one_batch_of_mixed_maturities_equals_separate_solves() -> None:
    grid = FDGrid(n_x=161, n_t=60)
    rng = np.random.default_rng(2)
    n = 6
    sigma, rate, div = rng.uniform(0.1, 0.6, n), rng.uniform(0.0, 0.08, n), rng.uniform(0, .04, n)
    tau = np.array([0.05, 0.3, 0.3, 1.0, 2.0, 0.7])
    batch = solve_put_surface(sigma, rate, div, tau_max=tau, save_every=20, grid=grid)
    assert batch.taus.shape == (n, 4) and np.allclose(batch.taus[:, -1], tau)
    for b in range(n):
        alone = solve_put_surface(sigma[b:b + 1], rate[b:b + 1], div[b:b + 1], tau_max=tau[b],
                                  save_every=20, grid=grid)
        np.testing.assert_array_equal(batch.american[b], alone.american[0])
        np.testing.assert_array_equal(batch.european[b], alone.european[0])
    american_only = solve_put_surface(sigma, rate, div, tau_max=tau, save_every=20, grid=grid,
                                      european=False)
    np.testing.assert_array_equal(american_only.american, batch.american)
    assert np.isnan(american_only.european).all()
    # fd_price over the same mixed batch: American ≥ European ≥ 0, calls and puts
    m = np.exp(rng.uniform(-0.3, 0.3, n))
    calls = np.arange(n) % 2 == 0
    am = fd_price(m, tau, sigma, rate, div, calls, True, grid)
    eu = fd_price(m, tau, sigma, rate, div, calls, False, grid)
    assert (am >= eu - 1e-12).all() and (eu >= 0).all()
