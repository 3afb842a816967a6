"""Request and response schemas. Every numeric field rejects NaN and infinities, and prices,
strikes, volatilities and maturities must be positive, so a 422 names the field at fault."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]

MAX_OPTIONS = 10_000
MAX_FORECAST_BATCH = 256
MAX_BARS = 5_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- options -------------------------------------------------------------------------------
class OptionSpec(_Strict):
    spot: Positive = Field(description="Underlying price S")
    strike: Positive = Field(description="Strike K")
    tau: Positive = Field(description="Time to expiry in years")
    sigma: Positive = Field(description="Volatility (annualised)")
    rate: Finite = Field(0.0, description="Continuously compounded risk-free rate")
    div: NonNegative = Field(0.0, description="Continuous dividend yield q")
    kind: Literal["call", "put"] = "call"
    style: Literal["european", "american"] = "european"


class OptionsPriceRequest(_Strict):
    options: list[OptionSpec] = Field(min_length=1, max_length=MAX_OPTIONS)
    method: Literal["pinn", "closed"] = "pinn"
    greeks: bool = True


Kind = Literal["call", "put"]
Style = Literal["european", "american"]


class OptionColumns(_Strict):
    """The same options as `OptionSpec` rows, one array per field; a scalar applies to all."""
    spot: list[Positive] | Positive
    strike: list[Positive] | Positive
    tau: list[Positive] | Positive
    sigma: list[Positive] | Positive
    rate: list[Finite] | Finite = 0.0
    div: list[NonNegative] | NonNegative = 0.0
    kind: list[Kind] | Kind = "call"
    style: list[Style] | Style = "european"

    @model_validator(mode="after")
    def _same_length(self) -> OptionColumns:
        lengths = {name: len(value) for name, value in self if isinstance(value, list)}
        if not lengths:
            raise ValueError("at least one field must be an array of options")
        n = max(lengths.values())
        for name, length in lengths.items():
            if length != n:
                raise ValueError(f"{name}: {length} values, but other fields have {n}")
        if not 1 <= n <= MAX_OPTIONS:
            raise ValueError(f"between 1 and {MAX_OPTIONS} options per request, got {n}")
        return self

    def __len__(self) -> int:
        return max(len(value) for _, value in self if isinstance(value, list))


class OptionsColumnsRequest(_Strict):
    columns: OptionColumns
    method: Literal["pinn", "closed"] = "pinn"
    greeks: bool = True


class OptionsColumnsResponse(BaseModel):
    method: str
    columns: dict[str, list[float]] = Field(description="price, and with greeks delta gamma "
                                            "vega theta rho; each in the order of the request")


class OptionResult(BaseModel):
    price: float
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    rho: float | None = None


class OptionsPriceResponse(BaseModel):
    method: str
    results: list[OptionResult]


class ProbabilityRequest(_Strict):
    spot: Positive
    strike: Positive
    tau: Positive
    sigma: Positive
    rate: Finite = 0.0
    div: NonNegative = 0.0
    symbol: str | None = Field(None, description="Also give the forecast-implied probability "
                               "from this symbol's promoted models")
    horizon: int | None = Field(None, ge=1, description="Forecast horizon in bars for the "
                                "forecast-implied probability; default: nearest to tau")


class ProbabilityResponse(BaseModel):
    risk_neutral: float = Field(description="N(d2): risk-neutral P(S_T > K)")
    pinn_implied: float | None = Field(None, description="-e^{r tau} dC/dK from the PINN")
    forecast_implied: float | None = None
    forecast_horizon: int | None = None
    model_versions: list[str] = Field(default_factory=list)


# --- forecasts -----------------------------------------------------------------------------
class Bar(_Strict):
    date: datetime
    open: Positive
    high: Positive
    low: Positive
    close: Positive
    volume: NonNegative

    @model_validator(mode="after")
    def _shape(self) -> Bar:
        if self.high < max(self.open, self.close):
            raise ValueError(f"high {self.high} below max(open, close)")
        if self.low > min(self.open, self.close):
            raise ValueError(f"low {self.low} above min(open, close)")
        return self


class ForecastRequest(_Strict):
    symbol: str = Field(min_length=1, max_length=32)
    bars: list[Bar] | None = Field(None, min_length=1, max_length=MAX_BARS,
                                   description="Recent bars to forecast from (oldest first); "
                                   "default: the bars the service holds for the symbol")
    model: str | None = Field(None, max_length=64, description="A promoted model name (e.g. "
                              "'lstm-global'); default: the one with the best validation loss")


class ForecastBatchRequest(_Strict):
    requests: list[ForecastRequest] = Field(min_length=1, max_length=MAX_FORECAST_BATCH)


class HorizonForecast(BaseModel):
    horizon: int
    mean_log_return: float
    expected_price: float
    p_up: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float


class ForecastResponse(BaseModel):
    symbol: str
    as_of: str
    last_close: float
    model: str
    model_versions: list[str]
    forecasts: list[HorizonForecast]
    cached: bool = False


class ForecastBatchResponse(BaseModel):
    results: list[ForecastResponse]


class ModelInfo(BaseModel):
    symbol: str
    model: str
    version: str
    stage: str
    as_of: str | None = None


class VersionProblemInfo(BaseModel):
    version: str = Field(description="Registry version, name:number")
    name: str
    status: Literal["failed", "stale"] = Field(description="failed: not served (a replaced "
                                               "version is never served instead); stale: "
                                               "served, but the registry could not be read "
                                               "to confirm it is still in production")
    reason: str


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    options: dict[str, str]
    status: Literal["ok", "degraded"] = "ok"
    problems: list[VersionProblemInfo] = Field(default_factory=list)


class Liveness(BaseModel):
    status: Literal["ok"]
    detail: str = ""


class Health(BaseModel):
    status: Literal["ok", "loading", "degraded"]
    detail: str = ""
    problems: list[VersionProblemInfo] = Field(default_factory=list)
