"""softtargets: do soft targets bring unlearning closer to retraining than hard labels?"""

import os

# Deterministic CUDA (the default; config key `deterministic`) needs a fixed cuBLAS workspace, which cuBLAS
# reads when CUDA starts: set it before anything can start CUDA. Only cuBLAS reads it; CPU runs are unaffected.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

__version__ = "0.1.0"
