import os

# Keep tests off the user's cache and on one thread per process: CI has 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The smallest recipe that still trains: search and engine tests run many trials with it.
TINY_RECIPE = """train_subset: 256
val_size: 128
image_size: 16
epochs: 2
batch_size: 64
relax_strides: 0
"""
