"""Data-parallel SAM and XSAM under DistributedDataParallel equal their single-process meaning.

Two processes (gloo, CPU, float64) each hold half of every global batch and train a DDP
model with minisam.torch; the parent computes the single-process results on the global
batches and the final parameters must agree to rounding:

- every backward pass synchronised (the default)  == single-process SAM / XSAM on the global batch
- the ascent passes under ``no_sync`` (``sync_ascent=False``)  == single-process SAM with m = 8,
  the per-worker batch (minisam/optim/ALGORITHMS.md, section m-sharpness)

The workers run all scenarios in one spawn, so the whole file takes a few seconds plus two
torch imports; a timeout stops it from hanging.
"""

import os
import traceback
from datetime import timedelta

import pytest

torch = pytest.importorskip(
    "torch", reason="minisam.torch needs the optional torch extra (pip install -e '.[torch]')"
)

import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

import minisam.torch as mt  # noqa: E402

WORLD, GLOBAL_BATCH, STEPS, TIMEOUT_S = 2, 16, 3, 90
F = torch.nn.functional

# each scenario as the workers run it (the ddp model is passed in where it is needed) ...
SCENARIOS = {
    "sam k=1, both synchronised": lambda base, ddp: mt.SAM(base, rho=0.3),
    "sam k=1, ascent not synchronised": lambda base, ddp: mt.SAM(base, rho=0.3, ddp=ddp, sync_ascent=False),
    "sam k=2, ascent not synchronised": lambda base, ddp: mt.SAM(
        base, rho=0.3, steps=2, ddp=ddp, sync_ascent=False
    ),
    "xsam k=2 searching, both synchronised": lambda base, ddp: mt.XSAM(
        base, rho=0.3, steps=2, search_every=2, ddp=ddp
    ),
}

# ... and its single-process meaning, on the global batch
SINGLE_PROCESS = {
    "sam k=1, both synchronised": lambda base: mt.SAM(base, rho=0.3),
    "sam k=1, ascent not synchronised": lambda base: mt.SAM(base, rho=0.3, m=GLOBAL_BATCH // WORLD),
    "sam k=2, ascent not synchronised": lambda base: mt.SAM(base, rho=0.3, steps=2, m=GLOBAL_BATCH // WORLD),
    "xsam k=2 searching, both synchronised": lambda base: mt.XSAM(base, rho=0.3, steps=2, search_every=2),
}


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 3)).double()


def global_batches():
    g = torch.Generator().manual_seed(1)
    return [
        (
            torch.randn(GLOBAL_BATCH, 6, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (GLOBAL_BATCH,), generator=g),
        )
        for _ in range(STEPS)
    ]


def make_base(model):
    return torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-3)


def worker(rank, init_file, out_dir):
    """One DDP process: every scenario in turn, final parameters saved to out_dir/rank{rank}.pt."""
    try:
        torch.set_num_threads(1)
        dist.init_process_group(
            "gloo",
            init_method=f"file://{init_file}",
            rank=rank,
            world_size=WORLD,
            timeout=timedelta(seconds=60),
        )
        shard = slice(rank * GLOBAL_BATCH // WORLD, (rank + 1) * GLOBAL_BATCH // WORLD)
        results = {}
        for name, make in SCENARIOS.items():
            ddp = torch.nn.parallel.DistributedDataParallel(make_model())
            opt = make(make_base(ddp), ddp)
            alphas = []
            for x, y in global_batches():
                xs, ys = x[shard], y[shard]
                opt.step(lambda: F.cross_entropy(ddp(xs), ys))
                alphas.append(opt.diagnostics.get("alpha"))
            results[name] = {
                "params": [p.detach().clone() for p in ddp.module.parameters()],
                "alphas": alphas,
            }
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.destroy_process_group()
    except BaseException:
        with open(os.path.join(out_dir, f"rank{rank}.error"), "w") as f:
            f.write(traceback.format_exc())
        raise


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("ddp")
    context = mp.get_context("spawn")
    processes = [
        context.Process(target=worker, args=(r, str(out_dir / "init"), str(out_dir))) for r in range(WORLD)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=TIMEOUT_S)
    hung = [p for p in processes if p.is_alive()]
    for p in hung:
        p.kill()  # only the processes this fixture started
        p.join()
    errors = "".join(f.read_text() for f in sorted(out_dir.glob("*.error")))
    assert not hung and not errors, f"DDP workers failed (hung: {len(hung)}):\n{errors}"
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(WORLD)]


def single_process(name):
    model = make_model()
    opt = SINGLE_PROCESS[name](make_base(model))
    alphas = []
    for x, y in global_batches():
        if opt.m is None:
            opt.step(lambda: F.cross_entropy(model(x), y))
        else:
            opt.step(
                lambda part=slice(None): F.cross_entropy(model(x[part]), y[part]), batch_size=GLOBAL_BATCH
            )
        alphas.append(opt.diagnostics.get("alpha"))
    return [p.detach() for p in model.parameters()], alphas


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_ddp_training_equals_its_single_process_meaning_to_rounding(ddp_results, name):
    expected, expected_alphas = single_process(name)
    for rank, results in enumerate(ddp_results):
        got = results[name]
        assert got["alphas"] == expected_alphas, (
            f"{name}, rank {rank}: α* {got['alphas']} vs {expected_alphas}"
        )
        for i, (a, b) in enumerate(zip(got["params"], expected, strict=True)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=f"{name}, rank {rank}, parameter {i}")
    # and the two workers hold the same replica
    for a, b in zip(ddp_results[0][name]["params"], ddp_results[1][name]["params"], strict=True):
        assert torch.equal(a, b), name


def test_not_synchronising_the_ascent_is_not_plain_sam_on_the_global_batch(ddp_results):
    """The two recipes really differ (so the test above can tell them apart)."""
    plain, _ = single_process("sam k=1, both synchronised")
    local = ddp_results[0]["sam k=1, ascent not synchronised"]["params"]
    assert max((a - b).abs().max().item() for a, b in zip(local, plain, strict=True)) > 1e-6


def test_xsam_under_several_processes_without_ddp_is_refused():
    """Each worker would pick its own α* from its own probe losses; refused, not silently wrong."""
    model = make_model()
    opt = mt.XSAM(make_base(model), search_every=1)
    x, y = global_batches()[0]
    if dist.is_initialized():
        pytest.fail("torch.distributed is already initialised in the test process")
    # simulate the distributed check without a process group: patch the two queries it makes
    original = dist.is_initialized, dist.get_world_size
    dist.is_initialized, dist.get_world_size = (lambda: True), (lambda group=None: 2)
    try:
        with pytest.raises(RuntimeError, match="ddp=<the DistributedDataParallel model>"):
            opt.step(lambda: F.cross_entropy(model(x), y))
    finally:
        dist.is_initialized, dist.get_world_size = original
