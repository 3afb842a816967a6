"""Request and response schemas. Every numeric field is strict (a JSON number: no strings,
no booleans) and rejects NaN and infinities; prices, strikes, volatilities and maturities must
be positive, so a 422 names the field at fault. Bar dates are parsed here too, so a date the
service cannot handle is a 422 naming the row, never a 500 later.

Symbols and model names are lookup keys only (the service never builds a path from them);
their patterns still refuse separators and '..' so that no name can ever act as one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from causalcast.options.inputs import MAX_SIGMA, MAX_TAU

Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
StrictBool = Annotated[bool, Field(strict=True)]
# Volatility and maturity: positive and within what the pricers compute accurately.
Sigma = Annotated[float, Field(gt=0, le=MAX_SIGMA, allow_inf_nan=False, strict=True)]
Tau = Annotated[float, Field(gt=0, le=MAX_TAU, allow_inf_nan=False, strict=True)]

# Tickers as exchanges and data vendors write them: BRK.B, ^GSPC, EURUSD=X, BTC-USD.
SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9.^=_-]{0,31}$"
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


def _no_parent_reference(value: str) -> str:
    if ".." in value:
        raise ValueError("'..' is not allowed in a name")
    return value


Symbol = Annotated[str, Field(min_length=1, max_length=32, pattern=SYMBOL_PATTERN),
                   AfterValidator(_no_parent_reference)]
ModelName = Annotated[str, Field(max_length=64, pattern=MODEL_PATTERN),
                      AfterValidator(_no_parent_reference)]
# Bars are held as nanosecond timestamps (pandas), which span 1677-09-21 .. 2262-04-11;
# whole years inside that range are accepted.
FIRST_BAR_YEAR, LAST_BAR_YEAR = 1678, 2261

MAX_OPTIONS = 10_000
MAX_FORECAST_BATCH = 256
MAX_BARS = 5_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- options -------------------------------------------------------------------------------
class OptionSpec(_Strict):
    spot: Positive = Field(description="Underlying price S")
    strike: Positive = Field(description="Strike K")
    tau: Tau = Field(description=f"Time to expiry in years (at most {MAX_TAU:g})")
    sigma: Sigma = Field(description=f"Volatility, annualised (at most {MAX_SIGMA:g})")
    rate: Finite = Field(0.0, description="Continuously compounded risk-free rate")
    div: NonNegative = Field(0.0, description="Continuous dividend yield q")
    kind: Literal["call", "put"] = "call"
    style: Literal["european", "american"] = "european"


class OptionsPriceRequest(_Strict):
    options: list[OptionSpec] = Field(min_length=1, max_length=MAX_OPTIONS)
    method: Literal["pinn", "closed"] = "pinn"
    greeks: StrictBool = True


Kind = Literal["call", "put"]
Style = Literal["european", "american"]


class OptionColumns(_Strict):
    """The same options as `OptionSpec` rows, one array per field; a scalar applies to all."""
    spot: list[Positive] | Positive
    strike: list[Positive] | Positive
    tau: list[Tau] | Tau
    sigma: list[Sigma] | Sigma
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
    greeks: StrictBool = True


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
    tau: Tau
    sigma: Sigma
    rate: Finite = 0.0
    div: NonNegative = 0.0
    symbol: Symbol | None = Field(None, description="Also give the forecast-implied probability "
                               "from this symbol's promoted models")
    horizon: int | None = Field(None, ge=1, le=100_000, strict=True,
                                description="Forecast horizon in bars for the forecast-implied "
                                "probability; default: nearest to tau")


class ProbabilityResponse(BaseModel):
    risk_neutral: float = Field(description="N(d2): risk-neutral P(S_T > K)")
    pinn_implied: float | None = Field(None, description="-e^{r tau} dC/dK from the PINN")
    forecast_implied: float | None = None
    forecast_horizon: int | None = None
    model_versions: list[str] = Field(default_factory=list)


# --- forecasts -----------------------------------------------------------------------------
class Bar(_Strict):
    date: datetime = Field(description="ISO 8601 date or date-time. With an offset (or Z) it "
                           "is converted to UTC; without one it is taken as UTC. Years "
                           f"{FIRST_BAR_YEAR}..{LAST_BAR_YEAR}.")
    open: Positive
    high: Positive
    low: Positive
    close: Positive
    volume: NonNegative

    @field_validator("date")
    @classmethod
    def _utc_naive(cls, value: datetime) -> datetime:
        """One calendar convention for every bar: naive UTC (as the data loaders use)."""
        # Checked on the wall-clock year first: converting year 1 or 9999 with an offset
        # would overflow before any range check could word the problem.
        if not FIRST_BAR_YEAR <= value.year <= LAST_BAR_YEAR:
            raise ValueError(f"{value.isoformat()} is outside the supported range of years "
                             f"{FIRST_BAR_YEAR}..{LAST_BAR_YEAR}")
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    @model_validator(mode="after")
    def _shape(self) -> Bar:
        if self.high < max(self.open, self.close):
            raise ValueError(f"high {self.high} below max(open, close)")
        if self.low > min(self.open, self.close):
            raise ValueError(f"low {self.low} above min(open, close)")
        return self


class ForecastRequest(_Strict):
    symbol: Symbol
    bars: list[Bar] | None = Field(None, min_length=1, max_length=MAX_BARS,
                                   description="Recent bars to forecast from (oldest first); "
                                   "default: the bars the service holds for the symbol, or "
                                   "for a symbol no model serves, its bars in the store "
                                   "(answered by the production global model)")
    model: ModelName | None = Field(None, description="A promoted model name (e.g. "
                              "'lstm-global'); default: the one with the best validation loss")


class ForecastBatchRequest(_Strict):
    requests: list[ForecastRequest] = Field(min_length=1, max_length=MAX_FORECAST_BATCH)


class HorizonForecast(BaseModel):
    horizon: int
    mean_log_return: float = Field(description="Location μ of the log return over the horizon")
    median_price: float = Field(description="last_close·e^μ: the median of the price (the "
                                "log-return distribution is symmetric about μ)")
    mean_price: float | None = Field(description="The mean of the price, where it exists: "
                                     "last_close·e^(μ+s²/2) for a Gaussian model; null for a "
                                     "Student-t model, whose price has no finite mean")
    scale_log_return: float = Field(description="Scale s of the log-return distribution "
                                    "(Gaussian σ, or the Student-t scale)")
    p_up: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float


class GateVerdict(BaseModel):
    gate: str
    passed: bool
    detail: str


class Evidence(BaseModel):
    """What the served version's out-of-sample evaluation found (docs/serving.md). Loaded
    once per version when it is (re)loaded. A null field was not recorded: `missing` says
    why; nothing is estimated in its place."""
    accuracy: float | None = Field(description="Directional accuracy on the pooled "
                                   "walk-forward test rows (first horizon)")
    ci_low: float | None = Field(description="Lower end of the accuracy's confidence interval")
    ci_high: float | None = Field(description="Upper end of the accuracy's confidence interval")
    always_up: float | None = Field(description="Share of up moves on the same rows: the "
                                    "accuracy of always saying 'up'")
    p_dm: float | None = Field(description="One-sided Diebold-Mariano p-value, model better "
                               "than the naive forecast")
    p_direction: float | None = Field(description="One-sided p-value of the date-clustered "
                                      "direction test against the naive forecast")
    grade: str | None = Field(description="The honest grade shown (F unless earned)")
    n_test: int | None = Field(description="Out-of-sample rows the numbers rest on")
    beats_naive: bool = Field(description="Both naive-comparison gates pass on the recorded "
                              "evidence, and the version was not promoted by a manual "
                              "override (then always false, with a warning)")
    manual_override: bool = Field(description="Promoted without passing every default gate")
    naive_gates: list[GateVerdict] = Field(description="beats_naive_baseline and "
                                           "significant_vs_naive, as the registry ran them")
    split: str | None = Field(description="Where the p-values were computed")
    horizon: int | None = Field(description="Horizon (bars) of the tests")
    alpha: float | None = Field(description="Significance level of the tests")
    source: Literal["evaluation", "metrics"] = Field(description="evaluation: the attached "
                                                     "evaluation; metrics: the version's "
                                                     "recorded metrics (none attached)")
    evaluated_at: str = Field(description="When the evaluation was attached (or the version "
                              "registered, for source 'metrics'), UTC")
    missing: dict[str, str] = Field(description="Null field -> why it is null")


class ForecastResponse(BaseModel):
    symbol: str
    as_of: str
    last_close: float
    model: str
    model_versions: list[str]
    forecasts: list[HorizonForecast]
    model_scope: Literal["global", "symbol"] = Field(description="global: one model trained "
                                                     "across symbols; symbol: this symbol's own")
    unseen_symbol: bool = Field(description="The model never trained on this symbol; its "
                                "features are scaled with the pooled scaler of the global model")
    evidence: Evidence
    warnings: list[str] = Field(default_factory=list, description="E.g. a model promoted by "
                                "a manual gate override")
    cached: bool = False
    monitor_status: str = Field("unknown", description="The version's live monitoring status "
                                "when it answered: ok, watch, degraded, or unknown (not yet "
                                "scored); see docs/monitoring.md")


class ForecastBatchResponse(BaseModel):
    results: list[ForecastResponse]


class ModelInfo(BaseModel):
    symbol: str
    model: str
    version: str
    stage: str
    as_of: str | None = None
    monitor_status: str = Field("unknown", description="Live monitoring verdict: ok, watch, "
                                "degraded, or unknown (nothing scored yet); docs/monitoring.md")
    monitor_reasons: list[str] = Field(default_factory=list)


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


class MonitorResponse(BaseModel):
    """The live monitor's latest verdicts (docs/monitoring.md), one report per production
    version: status and reasons, live metrics per horizon with Wilson intervals next to the
    walk-forward figures, and the drift detectors' readings."""
    reports: list[dict[str, Any]] = Field(description="Per version: version, name, status "
                                          "(ok, watch, degraded, unknown), reasons, logged, "
                                          "scored, distinct_scored, live, walk_forward, "
                                          "live_below_walk_forward, drift")
    every_seconds: float = Field(description="How often the service scores and judges "
                                 "(0: the service's monitor is off; reports stay empty)")


class Liveness(BaseModel):
    status: Literal["ok"]
    detail: str = ""


class Health(BaseModel):
    status: Literal["ok", "loading", "degraded"]
    detail: str = ""
    problems: list[VersionProblemInfo] = Field(default_factory=list)
