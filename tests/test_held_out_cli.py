"""The command line's second held-out sweep: bad and edge command lines and environments that
tests/test_cli.py does not try, each named after the rule it checks.

Every refusal is checked the same way: the exit status, exactly one ``error:`` line that names
what was wrong, no traceback, and every file of the working folder unchanged (bytes, and no
file or folder added or removed). Most cases call ``main`` in this process and are refused
before any work; the few that need a real process (signals, a closed or full stdout, the output
encoding) run the tiniest configuration in a subprocess.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import TINY, TINY_CONFIG, run

import minisam as ms
from minisam import __main__ as cli
from minisam import reproduce, threads
from minisam import train as training

REPO = Path(__file__).resolve().parent.parent


def _ident(value) -> str:
    """A readable test id: a command line as typed, '' for an empty value."""
    return " ".join(value) if isinstance(value, list) else repr(value) if value == "" else str(value)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """An empty working folder holding one file of the user's; no minisam variable set."""
    monkeypatch.chdir(tmp_path)
    for name in ("MINISAM_DEBUG", "MINISAM_BACKEND", "MINISAM_BLAS_THREADS", "MINISAM_DATA"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "notes.txt").write_text("mine\n")
    return tmp_path


@pytest.fixture(scope="module")
def done_run(tmp_path_factory):
    """A finished 2-epoch run folder (SGD, digits, tiny MLP), made once; tests copy it."""
    path = tmp_path_factory.mktemp("done") / "run"
    training.train(TINY_CONFIG, run_dir=path, progress=False)
    return path


@pytest.fixture
def earlier_run(folder, done_run):
    """A copy of the finished run inside the working folder, as ``run``."""
    target = folder / "run"
    target.mkdir()
    for item in done_run.iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    return target


def files(root: Path) -> dict:
    """Every path under ``root``: a file's bytes, "folder", or a symbolic link's target."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(root))] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[str(path.relative_to(root))] = "folder"
        else:
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def refused(capsys, root, args, *names, status=2):
    """``main(args)`` exits with ``status``, prints one ``error:`` line naming every one of
    ``names``, no traceback, and leaves every file under ``root`` as it was. Returns the line."""
    before = files(root)
    assert run(args) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and ": error: " in lines[0], lines
    for name in names:
        assert name in lines[0], f"{name!r} not in {lines[0]!r}"
    assert files(root) == before, "files changed"
    return lines[0]


# ---- the arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, flag",
    [
        (["train", *TINY, "--epochs", "1", "--epochs", "2"], "--epochs"),
        (["train", *TINY, "--hidden", "16"], "--hidden"),
        (["train", *TINY, "--lr", "0.1", "--lr", "0.1"], "--lr"),
        (["train", "--out", "a", "--out", "b"], "--out"),
        (["train", "--resume", "a", "--resume", "b"], "--resume"),
        (["compare", "--optimizers", "sgd", "--optimizers", "sam"], "--optimizers"),
        (["compare", "--seeds", "0", "--seeds", "1"], "--seeds"),
        (["demo", "--out", "a", "--out", "b"], "--out"),
        (["reproduce", "--seed", "0", "--seed", "1"], "--seed"),
        (["bench", "--rounds", "1", "--rounds", "2"], "--rounds"),
    ],
    ids=_ident,
)
def test_a_flag_given_twice_is_refused_rather_than_the_last_one_winning(folder, capsys, args, flag):
    line = refused(capsys, folder, args, flag, "more than once")
    assert "give it once" in line


@pytest.mark.parametrize(
    "args, flag",
    [
        (["train", "--out", ""], "--out"),
        (["train", "--out", "  "], "--out"),
        (["train", "--resume", ""], "--resume"),
        (["compare", "--out", ""], "--out"),
        (["demo", "--out", ""], "--out"),
        (["reproduce", "--out", ""], "--out"),
    ],
    ids=_ident,
)
def test_an_empty_path_is_refused_not_taken_for_the_current_folder(folder, capsys, args, flag):
    refused(capsys, folder, args, flag, "expected a path")


@pytest.mark.parametrize(
    "flag, value",
    [("--momentum", "1"), ("--momentum", "1.5"), ("--label-noise", "1.5"), ("--label-noise", "-0.1")],
    ids=_ident,
)
def test_momentum_and_label_noise_must_lie_in_0_to_1_and_say_so_whichever_way_they_miss(
    folder, capsys, flag, value
):
    refused(capsys, folder, ["train", flag, value], flag, "must be a number in [0, 1)", f"got {float(value)}")


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--weight-decay", "-1e-9", "must be a finite number >= 0, got -1e-09"),
        ("--lr", "-inf", "must be a finite number > 0, got -inf"),
        ("--lr", "-nan", "must be a finite number > 0, got nan"),
        ("--seed", "-0x1", "expected a whole number, got '-0x1'"),
    ],
    ids=_ident,
)
def test_a_negative_number_in_any_spelling_is_read_as_a_value_and_refused_by_name(
    folder, capsys, flag, value, expected
):
    """argparse took "-1e-9" and "-inf" for unknown flags and said "expected one argument"."""
    refused(capsys, folder, ["train", flag, value], f"argument {flag}: {expected}")


def test_a_typed_negative_zero_is_recorded_as_zero(folder, capsys):
    args = ["train", *TINY, "--epochs", "1", "--weight-decay", "-0", "--label-noise", "-0", "--out", "r"]
    assert run(args) == 0
    text = (folder / "r" / "results.json").read_text()
    config = json.loads(text)["config"]
    assert config["weight_decay"] == 0.0 and config["label_noise"] == 0.0 and "-0.0" not in text


# ---- the environment ----------------------------------------------------------------------


def test_help_says_that_minisam_backend_is_the_default_of_backend(capsys):
    for command in ("train", "compare"):
        assert run([command, "--help"]) == 0
        assert "MINISAM_BACKEND" in " ".join(capsys.readouterr().out.split())


def test_minisam_backend_is_the_default_of_backend(folder, capsys, monkeypatch):
    """Honoured as the default (any letter case, spaces around it ignored); --backend wins."""
    chosen = []

    def stop_before_training(config, **kwargs):
        chosen.append(config.backend)
        raise KeyboardInterrupt

    monkeypatch.setattr(ms.backend, "gpu_unavailable_reason", lambda: None)  # as if CuPy ran here
    monkeypatch.setattr(ms.backend, "use", lambda name: None)
    monkeypatch.setattr(training, "train", stop_before_training)
    for value, flag, expected in [
        (" CuPy ", [], "cupy"),
        ("cupy", ["--backend", "numpy"], "numpy"),
        ("", [], "numpy"),
    ]:
        monkeypatch.setenv("MINISAM_BACKEND", value)
        assert run(["train", *TINY, *flag, "--out", "r"]) == 130
        assert chosen.pop() == expected
    capsys.readouterr()


def test_minisam_backend_asking_for_cupy_where_it_cannot_run_is_refused_naming_the_variable(
    folder, capsys, monkeypatch
):
    monkeypatch.setattr(ms.backend, "gpu_unavailable_reason", lambda: "no CUDA device here")
    monkeypatch.setenv("MINISAM_BACKEND", "cupy")
    for command in (["train", *TINY], ["compare", *TINY], ["bench"]):
        line = refused(capsys, folder, command, "MINISAM_BACKEND=cupy", "no CUDA device here")
        assert "unset MINISAM_BACKEND" in line


@pytest.mark.parametrize("command", [["train"], ["compare"], ["demo"], ["reproduce"], ["bench"]], ids=_ident)
@pytest.mark.parametrize("value", ["garbage", "cupy numpy", "np"], ids=_ident)
def test_a_minisam_backend_that_names_no_backend_is_refused_by_every_command(
    folder, capsys, monkeypatch, command, value
):
    monkeypatch.setenv("MINISAM_BACKEND", value)
    refused(capsys, folder, command, f"MINISAM_BACKEND is {value!r}", "numpy or cupy")


def test_a_malformed_minisam_backend_is_refused_even_beside_backend(folder, capsys, monkeypatch):
    monkeypatch.setenv("MINISAM_BACKEND", "gpu")
    refused(capsys, folder, ["train", *TINY, "--backend", "numpy"], "MINISAM_BACKEND is 'gpu'")


@pytest.mark.parametrize("command", [["demo"], ["reproduce"]], ids=_ident)
def test_demo_and_reproduce_refuse_a_backend_other_than_the_numpy_of_their_stored_runs(
    folder, capsys, monkeypatch, command
):
    monkeypatch.setenv("MINISAM_BACKEND", "cupy")
    refused(capsys, folder, command, "MINISAM_BACKEND=cupy", "runs on NumPy")


def test_resume_refuses_a_minisam_backend_its_checkpoint_was_not_made_with(
    folder, capsys, monkeypatch, earlier_run
):
    monkeypatch.setenv("MINISAM_BACKEND", "cupy")
    line = refused(capsys, folder, ["train", "--resume", "run", "--epochs", "3"], "MINISAM_BACKEND=cupy")
    assert "made with --backend numpy" in line and "pass --backend numpy" in line


@pytest.mark.parametrize(
    "variable, value",
    [
        ("MINISAM_BLAS_THREADS", "0"),
        ("MINISAM_BLAS_THREADS", "-1"),
        ("MINISAM_BLAS_THREADS", "1.5"),
        ("MINISAM_BLAS_THREADS", "²"),
        ("MINISAM_BLAS_THREADS", "99999999999999999999"),
        ("OPENBLAS_NUM_THREADS", "abc"),
        ("OPENBLAS_NUM_THREADS", "0"),
        ("OMP_NUM_THREADS", "2,x"),
        ("MKL_NUM_THREADS", "1e3"),
    ],
    ids=_ident,
)
@pytest.mark.parametrize("command", [["train", *TINY], ["bench"], ["reproduce"]], ids=_ident)
def test_a_malformed_thread_variable_is_refused_before_any_work(
    folder, capsys, monkeypatch, variable, value, command
):
    monkeypatch.setenv(variable, value)
    refused(capsys, folder, command, variable, repr(value), "whole number of threads")


def test_thread_variables_may_have_spaces_around_and_omp_a_list_per_level(monkeypatch):
    monkeypatch.setenv("MINISAM_BLAS_THREADS", " 2 ")
    monkeypatch.setenv("OMP_NUM_THREADS", "4, 2")
    threads.check_environment()
    assert threads._wanted() == 2


@pytest.mark.parametrize("value", ["0", "false", "off", ""], ids=_ident)
def test_minisam_debug_set_to_off_gives_the_one_line_summary(folder, capsys, monkeypatch, value):
    monkeypatch.setenv("MINISAM_DEBUG", value)
    refused(capsys, folder, ["train", "--resume", "nope.npz"], "no such file: 'nope.npz'")


def test_minisam_debug_that_is_neither_on_nor_off_is_refused(folder, capsys, monkeypatch):
    monkeypatch.setenv("MINISAM_DEBUG", "maybe")
    refused(capsys, folder, ["train", "--resume", "nope.npz"], "MINISAM_DEBUG is 'maybe'", "set it to 1")


# ---- the output folder --------------------------------------------------------------------


@pytest.mark.parametrize("command", [["train", *TINY], ["compare", *TINY], ["demo"]], ids=_ident)
def test_a_symbolic_link_to_nowhere_as_output_is_refused_and_left_alone(folder, capsys, command):
    os.symlink("nowhere", folder / "link")
    refused(capsys, folder, [*command, "--out", "link"], "link is a symbolic link to 'nowhere'")
    assert not (folder / "nowhere").exists()


@pytest.mark.parametrize(
    "name", [os.path.join("new", "x" * 300), "x" * 300], ids=["under a new folder", "here"]
)
def test_an_output_folder_the_file_system_refuses_is_a_refusal_that_leaves_nothing(folder, capsys, name):
    """A name longer than any file system's limit: refused by name, and no parent folder left."""
    refused(capsys, folder, ["train", *TINY, "--out", name], "cannot be made", "File name too long")


def test_demo_refuses_a_folder_holding_an_earlier_run(folder, capsys, earlier_run):
    refused(capsys, folder, ["demo", "--quick", "--out", "run"], "--out run already holds a run")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("out", [["--out", os.path.join("deep", "er", "r")], []], ids=_ident)
def test_a_failed_run_removes_the_folders_it_made_for_itself(folder, capsys, out):
    args = ["train", *TINY, "--epochs", "1", "--lr", "1e6", "--momentum", "0", *out]
    refused(capsys, folder, args, "smaller --lr", status=1)


def test_ctrl_c_in_the_first_epoch_removes_the_parent_folders_made_for_the_run(folder, capsys, monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "evaluate", ctrl_c)
    before = files(folder)
    assert run(["train", *TINY, "--out", os.path.join("deep", "r")]) == 130
    assert files(folder) == before and "nothing to resume" in capsys.readouterr().err


def test_ctrl_c_outside_the_epochs_says_what_was_kept_whatever_python_wrapped_it_in(
    folder, capsys, monkeypatch
):
    """A KeyboardInterrupt raised inside a codec (np.load reading the data) comes out of Python
    with a message of its own; the line is still minisam's."""

    def interrupted_while_loading(*args, **kwargs):
        raise KeyboardInterrupt("decoding with 'cp437' codec failed (KeyboardInterrupt: )")

    monkeypatch.setattr(training, "train", interrupted_while_loading)
    before = files(folder)
    assert run(["train", *TINY, "--out", "r"]) == 130
    assert (
        capsys.readouterr().err
        == "python -m minisam train: interrupted; no epoch had finished: nothing to resume\n"
    )
    assert files(folder) == before


def test_a_run_started_in_the_same_second_as_another_gets_a_folder_of_its_own(folder, capsys, monkeypatch):
    monkeypatch.setattr(cli.time, "strftime", lambda fmt: "20260101-000000")
    taken = folder / "runs" / "train-20260101-000000"
    taken.mkdir(parents=True)  # the other run's, before it has written anything
    assert run(["train", *TINY, "--epochs", "1"]) == 0
    assert list(taken.iterdir()) == []
    assert (folder / "runs" / "train-20260101-000000-2" / "results.json").is_file()
    assert f"run folder: {os.path.join('runs', 'train-20260101-000000-2')}/" in capsys.readouterr().out


# ---- checkpoints --------------------------------------------------------------------------


def test_a_checkpoint_with_a_damaged_configuration_is_refused_naming_the_file(folder, capsys, done_run):
    state = ms.load(done_run / "checkpoint.npz")
    state["config"] = "not json {"
    ms.save(state, folder / "damaged.npz")
    refused(capsys, folder, ["train", "--resume", "damaged.npz"], "damaged.npz is damaged", "configuration")


def test_resume_into_a_new_folder_leaves_the_earlier_run_untouched(folder, capsys, earlier_run):
    before = files(earlier_run)
    assert run(["train", "--resume", "run", "--out", "r2", "--epochs", "3"]) == 0
    assert files(earlier_run) == before
    saved = json.loads((folder / "r2" / "results.json").read_text())
    assert [row["epoch"] for row in saved["history"]] == [1, 2, 3]


# ---- reproduce ----------------------------------------------------------------------------


@pytest.fixture
def results_folders(folder):
    (folder / "empty").mkdir()
    (folder / "damaged").mkdir()
    (folder / "damaged" / "selection.json").write_text("{")
    (folder / "damaged" / "main_result.json").write_text("{")
    return folder


ONE = ["--setting", "mlp-clean", "--optimizer", "sgd", "--seed", "0"]


@pytest.mark.parametrize(
    "args, names",
    [
        (["--setting", "cnn-clean", "--optimizer", "sgd"], ["missing --seed"]),
        (["--optimizer", "sam"], ["missing --setting, --seed"]),
        (["--setting", "cnn-clean", "--optimizer", "sgd", "--seed", "-1"], ["--seed", "-1"]),
        ([*ONE, "--epochs", "0"], ["--epochs", "got 0"]),
        (["--epochs", "1"], ["--epochs only shortens a single rerun"]),
        ([*ONE, "--phase", "final"], ["--phase belongs to the whole protocol"]),
        ([*ONE, "--keep-going"], ["--keep-going belongs to the whole protocol"]),
        ([*ONE, "--model", "cnn1d"], ["--model cnn1d disagrees with --setting mlp-clean"]),
        (["--keep-going", "--phase", "selection", "--out", "empty"], ["--keep-going", "--phase selection"]),
        ([*ONE, "--out", "empty"], ["main_result.json not found"]),
        ([*ONE, "--out", "damaged"], ["main_result.json cannot be read"]),
        (["--phase", "final", "--out", "empty"], ["selection.json not found", "--phase selection"]),
        (["--phase", "final", "--out", "damaged"], ["selection.json cannot be read"]),
        (["--phase", "selection", "--out", "notes.txt"], ["notes.txt is an existing file"]),
    ],
    ids=_ident,
)
def test_reproduce_refuses_before_any_run(results_folders, capsys, args, names):
    refused(capsys, results_folders, ["reproduce", *args], *names)


def test_reproduce_sgd_for_twice_the_epochs_runs_twice_the_epochs_given(folder, capsys, monkeypatch):
    ran = []

    def record(config):
        ran.append(config)
        return {"test_acc": 0.5}, {}

    monkeypatch.setattr(reproduce, "run_one", record)
    assert (
        run(["reproduce", "--setting", "mlp-clean", "--optimizer", "sgd-2x", "--seed", "0", "--epochs", "3"])
        == 0
    )
    assert [c.epochs for c in ran] == [6] and "6 epochs" in capsys.readouterr().out


# ---- the process: signals, standard output ------------------------------------------------


def _python(args, cwd, **kwargs):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINISAM_")}
    env.update(PYTHONPATH=str(REPO), **kwargs.pop("env", {}))

    def child():  # Ctrl-C and SIGTERM at their defaults, whatever this test process inherited
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return subprocess.Popen(
        [sys.executable, "-m", "minisam", *args], cwd=cwd, env=env, preexec_fn=child, **kwargs
    )


def _finish(child, timeout=60):
    try:
        return child.communicate(timeout=timeout)
    finally:
        if child.poll() is None:  # never leave a training process behind
            child.kill()
            child.communicate()


def test_sigterm_stops_a_run_as_ctrl_c_does_with_one_line_and_status_143(tmp_path):
    child = _python(
        ["train", *TINY, "--epochs", "1000000", "--out", "r"],
        tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in child.stdout:  # wait until the first epoch is saved
        if line.startswith("  epoch 1/"):
            break
    child.send_signal(signal.SIGTERM)
    _, err = _finish(child)
    assert child.returncode == 143, f"exit {child.returncode}; stderr: {err!r}"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"--resume {os.path.join('r', 'checkpoint.npz')}" in err
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["checkpoint.npz"]


def test_stdout_closed_under_a_run_is_one_line_saying_what_was_kept(tmp_path):
    child = _python(
        ["train", *TINY, "--epochs", "3", "--out", "r"],
        tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline() == "run folder: r/\n"
    child.stdout.close()  # as `| head -1` does
    _, err = _finish(child)
    assert child.returncode == 1 and "Traceback" not in err and "Exception ignored" not in err
    (line,) = err.strip().splitlines()
    assert "error: standard output was closed" in line
    assert f"resume with python -m minisam train --resume {os.path.join('r', 'checkpoint.npz')}" in line


def test_help_into_a_pipe_already_closed_is_quiet(tmp_path):
    read, write = os.pipe()
    os.close(read)
    child = _python(["train", "--help"], tmp_path, stdout=write, stderr=subprocess.PIPE, text=True)
    os.close(write)
    _, err = _finish(child)
    assert (child.returncode, err) == (0, "")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_stdout_on_a_full_disk_is_one_line_and_no_folder_is_left(tmp_path):
    with open("/dev/full", "w") as full:
        child = _python(
            ["train", *TINY, "--out", "r"], tmp_path, stdout=full, stderr=subprocess.PIPE, text=True
        )
        _, err = _finish(child)
    assert child.returncode == 1 and "Traceback" not in err and "Exception ignored" not in err
    (line,) = err.strip().splitlines()
    assert "standard output cannot be written" in line and "No space left on device" in line
    assert list(tmp_path.iterdir()) == []


def test_an_output_encoding_without_greek_letters_escapes_them(tmp_path):
    child = _python(
        ["train", "--help"],
        tmp_path,
        env={"PYTHONIOENCODING": "ascii"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = _finish(child)
    assert (child.returncode, err) == (0, "") and "eta in T = |\\u03b8| + eta" in " ".join(out.split())


def test_rho_beside_sharpness_sets_the_radius_of_the_measure_for_sgd_too(folder, capsys):
    """--sharpness measures the ρ-sharpness at --rho: for SGD too, so --rho is not refused there."""
    assert run(["train", *TINY, "--epochs", "1", "--sharpness", "--rho", "0.1", "--out", "r"]) == 0
    saved = json.loads((folder / "r" / "results.json").read_text())
    assert saved["config"]["rho"] == 0.1 and "rho_sharpness" in saved["final"]


@pytest.mark.parametrize(
    "command", [["train", *TINY], ["compare", *TINY], ["demo"], ["reproduce"]], ids=_ident
)
def test_a_data_folder_without_the_data_is_refused_before_any_work(folder, capsys, monkeypatch, command):
    (folder / "elsewhere").mkdir()
    monkeypatch.setenv("MINISAM_DATA", "elsewhere")
    refused(capsys, folder, command, "does not exist", "MINISAM_DATA is 'elsewhere'", ".npz")


# ---- bench: what it would have ignored or failed on late ----------------------------------


@pytest.mark.parametrize(
    "args, names",
    [
        (["bench", "--only", "threads", "threads"], ["--only", "twice", "threads"]),
        (["bench", "--rounds", "1001"], ["--rounds", "at most 1000", "1001"]),
        (["bench", "--gpu", "--only", "networks"], ["--gpu", "--only"]),
        (["bench", "--gpu", "--skip-allocator"], ["--gpu", "--skip-allocator"]),
    ],
    ids=_ident,
)
def test_bench_refuses_a_repeated_section_too_many_rounds_and_options_gpu_does_not_take(
    folder, capsys, args, names
):
    refused(capsys, folder, args, *names)


def test_bench_gpu_without_a_usable_gpu_is_one_error_line_before_any_work(folder, capsys, monkeypatch):
    monkeypatch.setattr(ms.backend, "gpu_unavailable_reason", lambda: "no CUDA device here")
    refused(capsys, folder, ["bench", "--gpu"], "--gpu", "no CUDA device here")


@pytest.mark.parametrize(
    "args",
    [
        ["train", *TINY, "--optimizer", "xsam", "--alpha", "0.5"],
        ["train", *TINY, "--optimizer", "xsam", "--alpha", "0.5", "--search-every", "5"],
        ["compare", *TINY, "--optimizers", "sgd", "xsam", "--alpha", "0.5"],
    ],
    ids=_ident,
)
def test_alpha_without_search_every_0_is_refused_since_step_0_searches_and_replaces_it(folder, capsys, args):
    refused(capsys, folder, args, "--alpha", "--search-every 0")


def test_a_ctrl_c_while_python_m_minisam_is_still_importing_the_package_is_one_line_not_a_traceback():
    # `python -m minisam` imports the package (sys.argv[0] is "-m" then) before __main__ runs;
    # this child stands in for that moment and interrupts itself there.
    code = (
        "import sys; sys.argv[0] = '-m'\n"
        "import os, signal, time, minisam\n"
        "os.kill(os.getpid(), signal.SIGINT); time.sleep(5); print('ran on')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert done.returncode == 130 and done.stdout == ""
    assert done.stderr == "python -m minisam: interrupted\n"


def test_importing_minisam_in_a_program_leaves_its_ctrl_c_alone():
    # the program's own handler is set first: a shell that starts its background jobs with Ctrl-C
    # ignored would otherwise leave Python's default handler out, whatever minisam does
    code = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); import minisam; "
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.stdout.strip() == "True", done.stderr
