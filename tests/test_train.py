"""The training runner: resume bit for bit, extend a run, checkpoints, Ctrl-C, bad settings."""

import json
import math

import numpy as np
import pytest

import minisam as ms
from minisam import train as training
from minisam.train import RunConfig, train

SMALL = dict(dataset="digits", model="mlp", hidden=(16,), epochs=4, batch_size=256)


def _weights(result):
    return {k: v.copy() for k, v in result.model.state_dict().items()}


def _same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def _accuracies(result):
    return [row["test_acc"] for row in result.history]


def test_resume_from_a_checkpoint_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    config = RunConfig(optimizer="xsam", search_every=2, **SMALL)
    straight = train(config, progress=False)
    train(config, run_dir=tmp_path, progress=False, stop_after=2)
    ms.manual_seed(12345)  # whatever the generator holds now must not matter
    resumed = train(config, run_dir=tmp_path, resume=tmp_path / "checkpoint.npz", progress=False)
    assert _same_weights(straight, resumed)
    assert _accuracies(resumed) == _accuracies(straight)
    assert len(resumed.history) == 4 and resumed.extensions == []


def test_resume_accepts_the_run_folder_as_well_as_the_checkpoint_file(tmp_path):
    config = RunConfig(**SMALL)
    train(config, run_dir=tmp_path, progress=False, stop_after=2)
    resumed = train(config, resume=tmp_path, progress=False)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]


def test_resume_with_a_different_configuration_names_the_differences(tmp_path):
    train(RunConfig(**SMALL), run_dir=tmp_path, progress=False, stop_after=1)
    with pytest.raises(ValueError, match=r"lr: 0\.05 there, 0\.1 here"):
        train(RunConfig(**{**SMALL, "lr": 0.1}), resume=tmp_path / "checkpoint.npz", progress=False)


def test_extending_a_run_without_a_schedule_equals_a_run_started_with_more_epochs(tmp_path):
    short = RunConfig(**{**SMALL, "epochs": 2, "schedule": "none", "optimizer": "sam"})
    longer = RunConfig(**{**SMALL, "epochs": 4, "schedule": "none", "optimizer": "sam"})
    train(short, run_dir=tmp_path, progress=False)
    extended = train(longer, run_dir=tmp_path, resume=tmp_path / "checkpoint.npz", progress=False)
    straight = train(longer, progress=False)
    assert _same_weights(extended, straight)
    assert _accuracies(extended) == _accuracies(straight)
    assert extended.extensions == [{"at_epoch": 2, "from_epochs": 2, "to_epochs": 4}]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["extensions"] == extended.extensions and saved["config"]["epochs"] == 4


def test_extending_a_cosine_run_redefines_the_schedule_over_the_new_total(tmp_path):
    config = RunConfig(**{**SMALL, "epochs": 2})
    train(config, run_dir=tmp_path, progress=False)
    steps = int(ms.load(tmp_path / "checkpoint.npz")["scheduler"]["last_epoch"]) // 2
    train(
        RunConfig(**{**SMALL, "epochs": 4}), run_dir=tmp_path, resume=tmp_path, progress=False, stop_after=3
    )
    state = ms.load(tmp_path / "checkpoint.npz")
    assert state["scheduler"]["T_max"] == 4 * steps
    assert state["scheduler"]["last_epoch"] == 3 * steps
    # lr after 3 of 4 epochs on the new schedule: 0.05·(1 + cos(3π/4))/2
    assert state["optimizer"]["lr"] == pytest.approx(0.05 * (1 + math.cos(3 * math.pi / 4)) / 2, rel=1e-12)


def test_extending_a_step_schedule_recomputes_its_step_size_for_the_new_total(tmp_path):
    train(RunConfig(**{**SMALL, "epochs": 3, "schedule": "step"}), run_dir=tmp_path, progress=False)
    steps = int(ms.load(tmp_path / "checkpoint.npz")["scheduler"]["last_epoch"]) // 3
    extended = RunConfig(**{**SMALL, "epochs": 6, "schedule": "step"})
    train(extended, run_dir=tmp_path, resume=tmp_path, progress=False, stop_after=4)
    state = ms.load(tmp_path / "checkpoint.npz")
    assert state["scheduler"]["step_size"] == 6 * steps // 3
    # after 4 of 6 epochs the new schedule has divided the lr by 10 twice: ⌊4/2⌋ = 2
    assert state["optimizer"]["lr"] == pytest.approx(0.05 * 0.1**2, rel=1e-12)


def test_a_run_cannot_be_resumed_with_fewer_epochs_than_it_has_done(tmp_path):
    train(RunConfig(**SMALL), run_dir=tmp_path, progress=False, stop_after=3)
    with pytest.raises(ValueError, match="already done 3 epochs"):
        train(RunConfig(**{**SMALL, "epochs": 2}), resume=tmp_path, progress=False)


def test_a_file_without_a_training_runs_entries_is_refused_by_name(tmp_path):
    path = tmp_path / "weights.npz"
    ms.save({"model": {"w": np.zeros(2)}}, path)
    with pytest.raises(ValueError, match=r"weights\.npz is not a training checkpoint.*lacks config, epoch"):
        training.read_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="folder without a checkpoint.npz"):
        training.read_checkpoint(tmp_path)


def test_ctrl_c_raises_interrupted_with_the_running_epoch_and_the_last_checkpoint(tmp_path, monkeypatch):
    calls = []
    real = training.evaluate

    def evaluate_then_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the end of epoch 2, after epoch 1's checkpoint
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate", evaluate_then_ctrl_c)
    with pytest.raises(training.Interrupted) as stop:
        train(RunConfig(**SMALL), run_dir=tmp_path, progress=False)
    assert (stop.value.epoch, stop.value.saved_epoch) == (2, 1)
    assert stop.value.checkpoint == tmp_path / "checkpoint.npz"
    assert int(ms.load(stop.value.checkpoint)["epoch"]) == 1


def test_the_output_folder_is_checked_before_anything_is_made(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="is an existing file, not a folder"):
        training.check_output_folder(a_file)
    with pytest.raises(NotADirectoryError, match="notes.txt is a file"):
        training.check_output_folder(a_file / "run" / "deeper")
    fresh = tmp_path / "new" / "run"
    assert training.check_output_folder(fresh) == fresh and not (tmp_path / "new").exists()
    with pytest.raises(FileExistsError):
        train(RunConfig(**SMALL), run_dir=a_file, progress=False)


def test_progress_prints_one_line_per_epoch_when_the_output_is_not_a_terminal(capsys):
    train(RunConfig(**{**SMALL, "epochs": 3}))
    lines = [line for line in capsys.readouterr().out.splitlines() if "epoch" in line]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_non_finite_loss_stops_the_run_naming_the_step_and_what_to_try():
    with pytest.raises(training.NonFiniteLoss, match=r"epoch 1, step \d+.*smaller --lr"):
        train(RunConfig(**{**SMALL, "lr": 1e6, "momentum": 0.0}), progress=False)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("optimizer", "adam", "optimizer must be one of 'sgd', 'sam', 'asam', 'xsam', got 'adam'"),
        ("rho", -0.1, "rho must be a finite number > 0, got -0.1"),
        ("lr", True, "lr must be a finite number > 0, got True"),
        ("lr", "0.1", "lr must be a finite number > 0, got '0.1'"),
        ("epochs", 2.0, "epochs must be an integer >= 1, got 2.0"),
        ("search_every", -1, "search_every must be an integer >= 0"),
        ("dataset", "cifar10", "dataset must be one of 'mnist1d', 'digits'"),
        ("label_noise", 1.0, r"label_noise must be a number in \[0, 1\)"),
        ("hidden", (), "hidden must be a non-empty list"),
        ("hidden", (16, 0), "each hidden size must be an integer >= 1, got 0"),
        ("sharpness", 1, "sharpness must be True or False"),
        ("model", "cnn2d", "model cnn2d needs image data"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting_and_what_was_expected(field, value, message):
    config = RunConfig(**{field: value})
    before = dict(config.__dict__)
    with pytest.raises(ValueError, match=f"RunConfig: {message}"):
        config.validate()
    assert config.__dict__ == before


def test_names_in_a_config_may_come_in_any_letter_case():
    config = RunConfig(optimizer="XSAM", dataset="Digits", model="MLP", schedule="None").validate()
    assert (config.optimizer, config.dataset, config.model, config.schedule) == (
        "xsam",
        "digits",
        "mlp",
        "none",
    )


def test_sharpness_measurements_are_finite_and_positive():
    final = train(
        RunConfig(dataset="mnist1d", hidden=(32, 32), epochs=2, sharpness=True), progress=False
    ).final
    assert math.isfinite(final["lambda_max"]) and final["lambda_max"] > 0
    assert final["rho_sharpness"] >= 0


def test_the_comparison_runner_stays_importable_from_train():
    from minisam import compare as comparison

    assert training.compare is comparison.compare
    assert training.format_table is comparison.format_table
    assert training.write_comparison is comparison.write_comparison
