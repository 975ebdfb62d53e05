"""Trained, quantized age/gender models shipped with agegender (see each model card)."""
