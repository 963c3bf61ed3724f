"""The main-result protocol (minisam/reproduce.py, lessons/results/PROTOCOL.md): its statistics, its
runs' definitions, bit-identical reruns, and the consistency of the stored result."""

import json
import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from minisam import reproduce
from minisam.data import add_label_noise, load_mnist1d
from minisam.train import RunConfig, load_data, train


# ---- statistics ---------------------------------------------------------------------------------
def _t_cdf(x: float, df: int) -> float:
    """P(T <= x) for Student's t with df degrees of freedom, by integrating its density with
    the substitution t = tan(u) (a finite interval) and Simpson's rule: independent of the table."""
    u = np.linspace(-math.pi / 2, math.atan(x), 200_001)[1:-1]
    t = np.tan(u)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    f = np.exp(log_c - (df + 1) / 2 * np.log1p(t * t / df)) / np.cos(u) ** 2
    h = u[1] - u[0]
    simpson = h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return float(simpson)


@pytest.mark.parametrize("df", range(1, 31))
def test_t_quantile_table_entries_are_the_975_quantiles(df):
    # the table rounds to 3 decimals: the CDF there is 0.975 to within the density times 5e-4
    assert abs(_t_cdf(reproduce.t_975(df), df) - 0.975) < 3e-4


@pytest.mark.parametrize("bad", [0, 31, 2.0, True, "4"])
def test_t_quantile_outside_the_table_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="df must be"):
        reproduce.t_975(bad)


def test_paired_difference_gives_mean_interval_and_wins_computed_by_hand():
    d = reproduce.paired([0.80, 0.72, 0.93], [0.79, 0.70, 0.90])  # differences 0.01, 0.02, 0.03
    assert d["mean"] == pytest.approx(0.02)
    half = 4.303 * 0.01 / math.sqrt(3)  # t_{0.975,2} · s / √n with s = 0.01
    assert d["ci95"] == pytest.approx([0.02 - half, 0.02 + half])
    assert (d["wins"], d["ties"], d["losses"], d["n"]) == (3, 0, 0, 3)


def test_paired_difference_needs_two_equal_length_sequences():
    with pytest.raises(ValueError, match="same length >= 2"):
        reproduce.paired([0.5, 0.6], [0.5])
    with pytest.raises(ValueError, match="same length >= 2"):
        reproduce.paired([0.5], [0.4])


def test_paired_runs_pairs_two_optimizers_of_a_result_by_seed():
    runs = [
        {"setting": "s", "optimizer": name, "seed": seed, "test_acc": acc}
        for name, seed, acc in [("a", 1, 0.5), ("a", 0, 0.7), ("b", 0, 0.6), ("b", 1, 0.2), ("b", 2, 0.9)]
    ]
    d = reproduce.paired_runs({"runs": runs}, "s", "a", "b")  # seeds 0 and 1: differences 0.1 and 0.3
    assert d["n"] == 2 and d["mean"] == pytest.approx(0.2) and d["wins"] == 2


def test_verdict_is_held_only_when_the_interval_lies_above_zero():
    assert reproduce.verdict({"ci95": [0.001, 0.02]}) == "held"
    assert reproduce.verdict({"ci95": [-0.02, -0.001]}) == "reversed"
    assert reproduce.verdict({"ci95": [-0.001, 0.02]}) == "not resolved"
    assert reproduce.verdict({"ci95": [0.0, 0.02]}) == "not resolved"


# ---- what each run is ---------------------------------------------------------------------------
def _spec(epochs=3):
    spec = reproduce.protocol()
    rho = {s: {"sam": 0.05, "xsam": 0.1} for s in spec["settings"]}
    spec["chosen"] = {"epochs": epochs, "rho": rho}
    return spec


def test_sgd_plus_is_xsam_with_alpha_fixed_at_zero_and_xsams_rho():
    config = reproduce.config_for(_spec(), "cnn-clean", "sgd+", seed=0)
    assert (config.optimizer, config.alpha, config.search_every, config.rho) == ("xsam", 0.0, 0, 0.1)


def test_xsam_searches_once_per_epoch_from_alpha_one_and_sam_uses_its_own_rho():
    xsam = reproduce.config_for(_spec(), "cnn-noise20", "xsam", seed=0)
    assert (xsam.alpha, xsam.search_every, xsam.rho_max, xsam.rho, xsam.label_noise) == (
        1.0,
        None,
        None,
        0.1,
        0.2,
    )
    assert reproduce.config_for(_spec(), "cnn-clean", "sam", seed=0).rho == 0.05


def test_sgd_twice_the_epochs_makes_as_many_passes_as_sam():
    spec = _spec(epochs=80)
    sam = reproduce.config_for(spec, "cnn-clean", "sam", seed=0)
    sgd2 = reproduce.config_for(spec, "cnn-clean", "sgd-2x", seed=0)
    assert (sgd2.optimizer, sgd2.epochs) == ("sgd", 160)
    assert reproduce.passes_per_run(sgd2) == reproduce.passes_per_run(sam) == 80 * 50 * 2


def test_every_optimizer_of_a_seed_shares_the_data_and_the_fixed_training_settings():
    spec = _spec()
    configs = [reproduce.config_for(spec, "cnn-noise20", name, seed=4) for name in reproduce.OPTIMIZERS]
    fixed = {
        (c.seed, c.label_noise, c.lr, c.momentum, c.weight_decay, c.batch_size, c.validation) for c in configs
    }
    assert fixed == {(4, 0.2, 0.05, 0.9, 5e-4, 64, 800)}


def test_an_unknown_setting_or_optimizer_is_a_clear_error():
    with pytest.raises(ValueError, match="setting must be one of"):
        reproduce.config_for(_spec(), "cifar", "sgd", seed=0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        reproduce.config_for(_spec(), "cnn-clean", "adam", seed=0)


def test_selection_runs_never_evaluate_the_test_set():
    config = replace(reproduce.config_for(_spec(epochs=1), "cnn-clean", "sgd", seed=100), evaluate_test=False)
    result = train(config, progress=False)
    assert all("test_acc" not in row and "test_loss" not in row for row in result.history)
    assert "test_acc" not in result.final and 0 <= result.final["val_acc"] <= 1


@pytest.mark.parametrize("optimizer", ["xsam", "sgd+"])
def test_the_same_seed_gives_a_bit_identical_run(optimizer):
    config = reproduce.config_for(_spec(epochs=1), "cnn-noise20", optimizer, seed=3)
    first, first_curves = reproduce.run_one(config)
    second, second_curves = reproduce.run_one(config)
    assert first["test_acc"] == second["test_acc"] and first["val_acc"] == second["val_acc"]
    assert first_curves == second_curves  # every per-epoch loss, exactly


# ---- the runner's validation split (RunConfig.validation, evaluate_test) ---------------------
def test_validation_is_carved_from_training_and_never_overlaps_it():
    d = load_data(RunConfig(model="cnn1d", validation=800))
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (3200, 800, 1000)
    train_rows = {row.tobytes() for row in d.x_train}
    assert not any(row.tobytes() in train_rows for row in d.x_val)


def test_label_noise_reaches_the_validation_labels_too():
    clean = load_data(RunConfig(model="cnn1d", validation=800))
    noisy = load_data(RunConfig(model="cnn1d", validation=800, label_noise=0.2, seed=7))
    flipped = np.concatenate([noisy.y_train != clean.y_train, noisy.y_val != clean.y_val])
    assert flipped.sum() == 800 and (noisy.y_val != clean.y_val).any()
    assert (noisy.y_test == clean.y_test).all()  # the test labels stay clean


def test_without_a_validation_split_label_noise_is_what_it_was():
    cfg = RunConfig(model="cnn1d", label_noise=0.2, seed=3)
    d = load_data(cfg)
    expected, _ = add_label_noise(load_mnist1d(channels=True).y_train, 0.2, 10, seed=3)
    assert d.x_val is None and (d.y_train == expected).all()


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"validation": -1}, r"RunConfig: validation must be an integer >= 0, got -1"),
        ({"validation": 0.2}, r"RunConfig: validation must be an integer >= 0, got 0.2"),
        ({"validation": True}, r"RunConfig: validation must be an integer >= 0, got True"),
        ({"validation": 100, "dataset": "moons"}, "validation splits exist for mnist1d and digits"),
        ({"evaluate_test": "no"}, "evaluate_test must be True or False"),
    ],
)
def test_bad_validation_settings_are_clear_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**fields).validate()


# ---- the command line ---------------------------------------------------------------------------
def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "minisam", "reproduce", *args], capture_output=True, text=True
    )


def test_a_partial_rerun_request_is_a_clear_error():
    done = _cli("--setting", "cnn-clean", "--seed", "0")
    assert done.returncode != 0 and "give all of --setting, --optimizer and --seed" in done.stderr


def test_an_unknown_optimizer_name_is_refused_naming_the_choices():
    done = _cli("--setting", "cnn-clean", "--optimizer", "adam", "--seed", "0")
    assert done.returncode != 0 and "invalid choice: 'adam'" in done.stderr and "sgd+" in done.stderr


def test_a_short_rerun_prints_test_acc_last_and_says_it_is_not_a_stored_run():
    done = _cli("--setting", "cnn-clean", "--optimizer", "sam", "--seed", "0", "--epochs", "1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "not comparable with a stored run" in done.stdout
    assert lines[-1].startswith("test_acc ") and 0 < float(lines[-1].split()[1]) < 1


# ---- the stored result ------------------------------------------------------------------------
STORED = pytest.mark.parametrize("model", ["cnn1d", "mlp"])  # lessons/results/ and lessons/results/mlp/


def _stored(model):
    folder = reproduce.results_dir(model)
    return json.loads((folder / "main_result.json").read_text()), json.loads(
        (folder / "selection.json").read_text()
    )


@STORED
def test_stored_protocol_is_the_code_protocol_plus_the_selection_choices(model):
    result, selection = _stored(model)
    assert result["complete"] is True
    assert result["protocol"] == selection["protocol"]
    stored = {k: v for k, v in result["protocol"].items() if k != "chosen"}
    assert stored == json.loads(json.dumps(reproduce.protocol(model)))


@STORED
def test_stored_choices_follow_the_rules_from_the_selection_runs(model):
    _, selection = _stored(model)
    spec = selection["protocol"]
    loss = {}
    for run in selection["epoch_rule"]["runs"]:
        assert run["test_acc"] is None  # selection never saw the test set
        loss.setdefault(run["epochs"], []).append(run["train_loss"])
    candidates = spec["epoch_rule"]["candidates"]
    expected = next(
        (
            e
            for e, e2 in zip(candidates[:-1], candidates[1:], strict=True)
            if np.mean(loss[e]) - np.mean(loss[e2]) < spec["epoch_rule"]["plateau"]
        ),
        candidates[-1],
    )
    assert spec["chosen"]["epochs"] == expected
    for setting in spec["settings"]:
        for method in ("sam", "xsam"):
            runs = [r for r in selection["rho_runs"] if (r["setting"], r["optimizer"]) == (setting, method)]
            assert all(r["test_acc"] is None and r["epochs"] == expected for r in runs)
            assert sorted({r["rho"] for r in runs}) == sorted(spec["rho_grid"])
            val = {rho: np.mean([r["val_acc"] for r in runs if r["rho"] == rho]) for rho in spec["rho_grid"]}
            best = max(val.values())
            assert spec["chosen"]["rho"][setting][method] == min(rho for rho, v in val.items() if v == best)


@STORED
def test_stored_runs_cover_every_optimizer_on_at_least_five_fresh_seeds_with_their_settings(model):
    result, _ = _stored(model)
    spec = result["protocol"]
    epochs, chosen_rho = spec["chosen"]["epochs"], spec["chosen"]["rho"]
    for setting in spec["settings"]:
        seeds = None
        for name in spec["optimizers"]:
            runs = [r for r in result["runs"] if (r["setting"], r["optimizer"]) == (setting, name)]
            mine = sorted(r["seed"] for r in runs)
            assert len(mine) >= 5 and len(set(mine)) == len(mine), (setting, name, mine)
            assert not set(mine) & set(spec["selection_seeds"])
            seeds = seeds or mine
            assert mine == seeds  # every optimizer on the same seeds: the differences are paired
            for r in runs:
                assert r["epochs"] == (2 * epochs if name == "sgd-2x" else epochs)
                want_rho = {"sam": chosen_rho[setting]["sam"], "xsam": chosen_rho[setting]["xsam"],
                            "sgd+": chosen_rho[setting]["xsam"]}.get(name)  # fmt: skip
                assert r["rho"] == want_rho
                # accuracies are counts over 800 validation and 1000 test signals
                assert round(r["test_acc"] * 1000, 6).is_integer() and 0 <= r["test_acc"] <= 1
                assert round(r["val_acc"] * 800, 6).is_integer() and 0 <= r["val_acc"] <= 1
                assert math.isfinite(r["lambda_max"]) and r["rho_sharpness"] >= 0


@STORED
def test_stored_summary_matches_the_stored_runs(model):
    result, _ = _stored(model)
    for setting, block in result["summary"].items():
        acc = {}
        for r in result["runs"]:
            if r["setting"] == setting:
                acc.setdefault(r["optimizer"], {})[r["seed"]] = r["test_acc"]
        for name, reference in [(n, "sgd") for n in block["vs_sgd"]] + [(n, "sam") for n in block["vs_sam"]]:
            d = [acc[name][s] - acc[reference][s] for s in sorted(acc[reference])]
            stored = block["vs_sgd" if reference == "sgd" else "vs_sam"][name]
            n = len(d)
            mean = sum(d) / n
            sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
            half = reproduce.t_975(n - 1) * sd / math.sqrt(n)
            assert stored["mean"] == pytest.approx(mean, abs=1e-12)
            assert stored["ci95"] == pytest.approx([mean - half, mean + half], abs=1e-12)
            assert (stored["wins"], stored["losses"]) == (sum(x > 0 for x in d), sum(x < 0 for x in d))
        assert block["claims"]["SAM > SGD"] == reproduce.verdict(block["vs_sgd"]["sam"])
        assert block["claims"]["XSAM > SAM"] == reproduce.verdict(block["vs_sam"]["xsam"])


@STORED
def test_stored_curves_end_at_the_stored_final_numbers(model):
    result, _ = _stored(model)
    curves = json.loads((reproduce.results_dir(model) / "curves.json").read_text())
    for r in result["runs"]:
        c = curves[f"{r['setting']}/{r['optimizer']}/{r['seed']}"]
        assert len(c["test_acc"]) == r["epochs"] and c["test_acc"][-1] == r["test_acc"]
        assert c["val_acc"][-1] == r["val_acc"]


@pytest.mark.slow
@pytest.mark.parametrize("model, setting", [("cnn1d", "cnn-clean"), ("mlp", "mlp-noise20")])
def test_rerunning_a_stored_run_reproduces_its_test_accuracy_exactly(model, setting):
    result, _ = _stored(model)
    stored = next(
        r for r in result["runs"] if (r["setting"], r["optimizer"], r["seed"]) == (setting, "sgd", 0)
    )
    done = _cli("--setting", setting, "--optimizer", "sgd", "--seed", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == f"test_acc {stored['test_acc']}"
