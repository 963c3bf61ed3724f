"""The training runner and the command line: resume, errors, tables, the demo."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import minisam as ms
from minisam import __main__ as cli
from minisam import train as training
from minisam.train import RunConfig, compare, format_table, train

SMALL = dict(dataset="digits", model="mlp", hidden=(16,), epochs=4, batch_size=256)


def _weights(result):
    return {k: v.copy() for k, v in result.model.state_dict().items()}


def test_resume_from_a_checkpoint_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    config = RunConfig(optimizer="xsam", search_every=2, **SMALL)
    straight = train(config, progress=False)
    train(config, run_dir=tmp_path, progress=False, stop_after=2)
    ms.manual_seed(12345)  # whatever the generator holds now must not matter
    resumed = train(config, run_dir=tmp_path, resume=tmp_path / "checkpoint.npz", progress=False)
    for key, value in _weights(straight).items():
        assert np.array_equal(value, _weights(resumed)[key]), key
    assert [h["test_acc"] for h in resumed.history] == [h["test_acc"] for h in straight.history]
    assert len(resumed.history) == 4


def test_resume_with_a_different_configuration_names_the_differences(tmp_path):
    train(RunConfig(**SMALL), run_dir=tmp_path, progress=False, stop_after=1)
    with pytest.raises(ValueError, match=r"lr: 0\.05 there, 0\.1 here"):
        train(RunConfig(**{**SMALL, "lr": 0.1}), resume=tmp_path / "checkpoint.npz", progress=False)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_non_finite_loss_stops_the_run_naming_the_step_and_what_to_try():
    with pytest.raises(training.NonFiniteLoss, match=r"epoch 1, step \d+.*smaller --lr"):
        train(RunConfig(**{**SMALL, "lr": 1e6, "momentum": 0.0}), progress=False)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("optimizer", "adam", "optimizer must be one of sgd, sam, asam, xsam"),
        ("rho", -0.1, "rho must be positive"),
        ("dataset", "cifar10", "dataset must be one of mnist1d, digits"),
        ("label_noise", 1.5, "label_noise must be in"),
    ],
)
def test_bad_settings_are_refused_with_the_allowed_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{field: value}).validate()


def test_compare_uses_identical_starts_and_reports_mean_and_std(tmp_path):
    summary = compare(
        RunConfig(**{**SMALL, "epochs": 2}),
        optimizers=("sgd", "sam"),
        seeds=(0, 1),
        run_dir=tmp_path,
        progress=False,
    )
    rows = summary["rows"]
    assert rows["sgd"]["cost_vs_sgd"] == (1.0, 0.0)
    accs = [r.final["test_acc"] for r in summary["runs"]["sgd"]]
    assert rows["sgd"]["test_acc"][0] == pytest.approx(np.mean(accs))
    assert rows["sgd"]["test_acc"][1] == pytest.approx(np.std(accs))
    table = format_table(rows, (0, 1))
    assert "SGD" in table and "SAM" in table and "mean ± std over 2 seeds" in table
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["runs"]) == {"sgd", "sam"}
    assert (tmp_path / "learning_curves.png").stat().st_size > 0


def test_sharpness_measurements_are_finite_and_positive():
    final = train(
        RunConfig(dataset="mnist1d", hidden=(32, 32), epochs=2, sharpness=True), progress=False
    ).final
    assert math.isfinite(final["lambda_max"]) and final["lambda_max"] > 0
    assert final["rho_sharpness"] >= 0


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "minisam", *args], capture_output=True, text=True)


@pytest.mark.parametrize("command", [[], ["train"], ["compare"], ["demo"], ["bench"]])
def test_every_command_has_help(command):
    done = _cli(*command, "--help")
    assert done.returncode == 0 and "usage:" in done.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--optimizer", "adam"], "invalid choice: 'adam'"),
        (["train", "--rho", "-0.1"], "must be positive"),
        (["train", "--dataset", "cifar10"], "invalid choice: 'cifar10'"),
        (["train", "--label-noise", "1.5"], "must be in [0, 1)"),
        (["compare", "--optimizers", "sgd", "lion"], "invalid choice: 'lion'"),
    ],
)
def test_bad_arguments_get_argparse_errors_naming_the_allowed_values(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_train_command_writes_results_and_resumes_with_its_own_settings(tmp_path, capsys):
    assert (
        cli.main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--out", str(tmp_path)])
        == 0
    )
    assert json.loads((tmp_path / "results.json").read_text())["final"]["test_acc"] > 0.1
    assert (tmp_path / "history.csv").read_text().startswith("epoch,")
    assert cli.main(["train", "--resume", str(tmp_path / "checkpoint.npz")]) == 0
    assert "resuming from" in capsys.readouterr().out


def test_a_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--resume", str(tmp_path / "nope.npz")])
    assert "nope.npz" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_demo_prints_the_table_and_leaves_figures_and_results(tmp_path):
    done = _cli("demo", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "mean ± std over 2 seeds" in done.stdout and str(tmp_path) in done.stdout
    for name in ("landscape_paths.png", "learning_curves.png", "results.json", "table.txt"):
        assert (tmp_path / name).exists(), name
