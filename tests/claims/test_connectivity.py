"""The mode-connectivity family in the workflow (losslab.claims.connectivity): endpoints and settings, the jobs
on a tiny pair of trained nets (curve, evaluation, plane, FGE), and each claim's verdict logic on made-up paths."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from losslab.claims import tables, verdicts
from losslab.claims.connectivity import analysis as conn
from losslab.claims.runs import weights_file
from losslab.claims.connectivity import plan
from losslab.core import curves
from losslab.claims.settings import SettingsError
from losslab.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from losslab.pipeline.config import ConfigError, resolve, run_spec
from losslab.pipeline.registry import load_registry
from losslab.claims.training import load_trained
from losslab.core.surfaces import read_surface
from losslab.claims.training import train_run

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- endpoints and settings ------------------

EXPERIMENT = {
    "dataset": {"name": "digits", "preprocessing": ["normalize"], "n_train": 120, "n_test": 60},
    "model": {"name": "convnet", "channels": [4, 6], "hidden": [8], "pooled_size": 2},
    "recipe": {"optimizer": "momentum", "lr": 0.05, "batch_size": 32, "epochs": 3, "snapshots": [1, 3],
               "eval_every": 3},
    "seeds": [0, 1],
    "variants": {"G": {}, "A": {"recipe": {"batch_size": "full"}}, "sgdr": {"recipe": {"schedule": {
        "name": "sgdr", "T0": 1, "Tmult": 2}}}},
    "connectivity": {
        "curves": {"recipe": {"optimizer": "momentum", "lr": 0.02, "batch_size": 32, "epochs": 2,
                              "schedule": {"name": "garipov"}, "weight_decay": 5e-4},
                   "points": 5, "plane": {"n": 3, "margin": 0.2},
                   "pairs": {"GG": {"a": "G/seed0", "b": "G/seed1", "kinds": ["bezier", "polychain"], "plane": True},
                             "GA": {"a": "G/seed0", "b": "A/seed1", "kinds": ["polychain"]}}},
        plan.GARIPOV: {"pair": "GG"},
        plan.GOTMARE: {"reference": "G", "pairs": {"A": "GA"}},
        plan.SGDR: {"sgdr": "sgdr", "step": "G", "epochs": [1, 3]},
        plan.SCALING: {"endpoint": "G/seed0", "t": [0.1, 1.0, 4]},
        plan.FGE: {"variant": "G", "start_epoch": 1, "epochs": 4, "cycle": 2, "lr1": 0.02, "lr2": 0.001,
                   "curve": {"pair": "GG", "kind": "bezier", "points": 3}},
    },
}


def test_endpoints_parse_print_and_locate_their_weights(tmp_path: Path) -> None:
    ep = plan.Endpoint.parse("G/seed1")
    assert (ep.variant, ep.seed, ep.epoch) == ("G", 1, None) and str(ep) == "G/seed1"
    assert ep.weights_file(tmp_path) == tmp_path / "seed1" / "model.pt"
    snap = plan.Endpoint.parse("sgdr/seed0/epoch14")
    assert snap.epoch == 14 and str(snap) == "sgdr/seed0/epoch14"
    assert snap.weights_file("r") == Path("r/seed0/snapshots/epoch_14.pt")
    for bad in ("G", "G/0", "G/seed", "G/seed1/epoch", "G/seed1/14", "a b/seed1"):
        with pytest.raises(ConfigError, match="expected '<variant>/seed<k>'"):
            plan.Endpoint.parse(bad)


def test_settings_list_the_curves_and_planes() -> None:
    plan.check_settings(EXPERIMENT)
    assert plan.pair_curves(EXPERIMENT) == [("GG", "bezier"), ("GG", "polychain"), ("GA", "polychain")]
    assert plan.plane_curves(EXPERIMENT) == [("GG", "bezier"), ("GG", "polychain")]
    s = plan.curve_settings(EXPERIMENT)
    assert s.bends == 1 and s.bn == "recompute" and s.plane == plan.PlaneSettings(n=3, margin=0.2) and s.points == 5
    assert s.subset(["plane", "bn"]) == {"plane": {"n": 3, "margin": 0.2}, "bn": "recompute"}
    with pytest.raises(SettingsError, match="connectivity.curves: unknown keys \\['bend'\\]"):
        plan.CurveSettings.from_mapping({"bend": 2})


@pytest.mark.parametrize("edit, needle", [
    (lambda e: e["connectivity"]["curves"]["pairs"]["GA"].update(b="Z/seed1"), "no variant 'Z'"),
    (lambda e: e["connectivity"]["curves"]["pairs"]["GA"].update(b="A/seed7"), "seed 7 is not trained"),
    (lambda e: e["connectivity"]["curves"]["pairs"]["GA"].update(b="A/seed1/epoch2"), "keeps no snapshot of epoch 2"),
    (lambda e: e["connectivity"]["curves"]["pairs"]["GA"].update(b="G/seed0"), "both endpoints are G/seed0"),
    (lambda e: e["connectivity"][plan.GARIPOV].update(pair="GA"), "trains no bezier curve"),
    (lambda e: e["connectivity"][plan.GOTMARE]["pairs"].update(B="GB"), "no pair 'GB'"),
    (lambda e: e["connectivity"][plan.SGDR].update(epochs=[1, 2]), "keeps no snapshot of epoch 2"),
    (lambda e: e["connectivity"][plan.FGE].update(start_epoch=2), "keeps no snapshot of epoch 2"),
    (lambda e: e["connectivity"][plan.FGE].update(epochs=3), "fit at least twice"),
    (lambda e: e["connectivity"][plan.FGE]["curve"].update(kind="polychain", pair="GX"), "no pair|GX"),
    (lambda e: e["connectivity"][plan.SCALING].update(endpoint="G/seed0/epoch9"), "epoch 9"),
])
def test_a_bad_reference_is_named_before_any_job(edit, needle: str) -> None:
    exp = copy.deepcopy(EXPERIMENT)
    edit(exp)
    with pytest.raises(ConfigError, match=needle):
        plan.check_settings(exp)


def test_every_scale_that_defines_the_family_resolves() -> None:
    """Each scale file validates against the schema and, where it has connectivity settings, they resolve."""
    for scale in ("smoke", "desk", "cpu", "paper"):
        cfg = resolve({"scale": scale, "data_dir": "/nonexistent"}, root=ROOT)
        for exp in cfg["experiments"].values():
            if "connectivity" in exp:
                plan.check_settings(exp)
                assert plan.pair_curves(exp)


# ---------------------------------------------------------------- the jobs on two tiny trained nets ---------

@pytest.fixture(scope="module")
def runs(tmp_path_factory, cached_resources) -> Path:
    """Variants G and A (two seeds, three epochs, snapshots after epochs 1 and 3) of a tiny convnet; the module's
    tests read their data from the same roots (``cached_resources``, set for the whole module)."""
    root = tmp_path_factory.mktemp("runs")
    for variant in ("G", "A"):
        run = run_spec(EXPERIMENT, variant)
        for seed in (0, 1):
            train_run(run, seed, root / variant / f"seed{seed}", root / "ckpt")
    return root


def test_curve_jobs_train_resume_evaluate_and_draw_the_plane(runs: Path, tmp_path: Path) -> None:
    settings = plan.curve_settings(EXPERIMENT)
    pair = plan.pairs(EXPERIMENT)["GA"]
    run_g, run_a = run_spec(EXPERIMENT, "G"), run_spec(EXPERIMENT, "A")
    files = (pair["a"].weights_file(runs / "G"), pair["b"].weights_file(runs / "A"))
    out = tmp_path / "GA" / "polychain"
    rec = conn.train_pair_curve(run_g, run_a, pair, "polychain", settings, *files, out / "curve.pt",
                                out / "train.json", tmp_path / "ckpt")
    assert rec["epochs"] == 2 and not rec["diverged"] and rec["a"] == "G/seed0" and rec["b"] == "A/seed1"
    assert json.loads((out / "train.json").read_text())["num_parameters"] == rec["num_parameters"]
    [ckpt] = list((tmp_path / "ckpt").glob("polychain-*.pt"))
    # a rerun resumes from the finished checkpoint: the same curve, bitwise, no training
    again = conn.train_pair_curve(run_g, run_a, pair, "polychain", settings, *files, out / "again.pt",
                                  out / "again.json", tmp_path / "ckpt")
    assert again["history"] == rec["history"]
    assert curves.load_curve(out / "again.pt").digest() == curves.load_curve(out / "curve.pt").digest()
    # another recipe gets another checkpoint, never the stale one
    other = dataclasses.replace(settings, recipe={**settings.recipe, "lr": 0.01})
    conn.train_pair_curve(run_g, run_a, pair, "polychain", other, *files, out / "o.pt", out / "o.json",
                          tmp_path / "ckpt")
    assert len(list((tmp_path / "ckpt").glob("polychain-*.pt"))) == 2 and ckpt.exists()

    ev = conn.evaluate_pair_curve(run_g, out / "curve.pt", settings, out / "curve.h5", pair=pair)
    back = curves.read_curve_evaluation(out / "curve.h5")
    assert back.attrs["a"] == "G/seed0" and back.attrs["b"] == "A/seed1" and len(back.t) == 5
    assert back.attrs["n_test"] == 60 and conn.evaluation_test_size(back) == 60  # the binomial tolerances' n
    np.testing.assert_array_equal(back["segment_test_err"], ev.values["segment_test_err"])
    # the endpoints of the evaluation are the two runs' final networks
    g0 = json.loads((runs / "G" / "seed0" / "metrics.json").read_text())
    a1 = json.loads((runs / "A" / "seed1" / "metrics.json").read_text())
    assert back["test_err"][0] == pytest.approx(1 - g0["test_acc"], abs=1e-12)
    assert back["test_err"][-1] == pytest.approx(1 - a1["test_acc"], abs=1e-12)

    figs = conn.pair_curve_plane(run_g, out / "curve.pt", settings, out / "plane.h5", out / "plane")
    assert [Path(f).suffix for f in figs] == [".png", ".pdf"] and all(Path(f).stat().st_size for f in figs)
    plane = read_surface(out / "plane.h5")
    assert plane.complete and plane["train_loss"].shape == (3, 3)
    # an untrained curve is the segment: no plane, and the error says why
    straight = curves.load_curve(out / "curve.pt")
    curves.save_curve(tmp_path / "straight.pt", curves.make_curve("polychain", straight.w0, straight.w1))
    with pytest.raises(ValueError, match="has not left the segment"):
        conn.pair_curve_plane(run_g, tmp_path / "straight.pt", settings, tmp_path / "p.h5", tmp_path / "p")


def test_fge_job_and_ensemble_inputs(runs: Path, tmp_path: Path) -> None:
    s = EXPERIMENT["connectivity"][plan.FGE]
    run_g = run_spec(EXPERIMENT, "G")
    rec = conn.fge_of_runs(run_g, runs / "G", [0, 1], {k: v for k, v in s.items() if k != "curve"},
                           tmp_path / "fge")
    assert {k: v["snapshots"] for k, v in rec["seeds"].items()} == {"0": 2, "1": 2}
    assert torch.load(tmp_path / "fge" / "seed0.pt", weights_only=True).shape[0] == 2
    g0, g1 = (weights_file(runs / "G", s_) for s_ in (0, 1))
    model, _, w0, w1 = conn.load_pair(run_g, run_g, g0, g1)
    curve = curves.make_curve("bezier", w0, w1)
    curves.save_curve(tmp_path / "curve.pt", curve)
    inputs = conn.ensemble_inputs(run_g, runs / "G", tmp_path / "fge", [0, 1], curve_file=tmp_path / "curve.pt",
                                  curve_ts=[0.0, 0.5, 1.0])
    assert inputs.fge[0].shape[0] == 2 and inputs.independent.shape[0] == 2 and inputs.curve.shape[0] == 3
    # the curve's end members are the two independent networks
    torch.testing.assert_close(inputs.curve[0], inputs.single[0][0])
    torch.testing.assert_close(inputs.curve[-1], inputs.single[1][0])


def test_iterate_segments_between_snapshots(runs: Path) -> None:
    run_g = run_spec(EXPERIMENT, "G")
    segs = conn.iterate_segments({"step": (run_g, runs / "G")}, [0, 1], [1, 3], 5)
    assert [(s.role, s.seed, s.epochs) for s in segs] == [("step", 0, (1, 3)), ("step", 1, (1, 3))]
    g0 = json.loads((runs / "G" / "seed0" / "metrics.json").read_text())
    assert segs[0].evaluation.values["train_loss"][-1] == pytest.approx(g0["train_loss"], rel=1e-5)


# ---------------------------------------------------------------- verdict logic on made-up paths -------------

T = np.linspace(0.0, 1.0, 11)


def _path(test_err: np.ndarray, train_loss: np.ndarray, segment_test_err: np.ndarray,
          segment_train_loss: np.ndarray, length_ratio: float = 1.5) -> curves.CurveEvaluation:
    """A CurveEvaluation with these values (the train error and test loss derived), straight length 1."""
    values = {"test_err": test_err, "train_loss": train_loss, "train_err": test_err / 2, "test_loss": train_loss * 1.1,
              "segment_test_err": segment_test_err, "segment_train_loss": segment_train_loss,
              "segment_train_err": segment_test_err / 2, "segment_test_loss": segment_train_loss * 1.1}
    dl = np.r_[0.0, np.full(len(T) - 1, length_ratio / (len(T) - 1))]
    seg_dl = np.r_[0.0, np.full(len(T) - 1, 1.0 / (len(T) - 1))]
    q = ("train_loss", "train_err", "test_loss", "test_err")
    metrics = {**curves.path_metrics({k: values[k] for k in q}, dl),
               **curves.path_metrics({k: values[f"segment_{k}"] for k in q}, seg_dl, "segment_"),
               "length": length_ratio, "segment_length": 1.0, "length_ratio": length_ratio,
               "segment_length_ratio": 1.0}
    return curves.CurveEvaluation(T, values, metrics, dl)


def _bump(base: float, height: float) -> np.ndarray:
    return base + height * np.sin(np.pi * T)


SEGMENT = {"segment_test_err": _bump(0.05, 0.5), "segment_train_loss": _bump(0.1, 2.0)}
REGISTRY = {c["id"]: c for c in load_registry(ROOT / "config" / "claims.yaml")}


def _decision(claim_id: str) -> dict:
    return REGISTRY[claim_id]["decision"]


def _parts(res) -> list[str]:
    return [d["name"] for d in res.decisions]


def test_garipov_claim_decides_by_its_preregistration(tmp_path: Path) -> None:
    dec = _decision(plan.GARIPOV)
    flat = {k: _path(_bump(0.05, 0.0), _bump(0.1, 0.02), **SEGMENT) for k in plan.KINDS}
    for ev in flat.values():
        ev.attrs["n_test"] = 10_000  # the paper's test set: tolerances of about 0.44 pp
    res = conn.garipov_claim(flat, dec, "smoke", tmp_path)
    assert res.verdict == REPRODUCED and _parts(res) == ["segment_barrier", "bezier_flat", "polychain_flat"]
    assert res.numbers["segment.test_err_barrier"] == pytest.approx(0.5) and res.numbers["n_test"] == 10_000
    assert res.decisions[0]["estimate"] == pytest.approx(50.0)
    assert "effect.segment_barrier.estimate" not in res.numbers  # one value: the barrier numbers carry it
    assert res.decisions[1]["tolerance"] == pytest.approx(100 * verdicts.binomial_tolerance(0.05, 10_000))
    assert res.numbers["bezier.length_ratio"] == 1.5 and "endpoints w0 / w1: train loss" in res.regime
    for f in ("table.csv", "table.md", "figure.png", "figure.pdf"):
        assert (tmp_path / f).stat().st_size > 0
    table = (tmp_path / "table.md").read_text()
    assert "63.75" in table and "endpoint_train_acc_%" in table and "tolerance_pp" in table
    # a curve 8 pp above its endpoints: the reverse, shown beyond the tolerance
    high = {**flat, "polychain": _path(_bump(0.05, 0.08), _bump(0.1, 0.02), **SEGMENT)}
    high["polychain"].attrs["n_test"] = 10_000
    res = conn.garipov_claim(high, dec, "smoke", tmp_path)
    assert res.verdict == NOT_REPRODUCED and res.decisions[2]["verdict"] == NOT_REPRODUCED
    # the smoke test set (360 digits): tolerance 2.3-2.9 pp > the 2 pp margin, so a curve part can never be
    # reproduced there (its barrier is >= 0): flat curves are inconclusive
    small = {k: _path(_bump(0.05, 0.0), _bump(0.1, 0.02), **SEGMENT) for k in plan.KINDS}
    on_360 = _path(np.round(_bump(0.05, 0.02) * 360) / 360, _bump(0.1, 0.02),
                   np.round(SEGMENT["segment_test_err"] * 360) / 360, SEGMENT["segment_train_loss"])
    assert conn.evaluation_test_size(on_360) == 360  # an evaluation without n_test: inferred from its errors
    for ev in small.values():
        ev.attrs["n_test"] = 360
    res = conn.garipov_claim(small, dec, "smoke", tmp_path)
    assert res.verdict == INCONCLUSIVE and [d["verdict"] for d in res.decisions][1:] == [INCONCLUSIVE] * 2
    assert res.decisions[1]["tolerance"] > 2
    with pytest.raises(ValueError, match="polychain"):
        conn.garipov_claim({"bezier": flat["bezier"]}, dec, "smoke", tmp_path)


def test_gotmare_claim_decides_on_the_mean_over_pairs(tmp_path: Path) -> None:
    dec = _decision(plan.GOTMARE)
    heights = dict(zip("ABCDEF", (0.0, 0.01, 0.0, 0.02, 0.01, 0.0)))
    ok = {label: {"polychain": _path(_bump(0.05, h), _bump(0.1, 0.02), **SEGMENT)} for label, h in heights.items()}
    ok["A"]["bezier"] = _path(_bump(0.05, 0.01), _bump(0.1, 0.01), **SEGMENT)
    res = conn.gotmare_claim(ok, dec, "smoke", tmp_path)
    assert res.verdict == REPRODUCED and _parts(res) == ["polychain_flat"] and res.decisions[0]["n"] == 6
    assert "not on every pair" in res.notes and "G-D" in res.notes
    table = (tmp_path / "table.md").read_text()
    assert "not trained" in table and "other_train_loss" in table  # Bezier only for A
    bad = {label: {"polychain": _path(_bump(0.05, 0.08 + h), _bump(0.1, 0.02), **SEGMENT)}
           for label, h in heights.items()}
    assert conn.gotmare_claim(bad, dec, "smoke", tmp_path).verdict == NOT_REPRODUCED
    one = conn.gotmare_claim({"A": ok["A"]}, dec, "smoke", tmp_path)  # one pair: no confidence bound
    assert one.verdict == INCONCLUSIVE and one.decisions[0]["n"] == 1


def _seg(role: str, seed: int, epochs: tuple[int, int], height: float) -> conn.IterateSegment:
    loss = np.linspace(0.2, 0.1, len(T)) + height * np.sin(np.pi * T)
    return conn.IterateSegment(role, seed, epochs, _path(loss / 4, loss, loss / 4, loss))


def test_sgdr_claim_is_decided_only_on_converged_iterates(tmp_path: Path) -> None:
    dec = _decision(plan.SGDR)
    segs = [_seg("sgdr", s, e, 0.5 + 0.1 * s) for s in (0, 1, 2) for e in ((6, 14), (14, 30))]
    segs += [_seg("step", s, e, 0.0) for s in (0, 1, 2) for e in ((6, 14), (14, 30))]
    trained = {(r, s): {"train_loss": 0.1, "train_acc": 0.99, "test_acc": 0.95, "epochs": 30, "steps_per_epoch": 14}
               for r in ("sgdr", "step") for s in (0, 1, 2)}
    # the iterates' train accuracy 97.5-98.8% >= 95% of the step run's 99%: converged, decided by the parts
    res = conn.sgdr_claim(segs, dec, "smoke", tmp_path, runs=trained)
    assert res.verdict == REPRODUCED and "precondition" in res.notes and ": met" in res.notes and res.n_seeds == 3
    # the same barriers with an SGDR iterate at 90% train accuracy (smoke's first iterate was at chance): inconclusive
    loss = np.linspace(0.8, 0.1, len(T)) + 0.5 * np.sin(np.pi * T)
    early = [conn.IterateSegment("sgdr", 0, (6, 14), _path(loss / 4, loss, loss / 4, loss))] + segs[1:]
    res = conn.sgdr_claim(early, dec, "smoke", tmp_path, runs=trained)
    assert res.verdict == INCONCLUSIVE and "not met" in res.notes and "90.0%" in res.notes
    # without the runs' metrics the precondition is not checked
    res = conn.sgdr_claim(segs, dec, "smoke", tmp_path)
    assert res.verdict == INCONCLUSIVE and "not checked" in res.notes
    res = conn.sgdr_claim(segs, dec, "smoke", tmp_path, runs=trained)
    assert _parts(res) == ["sgdr_barrier", "step_no_barrier"]
    assert [d["verdict"] for d in res.decisions] == [REPRODUCED, REPRODUCED]  # the parts alone: a clear effect
    assert res.numbers["step.seed0.e6-14.barrier"] == pytest.approx(0.0, abs=1e-12)
    assert res.numbers["sgdr.seed0.e6-14.relative_barrier"] > 1 and "420 steps" in res.regime
    assert "84 / 196" in (tmp_path / "table.md").read_text()  # the iterates' steps: 14 per epoch
    # the reverse: no barrier between SGDR's iterates, the step run's bumped
    rev = [_seg("sgdr", s, e, 0.0) for s in (0, 1, 2) for e in ((6, 14), (14, 30))]
    rev += [_seg("step", s, e, 0.5 + 0.1 * s) for s in (0, 1, 2) for e in ((6, 14), (14, 30))]
    res = conn.sgdr_claim(rev, dec, "smoke", tmp_path)
    assert res.verdict == INCONCLUSIVE and [d["verdict"] for d in res.decisions] == [NOT_REPRODUCED] * 2
    one = conn.sgdr_claim([_seg("sgdr", 0, (6, 14), 0.5), _seg("step", 0, (6, 14), 0.0)], dec, "smoke", tmp_path)
    assert [d["verdict"] for d in one.decisions] == [INCONCLUSIVE] * 2  # one pair x seed: no bound


def test_walk_claim_decides_by_its_preregistration(tmp_path: Path) -> None:
    dec = REGISTRY["sgd-walk-no-barrier"]["decision"]
    down = np.linspace(0.3, 0.2, len(T))  # the loss falls monotonically from one epoch to the next
    flat = [conn.IterateSegment("sgd", s, (e, e + 1), _path(np.full(len(T), 0.1), down - 0.01 * e,
                                                          np.full(len(T), 0.1), down))
            for s in (0, 1, 2) for e in range(1, 6)]
    res = conn.walk_claim(flat, dec, "smoke", tmp_path)
    assert res.verdict == REPRODUCED and "0/15 segments above 0.05" in res.measured and res.n_seeds == 3
    assert res.numbers["seed0.e1-2.relative_barrier"] == pytest.approx(0.0, abs=1e-12)
    assert (tmp_path / "figure.png").exists()
    first = (tmp_path / "table.md").read_bytes()  # `snakemake figures` redraws it from table.csv: the same bytes
    tables.rerender_table(tmp_path / "table.csv")
    assert (tmp_path / "table.md").read_bytes() == first
    bumped = [_seg("sgd", s, (e, e + 1), 0.5) for s in (0, 1, 2) for e in range(1, 6)]  # a hill on every segment
    assert conn.walk_claim(bumped, dec, "smoke", tmp_path).verdict == NOT_REPRODUCED


def test_width_claim_needs_pairs_per_width(tmp_path: Path) -> None:
    dec = _decision(plan.WIDTH)

    def sweep(barriers, ratios, pairs=1):
        return [(k, 100 * (i + 1), _path(_bump(0.05, 0.0), _bump(0.1, b + 0.01 * j * (i + 1)), **SEGMENT,
                              length_ratio=r + 0.01 * j * (i + 1)))
                for i, (k, b, r) in enumerate(zip((0.25, 0.5, 1.0), barriers, ratios)) for j in range(pairs)]
    # one pair per width (every scale's sweep): a single replicate, inconclusive however clear the trend
    res = conn.width_claim(sweep((0.3, 0.2, 0.1), (2.0, 1.5, 1.2)), dec, "smoke", tmp_path)
    assert res.verdict == INCONCLUSIVE and _parts(res) == ["barrier_falls", "length_ratio_falls"]
    assert res.numbers["K0.25.length_ratio"] == 2.0 and "pairs per width" in res.notes
    assert "endpoint_train_acc_%" in (tmp_path / "table.md").read_text()
    # three pairs per width: a clear fall is reproduced, a clear rise is not
    res = conn.width_claim(sweep((0.3, 0.2, 0.1), (2.0, 1.5, 1.2), pairs=3), dec, "smoke", tmp_path)
    assert res.verdict == REPRODUCED and res.decisions[0]["n"] == 3
    res = conn.width_claim(sweep((0.1, 0.2, 0.3), (1.2, 1.5, 2.0), pairs=3), dec, "smoke", tmp_path)
    assert res.verdict == NOT_REPRODUCED


def _probs(labels: list[list[int]], n_classes: int = 3) -> torch.Tensor:
    """K x N x C softmax outputs whose argmax are the given labels (confidence 0.8)."""
    lab = torch.tensor(labels)
    p = torch.full((*lab.shape, n_classes), 0.2 / (n_classes - 1))
    return p.scatter_(-1, lab[..., None], 0.8)


def test_fge_claim_decides_by_its_preregistration(tmp_path: Path) -> None:
    dec = _decision(plan.FGE)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    single = {s: _probs([[0, 1, 2, 0, 1, 2, 0, 1, 1, 1]]) for s in (0, 1, 2)}  # two errors each
    # three FGE members, each with one or two errors, the majority right everywhere
    fge = {s: _probs([[0, 1, 2, 0, 1, 2, 0, 1, 1, 0], [0, 1, 2, 0, 1, 2, 0, 0, 2, 0],
                      [0, 1, 2, 0, 1, 1, 0, 1, 2, 0]]) for s in (0, 1, 2)}
    independent = _probs([[0, 1, 2, 0, 1, 2, 0, 1, 1, 1], [1, 1, 2, 2, 1, 0, 0, 1, 2, 0]])
    inputs = conn.EnsembleInputs(y, single, fge, independent, _probs([[0, 1, 2, 0, 1, 2, 0, 1, 2, 2]] * 3), [0, .5, 1])
    trained = {s: {"train_loss": 0.05, "train_acc": 1.0, "test_acc": 0.8, "epochs": 30, "steps_per_epoch": 10}
               for s in (0, 1, 2)}
    res = conn.fge_claim(inputs, dec, "smoke", tmp_path, trained=trained, fge_epochs=6)
    assert res.numbers["seed0.fge_err"] == 0.0 and res.numbers["seed0.single_err"] == pytest.approx(0.2)
    assert res.numbers["independent.disagreement"] == pytest.approx(0.5)
    assert res.numbers["curve.err"] == pytest.approx(0.1) and _parts(res) == ["fge_beats_single", "fge_less_diverse"]
    # an FGE error of 0: ln(0.2 / 0) cannot be measured; every seed's disagreement equal: no certainty
    assert res.verdict == INCONCLUSIVE and "not finite" in res.notes and "not independent replicates" in res.notes
    assert "240 + 60" in (tmp_path / "table.md").read_text() and "300 steps" in res.regime

    def measured(single_err, fge_err, fge_dis, ind_dis=0.5):
        parts, notes = conn.fge_measured(dict(enumerate(single_err)), dict(enumerate(fge_err)),
                                         dict(enumerate(fge_dis)), ind_dis)
        return verdicts.decide_claim(dec, parts), notes
    clear, notes = measured([0.20, 0.22, 0.21, 0.19], [0.10, 0.12, 0.10, 0.09], [0.10, 0.12, 0.11, 0.09])
    assert clear.verdict == REPRODUCED and notes == ""
    reverse, _ = measured([0.10, 0.12, 0.10, 0.09], [0.20, 0.22, 0.21, 0.19], [0.9, 1.0, 0.95, 0.8])
    assert reverse.verdict == NOT_REPRODUCED
    few, _ = measured([0.2], [0.1], [0.1])  # one seed: no confidence bound
    assert few.verdict == INCONCLUSIVE and [d.verdict for d in few.decisions] == [INCONCLUSIVE] * 2
    same, notes = measured([0.20, 0.22, 0.21], [0.10, 0.12, 0.10], [0.1, 0.1, 0.1])
    assert same.decisions[0].verdict == REPRODUCED and same.decisions[1].verdict == INCONCLUSIVE
    assert same.verdict == INCONCLUSIVE and "zero spread" in notes


def test_scaling_claim_on_a_trained_convnet(runs: Path, tmp_path: Path) -> None:
    run_g = run_spec(EXPERIMENT, "G")
    model, data = load_trained(run_g, weights_file(runs / "G", 0))
    dec = _decision(plan.SCALING)
    res = conn.scaling_claim(model, data, np.linspace(0.1, 1.0, 4), dec, "smoke", tmp_path)
    assert res.numbers["labels_constant"] == 1.0 and res.numbers["test_err_range"] == 0.0
    assert res.numbers["train_loss_tmin"] > res.numbers["train_loss_t1"] and res.numbers["labels_changed"] == 0
    assert _parts(res) == ["labels_constant", "loss_rises"] and res.decisions[0]["verdict"] == REPRODUCED
    assert res.decisions[1]["estimate"] == pytest.approx(res.numbers["loss_factor"])
    assert "train loss" in res.regime
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        conn.scaling_claim(model, data, [0.0, 1.0], dec, "smoke", tmp_path)


def test_scaling_decision_by_its_tolerances() -> None:
    """The corrected sign: no label may change (minus the count > -0.5), and L(t_min) / L(1) beyond 2 +- 0.2."""
    dec = _decision(plan.SCALING)

    def decide(changed: int, factor: float) -> str:
        return verdicts.decide_claim(dec, {"labels_constant": verdicts.Measured(value=-float(changed)),
                                           "loss_rises": verdicts.Measured(value=factor)}).verdict
    assert decide(0, 16.0) == REPRODUCED
    assert decide(3, 16.0) == NOT_REPRODUCED and decide(0, 1.5) == NOT_REPRODUCED
    assert decide(0, 2.1) == INCONCLUSIVE  # within the stated tolerance
