"""The command line: every refusal is one `error:` line, exit status 2, and nothing written;
a failed run is one line and status 1; Ctrl-C names the epoch and the resume command."""

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

import minisam as ms
from minisam import __main__ as cli
from minisam import train as training

TINY = ["--dataset", "digits", "--hidden", "8", "--batch-size", "256"]
TINY_CONFIG = training.RunConfig(dataset="digits", hidden=(8,), batch_size=256, epochs=2)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run each command from an empty folder, so that a default runs/ folder would show."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINISAM_DEBUG", raising=False)
    return tmp_path


def run(args):
    """main(args) as the shell sees it: the exit status, whether returned or raised."""
    try:
        return cli.main(args)
    except SystemExit as exit_:
        return exit_.code


def error_lines(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()


def assert_refused(capsys, args, message, status=2):
    assert run(args) == status
    lines = error_lines(capsys)
    assert len(lines) == 1 and "error:" in lines[0], lines
    assert message in lines[0]
    return lines[0]


@pytest.fixture
def finished_run(tmp_path_factory):
    """A 2-epoch run folder made once (SGD, digits, tiny MLP)."""
    folder = tmp_path_factory.mktemp("run") / "done"
    training.train(TINY_CONFIG, run_dir=folder, progress=False)
    return folder


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--optimizer", "adam"],
            "--optimizer: must be one of 'sgd', 'sam', 'asam', 'xsam', got 'adam'",
        ),
        (["train", "--rho", "-0.1"], "--rho: must be a finite number > 0"),
        (["train", "--rho", "nan"], "--rho: must be a finite number > 0"),
        (["train", "--lr", "inf"], "--lr: must be a finite number > 0"),
        (["train", "--epochs", "0"], "--epochs: must be an integer >= 1, got 0"),
        (["train", "--epochs", "2.5"], "--epochs: expected a whole number, got '2.5'"),
        (["train", "--label-noise", "1"], "--label-noise: must be a number in [0, 1)"),
        (["train", "--dataset", "cifar10"], "--dataset: must be one of"),
        (["train", "--alpha", "0.5"], "--alpha applies only to xsam, and this run uses sgd"),
        (["train", "--optimizer", "sam", "--eta", "0.1"], "--eta applies only to asam"),
        (["train", "--search-every", "5"], "--search-every applies only to xsam"),
        (["train", "--rho", "0.1"], "--rho applies only to sam, asam, xsam"),
        (["train", "--model", "cnn1d", "--hidden", "8"], "--hidden sets the MLP's sizes"),
        (["train", "--model", "cnn2d"], "model cnn2d needs image data"),
        (["compare", "--optimizers", "sgd", "sam", "sam"], "--optimizers lists sam more than once"),
        (["compare", "--optimizers", "sgd", "SAM", "sam"], "--optimizers lists sam more than once"),
        (["compare", "--optimizers", "sgd", "lion"], "--optimizers: must be one of"),
        (["compare", "--seeds", "0", "0"], "--seeds lists 0 more than once"),
        (["compare", "--seeds", "-1"], "--seeds: must be an integer >= 0"),
        (["compare", "--optimizers", "sgd", "sam", "--alpha", "0.5"], "--alpha applies only to xsam"),
        (["bench", "--rounds", "-1"], "--rounds: must be an integer >= 1, got -1"),
        (["bench", "--rounds", "0"], "--rounds: must be an integer >= 1, got 0"),
        (["bench", "--only", "everything"], "--only: must be one of"),
        (["fly"], "invalid choice: 'fly'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_arguments_are_one_error_line_with_status_2_and_nothing_written(in_tmp, capsys, args, message):
    assert_refused(capsys, args, message)
    assert list(in_tmp.iterdir()) == []


def test_cupy_where_it_cannot_run_is_one_line_saying_how_to_stay_on_numpy(in_tmp, capsys, monkeypatch):
    monkeypatch.setattr(ms.backend, "gpu_unavailable_reason", lambda: "no CUDA device here")
    line = assert_refused(capsys, ["train", "--backend", "cupy"], "--backend cupy cannot run here: no CUDA")
    assert "leave --backend out" in line
    assert_refused(capsys, ["compare", "--backend", "CuPy"], "--backend cupy cannot run here")
    assert list(in_tmp.iterdir()) == []


@pytest.mark.parametrize("command", ["train", "compare", "demo"])
def test_an_output_path_that_is_a_file_or_runs_through_one_is_refused(in_tmp, capsys, command):
    (in_tmp / "notes.txt").write_text("mine")
    assert_refused(capsys, [command, "--out", "notes.txt"], "notes.txt is an existing file, not a folder")
    assert_refused(capsys, [command, "--out", "notes.txt/run"], "cannot be made: notes.txt is a file")
    assert [p.name for p in in_tmp.iterdir()] == ["notes.txt"] and (
        in_tmp / "notes.txt"
    ).read_text() == "mine"


def test_a_folder_holding_an_earlier_run_is_refused_as_output(in_tmp, capsys, finished_run):
    line = assert_refused(capsys, ["train", *TINY, "--out", str(finished_run)], "already holds a run")
    assert f"--resume {finished_run / 'checkpoint.npz'}" in line
    assert_refused(capsys, ["compare", *TINY, "--out", str(finished_run)], "already holds a run")


def test_resume_refusals_name_the_file_and_change_nothing(in_tmp, capsys, finished_run):
    before = (finished_run / "checkpoint.npz").read_bytes()
    assert_refused(capsys, ["train", "--resume", "nope.npz"], "no such file: 'nope.npz'")
    (in_tmp / "empty").mkdir()
    assert_refused(capsys, ["train", "--resume", "empty"], "empty is a folder without a checkpoint.npz")
    ms.save({"model": {"w": np.zeros(2)}}, in_tmp / "weights.npz")
    assert_refused(capsys, ["train", "--resume", "weights.npz"], "not a training checkpoint")
    (in_tmp / "text.npz").write_text("hello")
    assert_refused(capsys, ["train", "--resume", "text.npz"], "is not a minisam checkpoint")
    line = assert_refused(capsys, ["train", "--resume", str(finished_run), "--lr", "0.1"], "--lr 0.1")
    assert "(the checkpoint has 0.05)" in line and "a resumed run keeps the settings" in line
    assert_refused(capsys, ["train", "--resume", str(finished_run), "--epochs", "1"], "already done 2 epochs")
    assert_refused(capsys, ["train", "--resume", str(finished_run), "--alpha", "1.0"], "--alpha applies only")
    assert (finished_run / "checkpoint.npz").read_bytes() == before
    assert sorted(p.name for p in in_tmp.iterdir()) == ["empty", "text.npz", "weights.npz"]


def test_resume_accepts_flags_that_agree_and_extends_with_more_epochs(in_tmp, capsys, finished_run):
    assert (
        run(["train", "--resume", str(finished_run), "--lr", "0.05", "--optimizer", "SGD", "--epochs", "3"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"run folder: {finished_run}/"
    assert "extended to 3 epochs" in out and "epoch 3/3" in out
    saved = json.loads((finished_run / "results.json").read_text())
    assert saved["extensions"] == [{"at_epoch": 2, "from_epochs": 2, "to_epochs": 3}]
    assert [row["epoch"] for row in saved["history"]] == [1, 2, 3]


def test_train_prints_the_run_folder_first_then_a_line_per_epoch(in_tmp, capsys):
    args = ["train", *TINY, "--epochs", "2", "--optimizer", "XSAM", "--alpha", "0.5", "--search-every", "0"]
    assert run([*args, "--out", "r"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "run folder: r/"
    assert [line.split()[1] for line in lines if line.startswith("  epoch")] == ["1/2", "2/2"]
    saved = json.loads((in_tmp / "r" / "results.json").read_text())
    assert saved["config"]["optimizer"] == "xsam" and saved["config"]["alpha"] == 0.5


def test_the_default_run_folder_is_under_runs(in_tmp, capsys):
    assert run(["train", *TINY, "--epochs", "1"]) == 0
    (folder,) = (in_tmp / "runs").iterdir()
    assert folder.name.startswith("train-") and (folder / "results.json").exists()
    assert capsys.readouterr().out.startswith(f"run folder: {os.path.join('runs', folder.name)}/")


def test_compare_takes_an_option_that_applies_to_one_of_its_optimizers(in_tmp, capsys):
    args = [
        "compare",
        *TINY,
        "--epochs",
        "1",
        "--optimizers",
        "SGD",
        "xsam",
        "--alpha",
        "0.5",
        "--search-every",
        "0",
        "--seeds",
        "3",
    ]
    assert run([*args, "--out", "c"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run folder: c/") and "mean ± std over 1 seeds (3)" in out
    saved = json.loads((in_tmp / "c" / "results.json").read_text())
    assert set(saved["runs"]) == {"sgd", "xsam"} and saved["config"]["alpha"] == 0.5


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_run_that_fails_is_one_error_line_with_status_1_and_leaves_no_empty_folder(in_tmp, capsys):
    assert_refused(
        capsys, ["train", *TINY, "--lr", "1e6", "--momentum", "0", "--out", "r"], "smaller --lr", 1
    )
    assert not (in_tmp / "r").exists()


def test_an_unexpected_error_is_one_line_that_says_how_to_see_the_traceback(in_tmp, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(training, "train", broken)
    line = assert_refused(capsys, ["train", *TINY, "--out", "r"], "ZeroDivisionError: division by zero", 1)
    assert "MINISAM_DEBUG=1" in line


def test_minisam_debug_reraises_with_the_traceback(in_tmp, monkeypatch):
    monkeypatch.setenv("MINISAM_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        cli.main(["train", "--resume", "nope.npz"])


def test_ctrl_c_names_the_epoch_and_the_command_that_resumes_it_bit_for_bit(in_tmp, capsys, monkeypatch):
    calls, real = [], training.evaluate

    def evaluate_then_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the end of epoch 3
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate", evaluate_then_ctrl_c)
    assert run(["train", *TINY, "--epochs", "4", "--out", "r"]) == 130
    (line,) = error_lines(capsys)
    checkpoint = os.path.join("r", "checkpoint.npz")
    assert line == (
        "python -m minisam train: interrupted during epoch 3 (epochs 1-2 are saved); resume with: "
        f"python -m minisam train --resume {checkpoint}"
    )
    monkeypatch.setattr(training, "evaluate", real)
    assert run(["train", "--resume", checkpoint]) == 0
    straight = training.train(replace(TINY_CONFIG, epochs=4), progress=False)
    resumed = ms.load(checkpoint)["model"]
    assert all(np.array_equal(resumed[k], v) for k, v in straight.model.state_dict().items())


def test_ctrl_c_in_the_first_epoch_says_nothing_was_saved_and_removes_the_empty_folder(
    in_tmp, capsys, monkeypatch
):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "evaluate", ctrl_c)
    assert run(["train", *TINY, "--out", "r"]) == 130
    assert error_lines(capsys) == [
        "python -m minisam train: interrupted during epoch 1, before the first checkpoint: nothing to resume"
    ]
    assert not (in_tmp / "r").exists()


@pytest.mark.parametrize("command", [[], ["train"], ["compare"], ["demo"], ["bench"]])
def test_every_command_has_help(command, capsys):
    assert run([*command, "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: python -m minisam")


def _python(*args, env_update=None, **kwargs):
    env = {k: v for k, v in os.environ.items() if k != "MINISAM_DEBUG"}
    env.update(env_update or {})
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.Popen([sys.executable, *args], env=env, text=True, **pipes, **kwargs)


def _default_ctrl_c():
    """In the child: Ctrl-C raises KeyboardInterrupt, even if this test process was started with
    SIGINT ignored (an ignored signal stays ignored across exec, and the child would run on)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_real_ctrl_c_in_a_subprocess_prints_one_line_and_no_traceback(tmp_path):
    args = ("-m", "minisam", "train", *TINY, "--epochs", "1000000", "--out", str(tmp_path / "r"))
    child = _python(*args, preexec_fn=_default_ctrl_c)
    try:
        for line in child.stdout:  # wait until the first epoch is saved
            if line.startswith("  epoch 1/"):
                break
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:  # never leave a training process behind
            child.kill()
            child.communicate()
    assert child.returncode == 130, f"exit {child.returncode}; stderr: {err!r}"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "interrupted during epoch" in err and f"--resume {tmp_path / 'r' / 'checkpoint.npz'}" in err


def test_the_commands_run_with_one_blas_thread_unless_the_user_chose(tmp_path):
    code = (
        "import threadpoolctl, minisam.train as t\n"
        "def report(*a, **k):\n"
        "    print('threads', max(p['num_threads'] for p in threadpoolctl.threadpool_info()))\n"
        "    raise SystemExit(0)\n"
        "t.train = report\n"
        "from minisam.__main__ import main\n"
        "main(['train', '--dataset', 'digits', '--out', 'r'])\n"
    )
    clean = {name: "" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    library = "import threadpoolctl, numpy; print(threadpoolctl.threadpool_info()[0]['num_threads'])"
    default = _python("-c", library, env_update=clean, cwd=tmp_path).communicate()[0]
    if int(default) < 2:
        pytest.skip("the BLAS library starts one thread here anyway: nothing to limit")
    ours = _python("-c", code, env_update=clean, cwd=tmp_path).communicate()[0]
    assert "threads 1" in ours
    theirs = _python(
        "-c", code, env_update={**clean, "OPENBLAS_NUM_THREADS": "2"}, cwd=tmp_path
    ).communicate()[0]
    assert "threads 2" in theirs


def test_a_subcommand_module_with_add_arguments_and_run_plugs_in(in_tmp, capsys, monkeypatch):
    import importlib.machinery
    import types

    module = types.ModuleType("minisam.reproduce", "Re-run the experiments.\n\nMore text.")
    module.__spec__ = importlib.machinery.ModuleSpec("minisam.reproduce", None)
    module.add_arguments = lambda parser: parser.add_argument("--claim", type=cli.POSITIVE_INT, required=True)
    module.run = lambda args: print(f"claim {args.claim}") or 0
    monkeypatch.setitem(sys.modules, "minisam.reproduce", module)
    assert run(["reproduce", "--claim", "3"]) == 0
    assert capsys.readouterr().out == "claim 3\n"
    assert_refused(capsys, ["reproduce", "--claim", "0"], "--claim: must be an integer >= 1")


@pytest.mark.slow
def test_quick_demo_prints_the_run_folder_first_and_leaves_figures_and_results(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "minisam", "demo", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"run folder: {tmp_path}/")
    assert "mean ± std over 2 seeds" in done.stdout
    for name in ("landscape_paths.png", "learning_curves.png", "results.json", "table.txt"):
        assert (tmp_path / name).exists(), name
