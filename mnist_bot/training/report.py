"""Evaluation plots: confusion heatmap, training curves, misclassified digits, reliability diagram."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt
import numpy as np

from mnist_bot.training.evaluate import Evaluation, Reliability, reliability


def plot_confusion(evaluation: Evaluation, path: Path) -> None:
    """Save the confusion matrix as an annotated heatmap (log colour scale shows rare errors)."""
    matrix = evaluation.confusion
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(
            col,
            row,
            str(value),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if value > matrix.max() / 3 else "black",
        )
    ax.set(
        xticks=range(10),
        yticks=range(10),
        xlabel="predicted",
        ylabel="true",
        title=f"{evaluation.model}: accuracy {evaluation.accuracy:.2%}",
    )
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_history(history: dict[str, list[float]], path: Path, title: str) -> bool:
    """Save accuracy and loss per epoch, train vs validation; False when there is no history."""
    if not history.get("loss"):
        return False
    epochs = range(1, len(history["loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        ax.plot(epochs, history.get(metric, []), "o-", label="train")
        if history.get(f"val_{metric}"):
            ax.plot(epochs, history[f"val_{metric}"], "s-", label="validation")
        ax.set(xlabel="epoch", ylabel=metric, title=f"{title}: {metric}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_misclassified(evaluation: Evaluation, images: np.ndarray, path: Path, limit: int = 36) -> None:
    """Save a grid of the most confident mistakes with true and predicted labels."""
    wrong = evaluation.misclassified()[:limit]
    cols = 6
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.8))
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, index in zip(np.atleast_1d(axes).ravel(), wrong, strict=False):
        predicted = int(evaluation.predicted[index])
        ax.imshow(images[index], cmap="gray")
        ax.set_title(
            f"true {evaluation.labels[index]} → {predicted}\n"
            f"{evaluation.probabilities[index, predicted]:.0%}",
            fontsize=8,
        )
    fig.suptitle(f"{evaluation.model}: {len(evaluation.misclassified())} misclassified test digits")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_reliability(curves: dict[str, Reliability], path: Path, title: str) -> None:
    """Save a reliability diagram: accuracy against confidence per bin, one line per set of answers."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 7), height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    for name, curve in curves.items():
        shown = curve.counts > 0
        top.plot(curve.confidence[shown], curve.accuracy[shown], "o-", label=f"{name} (ECE {curve.ece:.3f})")
        bottom.step(np.linspace(0.05, 0.95, len(curve.counts)), curve.counts, where="mid", label=name)
    top.set(ylabel="share right", title=title, xlim=(0, 1), ylim=(0, 1.02))
    top.grid(alpha=0.3)
    top.legend(fontsize=8)
    bottom.set(xlabel="confidence of the answer", ylabel="answers", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    evaluation: Evaluation, images: np.ndarray, metadata: dict[str, Any], folder: Path
) -> list[Path]:
    """Write every plot and metrics.json into `folder`; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "confusion_matrix.png", folder / "misclassified.png", folder / "reliability.png"]
    plot_confusion(evaluation, written[0])
    plot_misclassified(evaluation, images, written[1])
    curve = reliability(evaluation.probabilities.max(axis=1), evaluation.predicted == evaluation.labels)
    plot_reliability({"MNIST test": curve}, written[2], f"{evaluation.model}: reliability")
    if plot_history(metadata.get("history", {}), folder / "training_curves.png", evaluation.model):
        written.append(folder / "training_curves.png")
    metrics = folder / "metrics.json"
    metrics.write_text(json.dumps(evaluation.as_dict(), indent=2) + "\n")
    return [*written, metrics]
