# Mode connectivity (Garipov et al. 2018; Gotmare et al. 2018; losslab.claims.connectivity.analysis). An experiment with a
# `connectivity` key trains the modes as its variants (rule `train`); its `connectivity.curves.pairs` name two
# endpoints each and the curve kinds to train between them. Jobs: one curve per (pair, kind), resumable
# (`curve`); its loss and error along t beside the segment's, one HDF5 per curve (`curve_eval`); the plane
# through its endpoints and bend with the curve drawn on the contours (`curve_plane`, pairs with `plane: true`);
# fast geometric ensembling from a run's snapshot (`fge`); and the six claims of the family.
from losslab.claims.connectivity import plan

CONN = {name: exp for name, exp in EXP.items() if "connectivity" in exp}
for _exp in CONN.values():
    plan.check_settings(_exp)  # every endpoint, pair and snapshot referenced exists, before any job runs


def connectivity_experiment(name):
    if name not in CONN:
        raise ValueError(f"experiment {name!r} has no `connectivity` settings in the {SCALE} scale")
    return CONN[name]


def curve_pair(name, pair):
    ps = plan.pairs(connectivity_experiment(name))
    if pair not in ps:
        raise ValueError(f"experiment {name!r} has no curve pair {pair!r}; pairs: {sorted(ps)}")
    return ps[pair]


def curve_file(name, pair, kind, what):
    """curves/<experiment>/<pair>/<kind>/<what>: curve.pt, train.json (rule curve), curve.h5 (curve_eval),
    plane.h5 / plane.png (curve_plane)."""
    return f"{R}/curves/{name}/{pair}/{kind}/{what}"


def curve_settings_for(name, wc_kind, pair, keys):
    """The curve settings a job depends on (and only those: an edit elsewhere does not rerun it)."""
    if wc_kind not in curve_pair(name, pair)["kinds"]:
        raise ValueError(f"pair {pair!r} of {name!r} trains no {wc_kind} curve")
    return plan.curve_settings(connectivity_experiment(name)).subset(keys)


def endpoint_run(name, pair, end):
    """The run spec of endpoint `a` or `b` of a pair."""
    return run_spec(experiment(name), curve_pair(name, pair)[end].variant)


def claim_settings(claim_id):
    name = claim_entry(claim_id)["experiment"]
    return connectivity_experiment(name)["connectivity"][claim_id]


def connectivity_planes():
    """The plane figure of every (pair, kind) with `plane: true` (rule `all` asks for them)."""
    return [curve_file(name, p, k, "plane.png") for name, exp in CONN.items() for p, k in plan.plane_curves(exp)]


TRAIN_KEYS = ("bends", "recipe", "seed")
EVAL_KEYS = ("points", "bn", "n_train", "n_test", "chunk")
PLANE_KEYS = ("bn", "n_train", "n_test", "chunk", "tile_rows", "plane")


rule curve:
    input:
        run_a=lambda wc: run_dir(wc.experiment, curve_pair(wc.experiment, wc.pair)["a"].variant),
        run_b=lambda wc: run_dir(wc.experiment, curve_pair(wc.experiment, wc.pair)["b"].variant),
    output:
        curve=curve_file("{experiment}", "{pair}", "{kind}", "curve.pt"),
        record=curve_file("{experiment}", "{pair}", "{kind}", "train.json"),
    params:
        run_a=lambda wc: endpoint_run(wc.experiment, wc.pair, "a"),
        run_b=lambda wc: endpoint_run(wc.experiment, wc.pair, "b"),
        a=lambda wc: str(curve_pair(wc.experiment, wc.pair)["a"]),
        b=lambda wc: str(curve_pair(wc.experiment, wc.pair)["b"]),
        settings=lambda wc: curve_settings_for(wc.experiment, wc.kind, wc.pair, TRAIN_KEYS),
        checkpoints=lambda wc: f"{R}/checkpoints/curves/{wc.experiment}/{wc.pair}",
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    wildcard_constraints:
        pair="[A-Za-z0-9_]+",
        kind="bezier|polychain",
    log:
        f"{LOGS}/curve/{{experiment}}/{{pair}}/{{kind}}.log",
    benchmark:
        f"{R}/benchmarks/curve/{{experiment}}/{{pair}}/{{kind}}.tsv"
    threads: job_threads("curve")
    resources:
        **job_resources("curve"),
    script:
        "../scripts/curve_train.py"


rule curve_eval:
    input:
        curve=curve_file("{experiment}", "{pair}", "{kind}", "curve.pt"),
    output:
        curve_file("{experiment}", "{pair}", "{kind}", "curve.h5"),
    params:
        run_a=lambda wc: endpoint_run(wc.experiment, wc.pair, "a"),
        a=lambda wc: str(curve_pair(wc.experiment, wc.pair)["a"]),
        b=lambda wc: str(curve_pair(wc.experiment, wc.pair)["b"]),
        settings=lambda wc: curve_settings_for(wc.experiment, wc.kind, wc.pair, EVAL_KEYS),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
    wildcard_constraints:
        pair="[A-Za-z0-9_]+",
        kind="bezier|polychain",
    log:
        f"{LOGS}/curve_eval/{{experiment}}/{{pair}}/{{kind}}.log",
    benchmark:
        f"{R}/benchmarks/curve_eval/{{experiment}}/{{pair}}/{{kind}}.tsv"
    threads: job_threads("curve_eval")
    resources:
        **job_resources("curve_eval"),
    script:
        "../scripts/curve_eval.py"


rule curve_plane:
    input:
        curve=curve_file("{experiment}", "{pair}", "{kind}", "curve.pt"),
    output:
        h5=curve_file("{experiment}", "{pair}", "{kind}", "plane.h5"),
        png=curve_file("{experiment}", "{pair}", "{kind}", "plane.png"),
        pdf=curve_file("{experiment}", "{pair}", "{kind}", "plane.pdf"),
    params:
        run_a=lambda wc: endpoint_run(wc.experiment, wc.pair, "a"),
        title=lambda wc: (f"{wc.kind} curve {curve_pair(wc.experiment, wc.pair)['a']} to "
                          f"{curve_pair(wc.experiment, wc.pair)['b']} ({SCALE})"),
        settings=lambda wc: curve_settings_for(wc.experiment, wc.kind, wc.pair, PLANE_KEYS),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    wildcard_constraints:
        pair="[A-Za-z0-9_]+",
        kind="bezier|polychain",
    log:
        f"{LOGS}/curve_plane/{{experiment}}/{{pair}}/{{kind}}.log",
    benchmark:
        f"{R}/benchmarks/curve_plane/{{experiment}}/{{pair}}/{{kind}}.tsv"
    threads: job_threads("curve_plane")
    resources:
        **job_resources("curve_plane"),
    script:
        "../scripts/curve_plane.py"


def fge_settings(name):
    return connectivity_experiment(name)["connectivity"][plan.FGE]


rule fge:
    input:
        run=lambda wc: run_dir(wc.experiment, fge_settings(wc.experiment)["variant"]),
    output:
        directory(f"{R}/fge/{{experiment}}"),
    params:
        run=lambda wc: run_spec(experiment(wc.experiment), fge_settings(wc.experiment)["variant"]),
        seeds=lambda wc: experiment(wc.experiment)["seeds"],
        settings=lambda wc: {k: v for k, v in fge_settings(wc.experiment).items() if k != "curve"},
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
    log:
        f"{LOGS}/fge/{{experiment}}.log",
    benchmark:
        f"{R}/benchmarks/fge/{{experiment}}.tsv"
    threads: job_threads("fge")
    resources:
        **job_resources("fge"),
    script:
        "../scripts/fge.py"


# ---------------------------------------------------------------- the claims -----------------------------

def conn_claim_params(claim_id, variants):
    """What every claim job of the family gets (losslab.claims.connectivity.analysis.ClaimJob); `variants(settings)` names the
    variants whose run specs it reads."""
    def exp_of():
        return experiment(claim_entry(claim_id)["experiment"])

    return dict(
        settings=lambda wc: claim_settings(claim_id),
        curves=lambda wc: plan.curve_settings(exp_of()).subset(EVAL_KEYS),
        runs=lambda wc: {v: run_spec(exp_of(), v) for v in variants(claim_settings(claim_id))},
        dirs=lambda wc: {v: run_dir(claim_entry(claim_id)["experiment"], v) for v in variants(claim_settings(claim_id))},
        files=lambda wc: claim_curve_files(claim_id),
        seeds=lambda wc: exp_of()["seeds"],
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
    )


def claim_curves(claim_id):
    """pair -> the curve kinds of the claim's pairs that it reads."""
    s, name = claim_settings(claim_id), claim_entry(claim_id)["experiment"]
    if claim_id == plan.GARIPOV:
        return {s["pair"]: list(curve_pair(name, s["pair"])["kinds"])}
    if claim_id == plan.GOTMARE:
        return {p: list(curve_pair(name, p)["kinds"]) for p in s["pairs"].values()}
    if claim_id == plan.WIDTH:
        return {p: [s["kind"]] for p in s["pairs"] if s["kind"] in curve_pair(name, p)["kinds"]}
    if claim_id == plan.FGE:
        return {s["curve"]["pair"]: [s["curve"]["kind"]]}
    return {}


def claim_curve_files(claim_id):
    """What of the claim's curves it reads, `what -> pair -> kind -> file` (its job's `files` param: the claim
    looks its inputs up here and parses no path): curve.h5 evaluations, curve.pt, train.json records, plane.h5."""
    name = claim_entry(claim_id)["experiment"]
    planes = set(plan.plane_curves(experiment(name)))
    kinds = claim_curves(claim_id)
    out = {what: {p: {k: curve_file(name, p, k, f) for k in ks} for p, ks in kinds.items()}
           for what, f in (("evaluations", "curve.h5"), ("curves", "curve.pt"), ("records", "train.json"))}
    out["planes"] = {p: {k: curve_file(name, p, k, "plane.h5") for k in ks if (p, k) in planes}
                     for p, ks in kinds.items()}
    return out


def claim_inputs(claim_id, what):
    """The files of `claim_curve_files(claim_id)[what]`, as a list (the rule's input)."""
    return [f for by_kind in claim_curve_files(claim_id)[what].values() for f in by_kind.values()]


def claim_run_dirs(claim_id, variants):
    return [run_dir(claim_entry(claim_id)["experiment"], v) for v in variants]


def conn_claim(claim_id, variants, **inputs):
    return dict(input=inputs, params=conn_claim_params(claim_id, variants))


# "a walk with SGD" (sgd-walk-no-barrier): the segments between consecutive epoch snapshots of one variant of its
# experiment (that experiment's `walk` block), every seed.
WALK = "sgd-walk-no-barrier"


def walk_rule():
    name = claim_experiment(WALK)
    variant = lambda: experiment_key(name, "walk")["variant"]
    return dict(input=dict(runs=lambda wc: [run_dir(name, variant())]),
                params=dict(settings=lambda wc: experiment_key(name, "walk"),
                            runs=lambda wc: {variant(): run_spec(experiment(name), variant())},
                            dirs=lambda wc: {variant(): run_dir(name, variant())},
                            seeds=lambda wc: experiment(name)["seeds"]))


CLAIM_RULES[WALK] = walk_rule()


CLAIM_RULES.update({
    plan.GARIPOV: conn_claim(plan.GARIPOV, lambda s: [], evaluations=lambda wc: claim_inputs(plan.GARIPOV, "evaluations"),
                             planes=lambda wc: claim_inputs(plan.GARIPOV, "planes")),
    plan.GOTMARE: conn_claim(plan.GOTMARE, lambda s: [], evaluations=lambda wc: claim_inputs(plan.GOTMARE, "evaluations")),
    plan.SGDR: conn_claim(
        plan.SGDR, lambda s: [s["sgdr"], s["step"]],
        runs=lambda wc: claim_run_dirs(plan.SGDR, [claim_settings(plan.SGDR)[r] for r in ("sgdr", "step")])),
    plan.WIDTH: conn_claim(plan.WIDTH, lambda s: [], evaluations=lambda wc: claim_inputs(plan.WIDTH, "evaluations"),
                           records=lambda wc: claim_inputs(plan.WIDTH, "records")),
    plan.SCALING: conn_claim(
        plan.SCALING, lambda s: [plan.Endpoint.parse(s["endpoint"]).variant],
        runs=lambda wc: claim_run_dirs(plan.SCALING,
                                       [plan.Endpoint.parse(claim_settings(plan.SCALING)["endpoint"]).variant])),
    plan.FGE: conn_claim(
        plan.FGE, lambda s: [s["variant"]],
        runs=lambda wc: claim_run_dirs(plan.FGE, [claim_settings(plan.FGE)["variant"]]),
        fge=lambda wc: f"{R}/fge/{claim_entry(plan.FGE)['experiment']}",
        curve=lambda wc: claim_inputs(plan.FGE, "curves")),
})
