"""glibc's malloc settings and minisam's speed and memory, measured in child processes
(both are properties of a whole process), for the last section of the bench.
"""

from __future__ import annotations

import statistics

# glibc hands freed blocks above the mmap threshold (128 KiB at first) straight back to
# the OS, so every step's multi-megabyte im2col buffers and activations are mapped and
# page-faulted afresh. Raising the mmap threshold (to its 32 MiB maximum) and the trim
# threshold lets the process keep them. minisam does not change this behind your back:
# it is a process-wide setting. To opt in, start Python with these variables set.
KEEP_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20)}

_CNN_CHILD = """
import json, sys
import minisam as ms
from minisam import threads
from minisam.bench import networks, timing
threads.use_one_blas_thread()
ms.manual_seed(0)
x, y = networks.batch((64, 1, 28, 28))
step = networks.minisam_step(networks.minisam_net(networks.CNN_LAYERS))
seconds = timing.interleaved_medians({"cnn": lambda: step(x, y)}, rounds=int(sys.argv[1]), repeat=3)
print(json.dumps(seconds["cnn"]))
"""

_TRAIN_CHILD = """
import json, resource
from minisam import threads
from minisam.train import RunConfig, train
threads.use_one_blas_thread()
train(RunConfig(dataset="digits", model="cnn2d", epochs=2, optimizer="xsam"), progress=False)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""


def _child(code, env_extra, *args) -> float:
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in KEEP_MEMORY}
    env.update(env_extra)
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"a bench child process failed ({last}); skip it with --skip-allocator")
    return json.loads(done.stdout.strip().splitlines()[-1])


def allocator_rows(rounds: int, repeats: int = 3) -> dict:
    """The CNN step and a short training run's peak memory, default malloc vs kept memory;
    the child processes alternate so that the machine's drift hits both alike."""
    steps = {"default": [], "kept": []}
    for _ in range(repeats):
        for name, env in (("default", {}), ("kept", KEEP_MEMORY)):
            steps[name].append(_child(_CNN_CHILD, env, rounds))
    peak = {name: _child(_TRAIN_CHILD, env) for name, env in (("default", {}), ("kept", KEEP_MEMORY))}
    return {name: (statistics.median(steps[name]), peak[name]) for name in steps}
