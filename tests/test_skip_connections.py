"""The skip-connection claim's landscape metrics and its table/figure/verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest

from losslab import skip_connections as sc
from losslab.claims import REPRODUCED, VERDICTS

XS = np.linspace(-1, 1, 21)
YS = np.linspace(-1, 1, 15)  # a non-square grid: [i, j] = (XS[i], YS[j])
XX, YY = np.meshgrid(XS, YS, indexing="ij")


def test_plane_hessian_of_a_quadratic_is_exact():
    z = 3 * XX ** 2 + XX * YY + 0.5 * YY ** 2
    eig = sc.plane_hessians(z, XS, YS)
    assert eig.shape == (19, 13, 2)
    expected = np.linalg.eigvalsh(np.array([[6.0, 1.0], [1.0, 1.0]]))
    assert np.allclose(eig, expected, atol=1e-8)


def test_nonconvex_fraction_of_bowl_saddle_and_ridge():
    assert sc.nonconvex_fraction(XX ** 2 + YY ** 2, XS, YS) == 0.0
    assert sc.nonconvex_fraction(XX ** 2 - YY ** 2, XS, YS) == 1.0
    # a bowl with ripples: partly non-convex
    rippled = XX ** 2 + YY ** 2 + 0.05 * np.sin(12 * XX)
    assert 0.2 < sc.nonconvex_fraction(rippled, XS, YS) < 0.8


def test_local_minima():
    assert sc.local_minima(XX ** 2 + YY ** 2) == 1
    egg_crate = np.cos(3 * np.pi * XX) * np.cos(3 * np.pi * YY)
    assert sc.local_minima(egg_crate) > 3
    assert sc.local_minima(np.zeros((5, 5))) == 0  # flat: no strict minimum


def _runs(depth, skip, errs):
    return [{"seed": s, "test_acc": 1 - e, "diverged": False,
             "run": {"model": {"name": "resnet", "depth": depth, "skip": skip}}} for s, e in enumerate(errs)]


def _surface(z):
    return {"xcoordinates": XS, "ycoordinates": YS, "train_loss": z}


def test_claim_writes_table_figure_and_verdict(tmp_path):
    bowl = 1 + XX ** 2 + YY ** 2
    rough = bowl + 0.2 * np.sin(9 * XX) * np.cos(7 * YY)
    runs = {"d8_skip": _runs(8, True, [0.05, 0.06, 0.05]), "d8_noskip": _runs(8, False, [0.06, 0.06, 0.06]),
            "d20_skip": _runs(20, True, [0.05, 0.05, 0.05]), "d20_noskip": _runs(20, False, [0.2, 0.3, 0.25])}
    surfaces = {"d8_skip": _surface(bowl), "d8_noskip": _surface(bowl), "d20_skip": _surface(bowl),
                "d20_noskip": _surface(rough)}
    check = {"rule": "written before", "min_agree": 0.8}
    res = sc.claim(runs, surfaces, check, "smoke", tmp_path)
    assert res.verdict == REPRODUCED
    assert res.numbers["d20.noskip.nonconvex_fraction"] > res.numbers["d20.skip.nonconvex_fraction"] == 0.0
    for f in ("table.csv", "table.md", "figure.png", "figure.pdf"):
        assert (tmp_path / f).stat().st_size > 0
    assert "ResNet-56" in (tmp_path / "table.md").read_text()
    res.write(tmp_path / "verdict.json")
    assert json.loads((tmp_path / "verdict.json").read_text())["verdict"] in VERDICTS

    # the same errors with a smooth deep no-skip surface: the landscape half fails
    surfaces["d20_noskip"] = _surface(bowl)
    assert sc.claim(runs, surfaces, check, "smoke", tmp_path / "b").verdict == "not reproduced"


def test_claim_needs_both_skip_settings_at_every_depth(tmp_path):
    runs = {"a": _runs(8, True, [0.1]), "b": _runs(20, True, [0.1])}
    with pytest.raises(ValueError, match="with and without skips"):
        sc.claim(runs, {}, {"rule": "", "min_agree": 1}, "smoke", tmp_path)
