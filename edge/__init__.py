"""agegender edge runtime: camera -> face -> aligned crop -> age/gender, without TensorFlow."""
