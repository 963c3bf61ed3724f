"""The bench's machinery: medians of interleaved rounds, honest references, the report's
ratios and targets. No timing is asserted here: timings live in the report."""

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import minisam as ms
from minisam.bench import networks, optimizers, report, timing


class FakeClock:
    """perf_counter and sleep for interleaved_medians: each contender advances the clock by
    its own cost per call, so the medians are known exactly."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_the_medians_are_per_contender_over_rounds_in_a_random_order(monkeypatch):
    clock, order = FakeClock(), []
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)
    monkeypatch.setattr(timing.time, "sleep", clock.sleep)
    costs = {"a": [1.0, 9.0, 2.0, 3.0, 2.0], "b": [5.0, 4.0, 6.0, 100.0, 5.0]}
    calls = {"a": 0, "b": 0}

    def contender(name, repeat=2):
        def step():
            calls[name] += 1
            if calls[name] > 3:  # after the 3 warm-up calls: the round's cost, per call
                round_ = (calls[name] - 4) // repeat
                clock.now += costs[name][round_]
                if (calls[name] - 4) % repeat == 0:
                    order.append(name)

        return step

    medians = timing.interleaved_medians({"a": contender("a"), "b": contender("b")}, rounds=5, repeat=2)
    assert medians == {"a": 2.0, "b": 5.0}
    rounds = [order[i : i + 2] for i in range(0, 10, 2)]
    assert all(sorted(r) == ["a", "b"] for r in rounds)  # every contender once per round
    assert len({tuple(r) for r in rounds}) == 2  # and not always in the same order


def _copy_into_numpy_net(model, numpy_net):
    weights = [np.array(v) for v in model.state_dict().values()]
    numpy_net.layers = [(weights[i].copy(), weights[i + 1].copy()) for i in range(0, len(weights), 2)]


def test_the_hand_written_mlp_takes_the_same_sgd_step_as_minisam():
    ms.manual_seed(0)
    x, y = networks.batch((32, 784))
    model = networks.minisam_net(networks.MLP_LAYERS)
    by_hand = networks.NumpyMLP([784, 256, 256, 10], lr=0.1)
    _copy_into_numpy_net(model, by_hand)
    ours = networks.minisam_step(model, lr=0.1)
    for _ in range(2):
        assert by_hand.step(x, y) == pytest.approx(ours(x, y), rel=1e-5)
    ours_after = [np.array(v) for v in model.state_dict().values()]
    by_hand_after = [array for layer in by_hand.layers for array in layer]
    for mine, theirs in zip(by_hand_after, ours_after, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)


def test_the_hand_written_cnn_takes_the_same_sgd_step_as_minisam():
    ms.manual_seed(0)
    x, y = networks.batch((4, 1, 28, 28))
    model = networks.minisam_net(networks.CNN_LAYERS)
    by_hand = networks.NumpyCNN(lr=0.1)
    w = [np.array(v).copy() for v in model.state_dict().values()]
    by_hand.convs, by_hand.fc = [(w[0], w[1]), (w[2], w[3])], (w[4], w[5])
    ours = networks.minisam_step(model, lr=0.1)
    for _ in range(2):
        assert by_hand.step(x, y) == pytest.approx(ours(x, y), rel=1e-5)
    np.testing.assert_allclose(by_hand.fc[0], np.array(model.state_dict()["7.weight"]), rtol=1e-4, atol=1e-6)


def _args(**overrides):
    defaults = {"rounds": None, "quick": False, "only": None, "skip_allocator": False, "gpu": False}
    return SimpleNamespace(**{**defaults, **overrides})


def test_the_optimizer_section_prints_the_median_over_children_with_targets_and_each_childs_value(
    monkeypatch, capsys
):
    labels = list(optimizers.RATIOS)
    children = [  # SAM / SGD 2.0, 2.3, 2.1 (median 2.1); XSAM never searching / SAM 1.0, 1.1, 1.05
        {
            "ratios": dict(zip(labels, r, strict=True)),
            "cpu_ms": dict(zip(optimizers.OPTIMIZER_CASES, c, strict=True)),
        }
        for r, c in [
            ((2.0, 1.0, 1.2), (3.0, 6.0, 6.0, 7.2)),
            ((2.3, 1.1, 1.1), (4.0, 9.2, 10.1, 10.1)),
            ((2.1, 1.05, 1.3), (5.0, 10.5, 11.0, 13.7)),
        ]
    ]
    seen = {}

    def run_children(rounds, count):
        seen.update(rounds=rounds, count=count)
        return children

    monkeypatch.setattr(optimizers, "run_children", run_children)
    assert report.run(_args(only=["optimizers"])) == 0
    out = capsys.readouterr().out
    assert seen == {"rounds": 3, "count": 5}
    assert "SAM / SGD                          2.100x  (target <= 2.15: met)  [2.000 2.300 2.100]" in out
    assert "XSAM never searching / SAM         1.050x  (target <= 1.03: NOT met)  [1.000 1.100 1.050]" in out
    assert "XSAM 1 search per 100 steps / SAM  1.200x" in out
    assert (
        "SGD 4.00 ms, SAM 9.20 ms, XSAM never searching 10.10 ms, XSAM 1 search / 100 steps 10.10 ms" in out
    )
    assert "== a training step" not in out and "malloc" not in out


def test_one_child_times_the_four_optimizers_on_one_shared_model_in_100_step_blocks(monkeypatch):
    seen = {}

    def timings(steps, rounds, repeat):
        seen.update(names=list(steps), rounds=rounds, repeat=repeat)
        return timing.Timings(wall={}, cpu={name: [1.0, 2.0] for name in steps})

    monkeypatch.setattr(timing, "interleaved_timings", timings)
    built = []
    real_step = networks.minisam_step
    monkeypatch.setattr(
        networks, "minisam_step", lambda model, *a, **k: built.append(model) or real_step(model, *a, **k)
    )
    result = optimizers.child_result(rounds=4)
    assert seen == {"names": list(optimizers.OPTIMIZER_CASES), "rounds": 4, "repeat": 100}
    assert len(built) == 4 and all(model is built[0] for model in built)
    assert result["ratios"] == dict.fromkeys(optimizers.RATIOS, 1.0)


def test_a_ratio_is_the_median_of_the_ratios_within_rounds_on_the_chosen_clock():
    t = timing.Timings(
        wall={"a": [4.0, 9.0, 1.0], "b": [2.0, 3.0, 1.0]}, cpu={"a": [3.0, 3.0], "b": [1.0, 2.0]}
    )
    assert t.ratio("a", "b", "wall") == 2.0  # round ratios 2, 3, 1
    assert t.ratio("a", "b") == 2.25  # CPU by default: ratios 3 and 1.5
    assert t.median("a") == 4.0 and t.median("b", "cpu") == 1.5


def test_the_optimizer_contenders_are_the_ones_the_targets_name():
    assert optimizers.OPTIMIZER_CASES == {
        "SGD": ("sgd", {}),
        "SAM": ("sam", {"rho": 0.05}),
        "XSAM never searching": ("xsam", {"rho": 0.05, "search_every": 0}),
        "XSAM 1 search / 100 steps": ("xsam", {"rho": 0.05, "search_every": 100}),
    }


def test_the_threads_section_shows_one_thread_and_the_library_default_side_by_side(monkeypatch, capsys):
    monkeypatch.setattr(
        report, "interleaved_medians", lambda steps, rounds, repeat: {"one": 2e-3, "default": 5e-3}
    )
    monkeypatch.setattr(report, "library_default_blas_threads", lambda: 4)
    assert report.run(_args(only=["threads"])) == 0
    out = capsys.readouterr().out
    assert "one thread (what the commands use)" in out and "2.00 ms" in out
    assert "library default (4 threads)" in out and "5.00 ms   (2.50x the one-thread time)" in out


@pytest.mark.parametrize(
    "run",
    [
        "args = dict(rounds=1, quick=False, only=['networks'], skip_allocator=True, gpu=False)\n"
        "report.run(SimpleNamespace(**args))\n",
        "optimizers.main(['1'])\n",  # the optimizer section's child process
    ],
)
def test_every_measurement_but_the_threads_row_runs_with_one_blas_thread(tmp_path, run):
    code = (
        "import threadpoolctl\n"
        "from types import SimpleNamespace\n"
        "from minisam.bench import optimizers, report, timing\n"
        "def timings(steps, rounds, repeat, warmup=3):\n"
        "    print('threads', max(p['num_threads'] for p in threadpoolctl.threadpool_info()))\n"
        "    return timing.Timings(wall=dict.fromkeys(steps, [1e-3]), cpu=dict.fromkeys(steps, [1e-3]))\n"
        "timing.interleaved_timings = timings\n" + run
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "threads 1" in done.stdout and "threads 2" not in done.stdout
