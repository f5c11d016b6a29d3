"""The figure of an MPO pattern fit (:mod:`losslab.core.patterns`): the target pattern, the loss map and the
accuracy map of the plane, side by side."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from losslab.core.patterns import PatternMaps, validate_pattern
from losslab.plots import figures


log = logging.getLogger(__name__)


def plot_pattern_fit(pattern: np.ndarray, maps: PatternMaps, stem: str | Path, title: str | None = None) -> list[str]:
    """The target pattern beside the fitted train and test accuracy maps (shared ``[0, 1]`` grey scale: 1 =
    black = the target's low-loss cells, and accuracy 1), with one colour bar; written as PNG + PDF."""
    pattern = validate_pattern(pattern)
    data = {"pattern": pattern, "train_acc": maps.train_acc, "test_acc": maps.test_acc, "title": title}
    return figures.render(draw_pattern_fit, data, stem)


@figures.register_plot("patterns.fit")
def draw_pattern_fit(data: dict[str, Any], stem: str | Path) -> list[str]:
    """:func:`plot_pattern_fit` from its stored data: the target pattern beside the fitted train and test
    accuracy maps on one shared ``[0, 1]`` grey scale."""
    title = data["title"]
    fig, axes = figures.new_figure(ncols=3, width=9.0, height=3.3, constrained_layout=True)
    panels = ((np.asarray(data["pattern"]), "target pattern\n(black = low loss)"),
              (np.asarray(data["train_acc"], float), "fitted: train accuracy"),
              (np.asarray(data["test_acc"], float), "fitted: test accuracy"))
    image = None
    for ax, (values, label) in zip(axes, panels):
        image = ax.imshow(values, cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(label)
        ax.set_xlabel("cell j (y)")
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(True)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel("cell i (x)")
    fig.colorbar(image, ax=list(axes), shrink=0.85, label="accuracy / pattern value")
    if title:
        fig.suptitle(title)
    return figures.save(fig, stem)
