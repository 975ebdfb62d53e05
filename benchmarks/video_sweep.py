r"""How video mode's defaults were chosen: each option varied alone around the defaults.

The videos are `peer_compare.py --videos`'s (1, 2 and 4 moving faces, and the tracking
trials: two crossings, a re-entry, a face stepping in, an occlusion; UTKFace test-split
faces, known truth). For every setting: ms per frame (p50 and mean, 1 thread), frame age
MAE and gender accuracy against the still path's on the same frames, id switches, and the
most frames a present face waited for its first estimate. Writes video_sweep.json and
video_sweep.md.

    python benchmarks/video_sweep.py --data $AGEGENDER_DATA --detector-model $AGEGENDER_DETECTOR \\
        --model models/agegender_mnv2_128_int8.tflite --videos 4 --out benchmarks/peer
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

import cv2
import numpy as np

from agegender.edge import synthetic_video as SV
from agegender.edge.benchmark import machine_info, write_report
from agegender.edge.estimator import Estimator
from agegender.edge.files import portable_command
from agegender.edge.images import read_canonical
from agegender.edge.video import VideoEstimator, VideoOptions
from agegender.train import data as data_mod
from peer_compare import our_faces, pooled, timed, video_sets

log = logging.getLogger("video_sweep")

VARIATIONS = {"detect_every": (5, 30), "reestimate_every": (10, 60), "settle_age_std": (0.75, 3.0),
              "roi_scale": (1.6, 2.5), "track_face_px": (32, 64), "motion_threshold": (0.0, 25.0),
              "flip": (True,)}
ESTIMATOR_VARIATIONS = {"views": (3, 5), "refine_landmarks": (True,)}  # Estimator options, video options at defaults


def run_all(videos, make) -> dict:
    scores, seconds = [], []
    for video in videos:
        outputs, truths, times = timed(make(), video)
        scores.append(SV.score_video(outputs, truths))
        seconds += times
    return pooled(scores, seconds)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("AGEGENDER_DATA"), help="UTKFace folder (default $AGEGENDER_DATA)")
    p.add_argument("--detector-model", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--videos", type=int, default=4, help="videos per face count (default 4)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    cv2.setNumThreads(1)
    records, _ = data_mod.read_dataset(args.data, check_content=False)
    test = [r for r in data_mod.select_split(records, "test") if r.age <= 90]
    chosen = data_mod.stratified_sample(test, args.videos * 7 + 10, seed=4)
    faces = [SV.ActorFace(read_canonical(chosen[i].path), float(chosen[i].age), bool(chosen[i].gender))
             for i in np.random.default_rng(4).permutation(len(chosen))]  # every set spans the ages
    videos = [v for vs in video_sets(faces, args.videos).values() for v in vs]
    estimator = Estimator(model=args.model, detector=args.detector_model, threads=1)
    for frame, _ in videos[0]:  # warm-up
        estimator.predict(frame)
    still = run_all(videos, lambda: our_faces(estimator.predict))
    log.info("still path: p50 %.2f ms, MAE %.3f", still["latency_ms"]["p50"], still["age_mae"])
    settings = [("defaults", VideoOptions())] + [
        (f"{key} = {value}", dataclasses.replace(VideoOptions(), **{key: value}))
        for key, values in VARIATIONS.items() for value in values]
    settings += [(f"{key} = {value}", VideoOptions(), Estimator(model=args.model, detector=estimator.detector, threads=1,
                                                               **{key: value}))
                 for key, values in ESTIMATOR_VARIATIONS.items() for value in values]
    rows = {}
    for name, options, *other in settings:
        runtime = other[0] if other else estimator
        rows[name] = run_all(videos, lambda: our_faces(VideoEstimator(runtime, options).process))
        r = rows[name]
        log.info("%s: p50 %.2f mean %.2f ms, MAE %.3f, switches %s", name, r["latency_ms"]["p50"],
                 r["latency_ms"]["mean"], r["age_mae"], r["id_switches"])
    d = VideoOptions()
    lines = [f"{len(videos)} videos, {still['frames']} frames, {still['faces_expected']} present faces; 1 thread. "
             f"Still path on the same frames: p50 {still['latency_ms']['p50']:.2f} ms, mean "
             f"{still['latency_ms']['mean']:.2f} ms, age MAE {still['age_mae']:.2f}, gender "
             f"{still['gender_accuracy']:.1%}. Defaults: " + ", ".join(
                 f"{k} {getattr(d, k)}" for k in VARIATIONS) + ", views 1", "",
             "| setting | p50 ms/frame | mean | faces found | age MAE (- still) | gender (- still) | id switches | "
             "first estimate after (max) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['latency_ms']['p50']:.2f} | {r['latency_ms']['mean']:.2f} | "
                     f"{r['faces_found']}/{r['faces_expected']} | {r['age_mae']:.2f} ({r['age_mae'] - still['age_mae']:+.2f}) | "
                     f"{r['gender_accuracy']:.1%} ({100 * (r['gender_accuracy'] - still['gender_accuracy']):+.1f}) | "
                     f"{r['id_switches']} | {r['first_estimate_delay_max']} |")
    write_report(args.out, "video_sweep", {"machine": machine_info(1), "still": still, "settings": rows,
                                           "command": portable_command("python benchmarks/video_sweep.py " + " ".join(
                                               sys.argv[1:] if argv is None else argv))}, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
