import json
from pathlib import Path

import numpy as np
import pytest

from agegender.edge import benchmark as B

REPO_SAMPLE = str(Path(B.__file__).parent / "samples" / "astronaut.png")  # shipped with the package


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
        assert {"capture", "detect", "align", "infer", "track", "draw", "total", "fps_p50"} <= set(stages)
        assert stages["frames"] == 3
    assert set(result["end_to_end_video"]) == {"1", "2", "4"}
    for faces, row in result["end_to_end_video"].items():  # video mode: the same people in every frame
        assert row["frames"] == 3 and row["faces_found_mean"] == int(faces)
        assert 1 <= row["full_detections"] <= 3 and row["estimates"] >= int(faces) and row["total_p90"] >= row["total"]
    assert result["installed_mb"]["numpy"] > 1
    markdown = (tmp_path / "b.md").read_text()
    assert "| faces pasted | faces found (mean) |" in markdown and "Video mode" in markdown


def test_benchmark_on_a_video_source_and_without_any_data(tmp_path, yunet_model, monkeypatch):
    import cv2

    from agegender.edge.cli import main
    from agegender.edge.images import read_image

    monkeypatch.delenv("AGEGENDER_DATA", raising=False)
    video = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    photo = cv2.resize(read_image(REPO_SAMPLE)[:, :, ::-1], (640, 480))
    for _ in range(8):
        writer.write(photo)
    writer.release()
    out = tmp_path / "video.json"
    assert main(["benchmark", "--runs", "3", "--warmup", "1", "--frames", "5", "--source", video,
                 "--detector-model", str(yunet_model), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for stages in (result["end_to_end"][video], result["end_to_end_video"][video]):
        assert stages["frames"] == 5 and stages["capture"] > 0 and stages["faces_found_mean"] == 1
    # no crops folder, no $AGEGENDER_DATA: the synthetic frames come from the shipped sample photo
    out = tmp_path / "sample.json"
    assert main(["benchmark", "--runs", "3", "--warmup", "1", "--frames", "3",
                 "--detector-model", str(yunet_model), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["end_to_end"]["1"]["faces_found_mean"] == 1
