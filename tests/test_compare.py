"""The comparison runner: same starts for every optimizer, mean ± std over seeds, the plan
checked before any training, and the files it writes."""

import csv
import json
from dataclasses import replace

import pytest

import minisam as ms
from minisam import compare as comparison
from minisam import train as training
from minisam.compare import compare, format_table, summarise, write_comparison
from minisam.train import RunConfig, RunResult, train

SMALL = RunConfig(dataset="digits", model="mlp", hidden=(16,), epochs=2, batch_size=256)


def _without_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_each_run_is_the_run_train_makes_alone_with_that_optimizer_and_seed():
    summary = compare(SMALL, optimizers=("sgd", "SAM"), seeds=(0, 1), progress=False)
    assert list(summary["runs"]) == ["sgd", "sam"] and summary["seeds"] == [0, 1]
    for name in ("sgd", "sam"):
        for seed, run in zip((0, 1), summary["runs"][name], strict=True):
            alone = train(replace(SMALL, optimizer=name, seed=seed), progress=False)
            assert _without_seconds(run.history) == _without_seconds(alone.history), (name, seed)


def test_every_optimizer_starts_from_the_same_weights_for_a_seed(monkeypatch):
    starts = []
    real = comparison.train

    def record_start(cfg, **kwargs):
        ms.manual_seed(cfg.seed)
        d = training.load_data(cfg)
        starts.append((cfg.optimizer, cfg.seed, training.build_model(cfg, d).state_dict()))
        return real(replace(cfg, epochs=1), **kwargs)

    monkeypatch.setattr(comparison, "train", record_start)
    compare(SMALL, optimizers=("sgd", "sam", "xsam"), seeds=(0, 1), progress=False)
    for seed in (0, 1):
        weights = [w for _, s, w in starts if s == seed]
        assert len(weights) == 3
        for other in weights[1:]:
            assert all((other[k] == weights[0][k]).all() for k in weights[0])
    first = [w for _, s, w in starts if s == 0][0]
    second = [w for _, s, w in starts if s == 1][0]
    assert any((first[k] != second[k]).any() for k in first)


@pytest.mark.parametrize(
    "optimizers, seeds, message",
    [
        (("sgd", "sam", "sam"), (0,), "optimizers must not repeat a value, got sam"),
        (("sgd", "SAM", "sam"), (0,), "optimizers must not repeat a value, got sam"),
        (("sgd",), (0, 0), "seeds must not repeat a value, got 0"),
        (("sgd", "lion"), (0,), "each optimizer must be one of"),
        ((), (0,), "optimizers must be a non-empty list"),
        ("sgd", (0,), "optimizers must be a non-empty list"),
        (("sgd",), (), "seeds must be a non-empty list"),
        (("sgd",), (1.5,), "each seed must be an integer >= 0"),
        (("sgd",), (-1,), "each seed must be an integer >= 0"),
    ],
)
def test_a_bad_plan_is_refused_before_any_training(monkeypatch, optimizers, seeds, message):
    monkeypatch.setattr(comparison, "train", lambda *a, **k: pytest.fail("trained before checking"))
    with pytest.raises(ValueError, match=message):
        compare(SMALL, optimizers=optimizers, seeds=seeds, progress=False)


def test_a_setting_that_a_run_would_refuse_is_refused_before_any_training(monkeypatch):
    monkeypatch.setattr(comparison, "train", lambda *a, **k: pytest.fail("trained before checking"))
    with pytest.raises(ValueError, match="model cnn2d needs image data"):
        compare(replace(SMALL, dataset="mnist1d", model="cnn2d"), optimizers=("sgd",), seeds=(0,))


def test_an_output_folder_that_cannot_be_made_is_refused_before_any_training(monkeypatch, tmp_path):
    monkeypatch.setattr(comparison, "train", lambda *a, **k: pytest.fail("trained before checking"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="is a file"):
        compare(SMALL, optimizers=("sgd",), seeds=(0,), run_dir=tmp_path / "file" / "out")


def _fake(name, seed, test_acc, seconds_per_step, **extra):
    final = {"test_acc": test_acc, "train_loss": 0.5, "seconds_per_step": seconds_per_step, **extra}
    history = [
        {"epoch": 1, "train_loss": 0.7, "test_acc": test_acc - 0.1},
        {"epoch": 2, "train_loss": 0.5, "test_acc": test_acc},
    ]
    return RunResult(replace(SMALL, optimizer=name, seed=seed), history, final)


def test_the_step_cost_against_sgd_is_taken_per_seed_then_averaged():
    runs = {
        "sgd": [_fake("sgd", 0, 0.80, 1.0), _fake("sgd", 1, 0.90, 2.0)],
        "sam": [_fake("sam", 0, 0.70, 2.0), _fake("sam", 1, 0.80, 6.0)],
    }
    rows = summarise(runs)
    assert rows["sgd"]["cost_vs_sgd"] == (1.0, 0.0)
    assert rows["sam"]["cost_vs_sgd"] == pytest.approx((2.5, 0.5))  # per seed 2.0 and 3.0
    assert rows["sam"]["test_acc"] == pytest.approx((0.75, 0.05))  # population std of 0.70, 0.80
    assert "lambda_max" not in rows["sam"]


def test_the_table_shows_mean_and_std_a_dash_where_a_metric_is_missing_and_the_seeds():
    rows = {
        "sgd": {"test_acc": (0.8, 0.01), "cost_vs_sgd": (1.0, 0.0)},
        "xsam": {"test_acc": (0.85, 0.02), "lambda_max": (12.345, 1.0), "cost_vs_sgd": (2.1, 0.1)},
    }
    lines = format_table(rows, [0, 1, 2]).splitlines()
    assert lines[0].split("  ")[0] == "optimizer" and "λ_max" in lines[0]
    assert lines[2].split() == ["SGD", "0.800", "±", "0.010", "-", "1.00x"]
    assert lines[3].split() == ["XSAM", "0.850", "±", "0.020", "12.35", "±", "1.00", "2.10x"]
    assert lines[-1] == "mean ± std over 3 seeds (0, 1, 2)"


def test_write_comparison_leaves_the_table_results_and_figures(tmp_path):
    runs = {
        name: [_fake(name, seed, 0.8, 1.0 + i, lambda_max=10.0 + seed, rho_sharpness=0.01) for seed in (0, 1)]
        for i, name in enumerate(("sgd", "sam"))
    }
    summary = {"rows": summarise(runs), "runs": runs, "seeds": [0, 1]}
    write_comparison(summary, SMALL, tmp_path)
    assert (tmp_path / "table.txt").read_text() == format_table(summary["rows"], [0, 1]) + "\n"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["summary"]["sam"]["lambda_max"] == [10.5, 0.5]
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["optimizer", "seed"] and len(rows) == 5
    for figure in ("learning_curves.png", "sharpness.png"):
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure
