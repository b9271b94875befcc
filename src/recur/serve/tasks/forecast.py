"""The forecaster behind ``POST /v1/models/{name}/forecast``.

Request ``{"series": [float, ...], "horizon": 6}``: the history to continue (empty or
absent: the series the model was trained on, as ``recur forecast DIR`` does) and how many
steps to return (at most the model's own horizon; default all of it). Response
``{"forecast": [...], "lower": [...], "upper": [...], "levels": [0.1, 0.9], "horizon": h}``:
the median and the outermost quantiles, from ``ForecastModel.forecast``. A history shorter
than the model's input window is a 422 naming ``series``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recur.serve.handlers import RequestError, Route, TaskHandler, register_handler
from recur.serve.limits import Limits
from recur.tasks.forecast import ForecastModel

MAX_SERIES_LENGTH = 100_000


class ForecastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    series: list[float] = Field(default_factory=list, max_length=MAX_SERIES_LENGTH,
                                description="history to continue (empty: the model's own series)")
    horizon: int | None = Field(None, ge=1, description="steps to return (≤ the model's horizon)")

    @field_validator("series")
    @classmethod
    def _finite(cls, series: list[float]) -> list[float]:
        for i, v in enumerate(series):
            if not math.isfinite(v):
                raise ValueError(f"series[{i}] must be a finite number, got {v}")
        return series


class ForecastResponse(BaseModel):
    forecast: list[float]
    lower: list[float]
    upper: list[float]
    levels: list[float] = Field(description="the quantile levels of lower and upper")
    horizon: int


def forecast(model: ForecastModel, requests: list[ForecastRequest],
             limits: Limits) -> list[ForecastResponse]:
    responses = []
    for request in requests:
        h = request.horizon or model.horizon
        if h > model.horizon:
            raise RequestError(f"horizon must be at most this model's horizon {model.horizon}, "
                               f"got {h}")
        own = model.series.load()
        if request.series:
            need = model.data.input_length
            if len(request.series) < need:
                raise RequestError(f"series must hold at least {need} values (this model's "
                                   f"input window), got {len(request.series)}")
            history = replace(own, values=np.asarray(request.series, dtype=np.float64),
                              dates=None, freq=None, missing=0)
        else:
            history = own
        result = model.forecast(history)
        levels = list(result.levels)
        responses.append(ForecastResponse(
            forecast=result.median[:h].tolist(), lower=result.quantiles[:h, 0].tolist(),
            upper=result.quantiles[:h, -1].tolist(), levels=[levels[0], levels[-1]], horizon=h))
    return responses


def describe(model: ForecastModel) -> dict[str, Any]:
    c = model.model.config
    return {"series": model.series.name, "horizon": model.horizon,
            "input_length": model.data.input_length, "period": model.series.period,
            "cell": c.cell, "hidden_size": c.hidden_size,
            "parameters": sum(p.numel() for p in model.model.parameters())}


def load(folder: Path) -> ForecastModel:
    return ForecastModel.load(folder)


HANDLER = register_handler(TaskHandler(
    task="forecast", load=load, describe=describe,
    routes={"forecast": Route(ForecastRequest, ForecastResponse, run=forecast, batch=False)},
))
