"""The compiled FD pricer batches options of different maturities in one call: each parameter
set's answer is the one it gets alone, and skipping the European surface changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=40, deadline=None)
@given(st.floats(0.5, 2.0), st.floats(0.01, 3.0), st.floats(0.05, 1.5), st.floats(0.0, 0.1),
       st.floats(0.0, 0.06), st.booleans(), st.booleans())
def test_american_price_is_never_below_exercise_value(m: float, tau: float, sigma: float,
                                                      rate: float, div: float, call: bool,
                                                      fitted: bool) -> None:
    """Between grid points the time value is interpolated and the exact payoff added, so an
    American price never dips below exercise value (interpolating the concave payoff itself
    did, by up to eˣ·dx²/8), on the shared grid (S/K inside its span) and on one fitted to the
    point."""
    grid = FDGrid(n_x=121, n_t=30, min_half_width=0.0 if fitted else 1.2, fit_to_point=fitted)
    price = fd_price(m, tau, sigma, rate, div, call, True, grid).item()
    assert price >= max(m - 1.0 if call else 1.0 - m, 0.0) - 1e-15   # exp(ln m) rounding


@pytest.mark.slow
def test_the_iv_fallback_grids_against_a_converged_grid() -> None:
    """The American IV fallback's accurate grid (fitted to each quote) prices moderate
    options to 1e-5 of the strike; its coarse search grid to 1e-3 (it only has to land in
    the accurate grid's Newton basin)."""
    from causalcast.options.analytics.american_iv import FD_FINAL_GRID, FD_SEARCH_GRID

    rng = np.random.default_rng(4)
    n = 12
    m, tau = np.exp(rng.uniform(-0.4, 0.4, n)), rng.uniform(0.05, 3.0, n)
    sigma, rate, div = rng.uniform(0.1, 0.6, n), rng.uniform(0, 0.08, n), rng.uniform(0, .04, n)
    calls = np.arange(n) % 2 == 0
    fine = fd_price(m, tau, sigma, rate, div, calls, True, FDGrid(n_x=4001, n_t=1000))
    for grid, tol in ((FD_FINAL_GRID, 1e-5), (FD_SEARCH_GRID, 1e-3)):
        assert np.max(np.abs(fd_price(m, tau, sigma, rate, div, calls, True, grid) - fine)) < tol
