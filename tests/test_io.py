"""Run records: the numbers in one file, byte-identical between runs; the clock readings beside it."""
import json

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
