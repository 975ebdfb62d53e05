"""Helpers for the edge tests: synthetic frames built from real UTKFace crops."""
import cv2
import numpy as np

from agegender.edge.images import read_canonical


def paste_face(crop_rgb, frame_size=(480, 640), center=(320, 240), scale=1.0, angle=0.0, background=90):
    """A frame with the canonical crop pasted at center, scaled and rotated (as a camera would see it).

    Returns (frame, matrix) where matrix maps crop coordinates to frame coordinates."""
    h, w = frame_size
    size = crop_rgb.shape[0]
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += np.array(center) - np.array([size / 2, size / 2])
    frame = np.full((h, w, 3), background, np.uint8)
    warped = cv2.warpAffine(crop_rgb, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    mask = cv2.warpAffine(np.full(crop_rgb.shape[:2], 255, np.uint8), matrix, (w, h)) > 0
    frame[mask] = warped[mask]
    return frame, matrix


def write_video(path, frames, fps=10):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


def moving_face_frames(crop_path, n=12, step=6):
    crop = read_canonical(str(crop_path))
    return [paste_face(crop, center=(220 + step * i, 240))[0] for i in range(n)]


def constant_onnx_model(path, heads: dict, size: int = 128):
    """A tiny ONNX age/gender-style model whose outputs are constants: {head: vector of its width}.
    (image NHWC float -> ReduceMean -> MatMul by zeros -> + the constant), for routing tests."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["pooled"], axes=[1, 2], keepdims=0)]
    inits, outs = [], []
    for name, values in heads.items():
        values = np.asarray(values, np.float32).reshape(1, -1)
        inits += [numpy_helper.from_array(np.zeros((3, values.shape[1]), np.float32), f"w_{name}"),
                  numpy_helper.from_array(values, f"b_{name}")]
        nodes += [helper.make_node("MatMul", ["pooled", f"w_{name}"], [f"z_{name}"]),
                  helper.make_node("Add", [f"z_{name}", f"b_{name}"], [name])]
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", values.shape[1]]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                         ["N", size, size, 3])], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)
