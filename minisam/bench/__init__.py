"""How fast is minisam? Ratios measured side by side, in one process, one BLAS thread.

    python -m minisam bench                    # everything (a few minutes on 2 cores)
    python -m minisam bench --only optimizers  # the SAM/SGD and XSAM/SAM targets only
    python -m minisam bench --gpu              # CuPy against NumPy, where there is a GPU

The bench is machinery, kept out of the reading path of the library: ``timing.py``
(medians of interleaved rounds), ``networks.py`` (the networks by hand in NumPy, in
minisam and in PyTorch), ``report.py`` (the sections and their targets), ``gpu.py`` and
``allocator.py``. Timings live in this report, never in the test suite.
"""

from .report import SECTIONS, add_arguments, check_arguments, main, run

__all__ = ["SECTIONS", "add_arguments", "check_arguments", "main", "run"]
