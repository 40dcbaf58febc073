"""Training and evaluation (imports TensorFlow; never imported by the serving path)."""
