"""Regenerate tests/golden/shipped.json: what each shipped model says on a few fixed inputs.

Run it only when a new model is shipped on purpose (and say so in the commit):

    python tests/golden/make_golden.py --detector-model face_detection_yunet_2023mar.onnx --utkface UTKFace/

Inputs: the sample photo through the full runtime (YuNet at its default size, landmark alignment),
and three UTKFace test-split crops (a child, an adult, a senior) through `predict --aligned`.
"""
import argparse
import json
import os

from agegender.edge.estimator import Estimator
from agegender.edge.files import sha256_file
from agegender.edge.images import read_canonical, read_image
from agegender.edge.zoo import shipped_models_dir

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "..", "edge", "samples", "astronaut.png")
CROPS = ("4_0_0_20161219204117636.jpg.chip.jpg", "28_0_0_20170105162351171.jpg.chip.jpg",
         "65_0_0_20170104185320086.jpg.chip.jpg", "30_1_0_20170103182413737.jpg.chip.jpg")


def outputs(model_path: str, detector: str, utkface: str) -> dict:
    estimator = Estimator(model=model_path, detector=detector, threads=1)
    face = estimator.predict(read_image(SAMPLE))[0]
    out = {"sha256": sha256_file(model_path), "sample": {"age": round(face.age, 2),
                                                         "female_prob": round(face.female_prob, 4)}}
    for name in CROPS:
        crop = estimator.predict(read_canonical(os.path.join(utkface, name)), aligned=True)[0]
        out[name] = {"age": round(crop.age, 2), "female_prob": round(crop.female_prob, 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector-model", required=True)
    parser.add_argument("--utkface", required=True)
    args = parser.parse_args()
    folder = shipped_models_dir()
    golden = {name: outputs(os.path.join(folder, name), args.detector_model, args.utkface)
              for name in sorted(os.listdir(folder)) if name.endswith((".tflite", ".onnx"))}
    with open(os.path.join(HERE, "shipped.json"), "w") as f:
        json.dump(golden, f, indent=2)
        f.write("\n")
    print(json.dumps(golden, indent=2))


if __name__ == "__main__":
    main()
