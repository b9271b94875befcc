"""/forecast over a tiny forecaster trained on a generated monthly CSV."""

import math

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("pandas")
import pandas as pd  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from recur.cli import main  # noqa: E402
from recur.serve.app import create_app, load_models  # noqa: E402
from recur.serve.limits import Limits  # noqa: E402
from recur.tasks.forecast import ForecastModel  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("forecast")
    t = np.arange(96)
    values = 100 + 0.5 * t + 10 * np.sin(2 * math.pi * t / 12)
    pd.DataFrame({"month": pd.date_range("2001-01-01", periods=96, freq="MS").strftime("%Y-%m-%d"),
                  "units": values}).to_csv(root / "sales.csv", index=False)
    assert main(["train", "forecast", "--csv", str(root / "sales.csv"), "--column", "units",
                 "--horizon", "6", "--steps", "30", "--hidden-size", "8",
                 "--out", str(root / "run")]) == 0
    return root / "run"


@pytest.fixture(scope="module")
def client(run_dir):
    with TestClient(create_app(load_models([f"sales={run_dir}"], Limits()), Limits())) as c:
        yield c


def test_forecast_of_its_own_series_equals_the_model(client, run_dir):
    response = client.post("/v1/models/sales/forecast", json={})
    assert response.status_code == 200
    got = response.json()
    model = ForecastModel.load(run_dir)
    expected = model.forecast(model.series.load())
    assert got["horizon"] == 6
    assert got["forecast"] == pytest.approx(expected.median.tolist(), rel=1e-9)
    assert all(lo <= m <= hi for lo, m, hi in zip(got["lower"], got["forecast"], got["upper"],
                                                  strict=True))
    short = client.post("/v1/models/sales/forecast", json={"horizon": 2}).json()
    assert short["forecast"] == got["forecast"][:2]


def test_a_posted_history_is_continued(client, run_dir):
    model = ForecastModel.load(run_dir)
    history = model.series.load().values[:60].tolist()
    got = client.post("/v1/models/sales/forecast", json={"series": history}).json()
    assert len(got["forecast"]) == 6
    assert min(history) - 50 < got["forecast"][0] < max(history) + 50


@pytest.mark.parametrize("body, status, text", [
    ({"series": [1.0, 2.0]}, 422, "series must hold at least"),
    ({"horizon": 99}, 422, "horizon must be at most"),
    ({"horizon": 0}, 422, "horizon"),
    ({"series": [1.0, "x"]}, 422, "series"),
    ({"values": [1.0]}, 422, "values"),
])
def test_bad_requests_are_4xx_naming_the_field(client, body, status, text):
    response = client.post("/v1/models/sales/forecast", json=body)
    assert response.status_code == status
    assert text in response.text
