import os

# Keep tests off the user's cache and on one thread per process: CI has 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
