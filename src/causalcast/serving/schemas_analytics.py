"""Request schemas of the options-analytics routes. Strict numbers: a string or a boolean
where a number belongs is a 422 naming the field, as are NaN, infinities and out-of-range
values; extra fields are refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
PositiveNumber = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
NonNegativeNumber = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
MAX_QUOTES = 20_000
MAX_LEGS = 16
MAX_SMILE_POINTS = 401


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChainRow(_Strict):
    """One quote in the normalised chain schema (`options.analytics.chain.CHAIN_COLUMNS`)."""
    expiry: datetime
    strike: PositiveNumber
    type: Literal["call", "put"]
    bid: NonNegativeNumber
    ask: NonNegativeNumber
    last: NonNegativeNumber | None = None
    volume: NonNegativeNumber | None = None
    open_interest: NonNegativeNumber | None = None
    spot: PositiveNumber
    as_of: datetime


class QuoteColumns(_Strict):
    """Quotes as arrays (a scalar applies to all)."""
    price: list[NonNegativeNumber] | NonNegativeNumber
    spot: list[PositiveNumber] | PositiveNumber
    strike: list[PositiveNumber] | PositiveNumber
    tau: list[PositiveNumber] | PositiveNumber
    rate: list[Number] | Number = 0.0
    div: list[Number] | Number = 0.0
    kind: list[Literal["call", "put"]] | Literal["call", "put"] = "call"

    @model_validator(mode="after")
    def _same_length(self) -> QuoteColumns:
        lengths = {name: len(v) for name, v in self if isinstance(v, list)}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"arrays of different lengths: {lengths}")
        if any(n == 0 or n > MAX_QUOTES for n in lengths.values()):
            raise ValueError(f"arrays must hold 1 to {MAX_QUOTES} quotes")
        return self


class ImpliedVolRequest(_Strict):
    quotes: QuoteColumns | None = None
    chain: list[ChainRow] | None = Field(None, max_length=MAX_QUOTES)
    style: Literal["european", "american"] = "european"
    rate: Number = 0.04
    # American only: one Newton step on the finite-difference price after the network, which
    # also returns its residual per quote as the independent check (slower; see american_iv).
    polish: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> ImpliedVolRequest:
        if (self.quotes is None) == (self.chain is None):
            raise ValueError("give exactly one of quotes or chain")
        if self.polish and self.style != "american":
            raise ValueError("polish: applies to style 'american' only")
        return self


class SurfaceRequest(_Strict):
    chain: list[ChainRow] = Field(min_length=1, max_length=MAX_QUOTES)
    style: Literal["european", "american"] = "european"
    rate: Number = 0.04
    # > 0: each expiry also carries `smile`, its fitted quotes and the SVI curve at this many
    # strikes (what the dashboard's smile chart draws)
    smile_points: int = Field(0, strict=True, ge=0, le=MAX_SMILE_POINTS)


class LegSpec(_Strict):
    quantity: Number
    kind: Literal["call", "put", "stock"]
    strike: PositiveNumber | None = None
    tau: PositiveNumber | None = None
    price: NonNegativeNumber | None = None

    @model_validator(mode="after")
    def _option_fields(self) -> LegSpec:
        if self.quantity == 0:
            raise ValueError("quantity must not be 0")
        if self.kind != "stock" and (self.strike is None or self.tau is None):
            raise ValueError("an option leg needs strike and tau")
        if self.kind == "stock" and (self.strike is not None or self.tau is not None):
            raise ValueError("a stock leg takes no strike or tau")
        return self


class ForecastLaw(_Strict):
    """A forecast model's Student-t log return over ``horizon`` years, with its evidence."""
    mu: Number
    sigma: PositiveNumber
    nu: Annotated[float, Field(strict=True, gt=1, allow_inf_nan=False)]
    horizon: PositiveNumber
    evidence: dict[str, Any] = Field(default_factory=dict)


class StrategyRequest(_Strict):
    legs: list[LegSpec] = Field(min_length=1, max_length=MAX_LEGS)
    spot: PositiveNumber | None = None
    rate: Number = 0.04
    div: Number = 0.0
    sigma: PositiveNumber | None = None
    chain: list[ChainRow] | None = Field(None, max_length=MAX_QUOTES)
    forecast: ForecastLaw | None = None
    target: Number | None = None
    dates: list[NonNegativeNumber] = Field(default_factory=list, max_length=16)
    greeks_units: Literal["trader", "raw"] = "trader"

    @model_validator(mode="after")
    def _laws(self) -> StrategyRequest:
        if self.spot is None and self.chain is None:
            raise ValueError("give spot or a chain")
        if self.sigma is None and self.chain is None and self.forecast is None:
            raise ValueError("give at least one of sigma, chain, forecast")
        return self
