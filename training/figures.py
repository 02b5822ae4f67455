"""The figures a training run logs to MLflow: calibration and gains on the test rows, and
LightGBM's feature importance."""

from __future__ import annotations

import pandas as pd

from leadscore.stats.metrics import calibration_bins, gains_curve
from leadscore.training.fit import TrainResult


def training_figures(result: TrainResult) -> tuple[dict, object]:
    """The run's figures (calibration, gains, feature importance) and pyplot, to close them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    test = result.test
    y = test["label"].to_numpy()
    scorers = [c[2:] for c in test.columns if c.startswith("p_")]

    fig, ax = plt.subplots(figsize=(5, 5))
    for name in scorers:
        points = calibration_bins(y, test[f"p_{name}"].to_numpy())
        ax.plot(
            [b["mean_predicted"] for b in points],
            [b["observed"] for b in points],
            marker="o",
            label=name,
        )
    top = float(max(test[[f"p_{n}" for n in scorers]].max().max(), y.mean() * 2))
    ax.plot([0, top], [0, top], "k--", lw=1)
    ax.set(
        xlabel="predicted probability (decile mean)",
        ylabel="observed win rate",
        title="Calibration (test)",
    )
    ax.legend()
    figs["calibration_curve.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    for name in scorers:
        ax.plot(*gains_curve(y, test[f"p_{name}"].to_numpy()), label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="random")
    ax.set(
        xlabel="share of leads worked (best first)",
        ylabel="share of wins captured",
        title="Gains (test)",
    )
    ax.legend()
    figs["gains_chart.png"] = fig

    booster = result.scorer.booster
    gain = (
        pd.Series(booster.feature_importance("gain"), index=booster.feature_name())
        .sort_values()
        .tail(20)
    )
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.barh(gain.index, gain.to_numpy())
    ax.set(xlabel="total gain", title="Feature importance (top 20)")
    fig.tight_layout()
    figs["feature_importance.png"] = fig
    return figs, plt
