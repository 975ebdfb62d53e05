"""agegender training: UTKFace data, models, training and evaluation (needs the [train] extras)."""
