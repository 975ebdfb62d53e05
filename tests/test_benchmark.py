import json

import numpy as np
import pytest

from agegender.edge import benchmark as B


def test_latency_stats_on_known_samples():
    stats = B.latency_stats([0.001 * v for v in range(1, 101)])  # 1..100 ms
    assert stats["runs"] == 100
    assert stats["mean"] == pytest.approx(50.5)
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01)
    assert stats["max"] == pytest.approx(100) and stats["min"] == pytest.approx(1)
    assert stats["std"] == pytest.approx(np.std(np.arange(1, 101)))
    with pytest.raises(ValueError):
        B.latency_stats([])


def test_tiny_benchmark_run_and_json_schema(tmp_path, utkface_sample, yunet_model):
    from agegender.edge.cli import main

    out = tmp_path / "bench.json"
    code = main(["benchmark", "--runs", "5", "--warmup", "1", "--frames", "3", "--crops", str(utkface_sample),
                 "--detector-model", str(yunet_model), "--json", str(out), "--markdown", str(tmp_path / "b.md")])
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result) >= {"machine", "models", "end_to_end", "peak_rss_mb", "frame_size"}
    assert {"cpu", "cores", "arch", "python", "threads"} <= set(result["machine"])
    assert result["models"] and {"model", "size_mb", "init_ms", "first_ms", "latency"} <= set(result["models"][0])
    assert set(result["models"][0]["latency"]) >= {"mean", "std", "p50", "p90", "p99", "max"}
    assert set(result["end_to_end"]) == {"1", "2", "4"}
    for stages in result["end_to_end"].values():
        assert {"detect", "align", "infer", "track", "draw", "total", "fps_p50"} <= set(stages)
    assert "| faces |" in (tmp_path / "b.md").read_text()
