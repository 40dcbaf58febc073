"""Training and evaluation, never imported by the serving path.

Most modules here import TensorFlow; `synthetic` (realistic test inputs) and `realistic` (extra
training data) do not, so benchmarks and tests use them without it.
"""
