import os
import sys

# A server runs many small numpy operations, one per call leg: multi-threaded BLAS only
# adds threads that spin between them. Set before numpy is first imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from .cli import main  # noqa: E402

sys.exit(main())
