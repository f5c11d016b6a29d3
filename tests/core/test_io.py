"""Run records: the numbers in one file, byte-identical between runs; the clock readings beside it."""
import json

import pytest

from losslab import io as lio


def test_write_record_moves_clock_readings_beside_the_record(tmp_path):
    record = {"seed": 0, "test_acc": 0.5, "wall_seconds": 1.25,
              "seeds": {"0": {"snapshots": 3, "cpu_seconds": 0.5}}, "history": [{"epoch": 1}]}
    lio.write_record(tmp_path / "metrics.json", record)
    kept = json.loads((tmp_path / "metrics.json").read_text())
    timing = json.loads((tmp_path / "metrics.timing.json").read_text())
    assert kept == {"seed": 0, "test_acc": 0.5, "seeds": {"0": {"snapshots": 3}}, "history": [{"epoch": 1}]}
    assert timing == {"wall_seconds": 1.25, "seeds": {"0": {"cpu_seconds": 0.5}}}
    first = (tmp_path / "metrics.json").read_bytes()
    lio.write_record(tmp_path / "metrics.json", {**record, "wall_seconds": 9.0})  # another run, another clock
    assert (tmp_path / "metrics.json").read_bytes() == first
    assert record["wall_seconds"] == 1.25  # the caller's record is left whole


def test_json_files_are_strict_json_with_nan_as_null_wherever_it_sits(tmp_path):
    """NaN and infinities become null in a record whether they are Python floats, numpy scalars (float32 is
    not a Python float) or entries of tensors and arrays: every JSON reader can parse the file. Figure data
    (``keep_nan``) keep them."""
    import math

    import numpy as np
    import torch

    nan = float("nan")
    record = {"a": nan, "b": np.float32("nan"), "c": torch.tensor([1.0, nan]), "d": np.array([[math.inf, 2.0]]),
              "e": np.float64(0.5), "f": np.int64(3), "g": [torch.tensor(-math.inf)]}
    lio.write_json(tmp_path / "r.json", record)
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": None, "c": [1.0, None], "d": [[None, 2.0]], "e": 0.5, "f": 3,
                                "g": [None]}
    kept = lio.plain(record, keep_nan=True)
    assert math.isnan(kept["b"]) and math.isnan(kept["c"][1]) and kept["d"][0][0] == math.inf


# ---------------------------------------------------------------- a directory published whole -------------

def test_atomic_dir_replaces_the_directory_whole_only_on_success(tmp_path):
    out = tmp_path / "run"
    (out / "seed9").mkdir(parents=True)
    (out / "seed9" / "model.pt").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with lio.atomic_dir(out, key="a") as staging:
            assert staging == tmp_path / ".run.staging"
            lio.write_text(staging / "seed0" / "snapshot", "partial")
            raise RuntimeError("the job failed")
    assert (out / "seed9" / "model.pt").read_bytes() == b"old"  # the last complete version, untouched
    with lio.atomic_dir(out, key="a") as staging:  # same key: continues in what the failed job left
        assert (staging / "seed0" / "snapshot").read_text() == "partial"
        lio.write_text(staging / "seed0" / "model.pt", "new")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "run", "run/.files.json", "run/seed0", "run/seed0/model.pt", "run/seed0/snapshot"]  # no seed9 of the old
    assert lio.read_json(out / lio.MANIFEST) == {"seed0/model.pt": 3, "seed0/snapshot": 7}
    assert lio.manifest_problems(out) == []
    (out / "seed0" / "snapshot").write_text("cut")
    (out / "seed0" / "model.pt").unlink()
    assert lio.manifest_problems(out) == [f"{out}/seed0/model.pt: missing",
                                          f"{out}/seed0/snapshot: 3 bytes, written with 7 (truncated or altered)"]
    with pytest.raises(RuntimeError):
        with lio.atomic_dir(out, key="a") as staging:
            lio.write_text(staging / "stale", "x")
            raise RuntimeError
    with lio.atomic_dir(out, key="b") as staging:  # other settings: the stale staging is emptied first
        assert list(staging.iterdir()) == [staging / lio.STAGING_KEY]
    assert list(out.iterdir()) == [out / lio.MANIFEST]
