"""agegender edge runtime: camera -> face -> aligned crop -> age/gender, without TensorFlow.

    from agegender.edge import Estimator
    faces = Estimator().predict(rgb_image)
"""


def __getattr__(name):  # lazy, so `import agegender.edge.contract` stays light
    if name in ("Estimator", "Face"):
        from agegender.edge import estimator

        return getattr(estimator, name)
    raise AttributeError(name)
