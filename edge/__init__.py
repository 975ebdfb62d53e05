"""agegender edge runtime: camera -> face -> aligned crop -> age/gender, without TensorFlow.

    from agegender.edge import Estimator, read_image
    faces = Estimator().predict(read_image("photo.jpg"))      # RGB
    faces = Estimator().predict(cv2.imread("photo.jpg"), colour="BGR")
"""


def __getattr__(name):  # lazy, so `import agegender.edge.contract` stays light
    if name in ("Estimator", "Face"):
        from agegender.edge import estimator

        return getattr(estimator, name)
    if name == "read_image":  # a file as 8-bit RGB, whatever its format (grey, alpha, 16-bit)
        from agegender.edge import images

        return images.read_image
    raise AttributeError(name)
