"""agegender edge runtime: camera -> face -> aligned crop -> age/gender, without TensorFlow.

    from agegender.edge import Estimator, read_image
    faces = Estimator().predict(read_image("photo.jpg"))      # RGB
    faces = Estimator().predict(cv2.imread("photo.jpg"), colour="BGR")

    video = VideoEstimator(Estimator())      # a stream: one per camera or video, frames in order
    faces = video.process(frame)             # faces with track ids; detects and estimates less
"""


import os as _os

# Bound the memory of every picture OpenCV decodes, whatever its format (PNG, JPEG, WebP, TIFF, GIF...):
# OpenCV refuses, from the header and before allocating, pictures over this many pixels. It reads the
# variable once, when cv2 is first imported, so it is set here, before any module of ours imports cv2.
MAX_PIXELS = 50_000_000
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))


def __getattr__(name):  # lazy, so `import agegender.edge.contract` stays light
    if name in ("Estimator", "Face"):
        from agegender.edge import estimator

        return getattr(estimator, name)
    if name in ("VideoEstimator", "VideoOptions"):
        from agegender.edge import video

        return getattr(video, name)
    if name == "read_image":  # a file as 8-bit RGB, whatever its format (grey, alpha, 16-bit)
        from agegender.edge import images

        return images.read_image
    raise AttributeError(name)
