"""The exercise checkers accept correct answers and reject the mistakes learners make.

Each mistake below is a wrong implementation a learner could plausibly write; each must be
rejected with an AssertionError that names the case. The checkers' expected values (taken from
minisam's optimizers) are cross-checked against the independent tests/reference_sam.py.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from reference_sam import XSAMReference, ascent, sam_gradient

from minisam import exercises
from minisam.checks import ArgumentError

SOLUTIONS = Path(__file__).resolve().parent.parent / "lessons" / "solutions" / "sam_and_xsam.py"


def _load_solutions():
    spec = importlib.util.spec_from_file_location("sam_and_xsam", SOLUTIONS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


S = _load_solutions()


def flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


def unflat(vector, like):
    sizes = np.cumsum([a.size for a in like])[:-1]
    return [piece.reshape(a.shape) for piece, a in zip(np.split(vector, sizes), like, strict=True)]


# ---- the reference answers pass ---------------------------------------------------------------
def test_reference_perturbation_is_accepted(capsys):
    assert exercises.check_sam_perturbation(S.sam_perturbation) < 1e-15
    assert "check_sam_perturbation: all 4 cases agree with minisam" in capsys.readouterr().out


def test_reference_sam_gradient_is_accepted(capsys):
    assert exercises.check_sam_gradient(S.sam_gradient) < 1e-15
    assert "check_sam_gradient: all 3 cases agree" in capsys.readouterr().out


def test_reference_slerp_is_accepted_exactly(capsys):
    assert exercises.check_slerp(S.slerp) == 0.0
    assert "-- exact" in capsys.readouterr().out


def test_reference_xsam_gradient_is_accepted(capsys):
    assert exercises.check_xsam_gradient(S.xsam_gradient) < 1e-13
    assert "check_xsam_gradient: all 3 cases agree" in capsys.readouterr().out


def test_an_answer_without_eps0_is_accepted_as_close():
    # ε₀ = 1e-12 changes nothing visible at these gradient norms (>= 0.02): not a mistake
    def perturbation(grads, rho):
        return [rho * g / S.global_norm(grads) for g in grads]

    assert 0 < exercises.check_sam_perturbation(perturbation) < 1e-9


# ---- each mistake is rejected ----------------------------------------------------------------
def test_unnormalised_ascent_is_rejected():
    def perturbation(grads, rho):
        return [rho * g for g in grads]

    with pytest.raises(AssertionError, match="the ascent is not normalised"):
        exercises.check_sam_perturbation(perturbation)


def test_unnormalised_ascent_inside_sam_gradient_is_rejected():
    def gradient(params, loss_and_grad, rho):
        _, g = loss_and_grad(params)
        return loss_and_grad([p + rho * d for p, d in zip(params, g, strict=True)])[1]

    with pytest.raises(AssertionError, match="check_sam_gradient, case"):
        exercises.check_sam_gradient(gradient)


def test_per_tensor_norm_instead_of_global_norm_is_rejected():
    def perturbation(grads, rho):
        return [rho * g / (np.linalg.norm(g) + 1e-12) for g in grads]

    with pytest.raises(AssertionError, match="each array divided by its own norm"):
        exercises.check_sam_perturbation(perturbation)


def test_per_tensor_norm_inside_sam_gradient_is_rejected():
    def gradient(params, loss_and_grad, rho):
        _, g = loss_and_grad(params)
        eps = [rho * d / (np.linalg.norm(d) + 1e-12) for d in g]
        return loss_and_grad([p + e for p, e in zip(params, eps, strict=True)])[1]

    with pytest.raises(AssertionError, match="check_sam_gradient, case"):
        exercises.check_sam_gradient(gradient)


def test_theta_modified_in_place_is_rejected():
    def gradient(params, loss_and_grad, rho):
        _, g = loss_and_grad(params)
        for p, e in zip(params, S.sam_perturbation(g, rho), strict=True):
            p += e  # moves θ itself to the ascent point and leaves it there
        return loss_and_grad(params)[1]

    with pytest.raises(AssertionError, match=r"changed params \(θ\)"):
        exercises.check_sam_gradient(gradient)


def test_theta_restored_by_subtraction_is_rejected():
    # (θ + ε) − ε is not θ to the last bit: the library hands θ's own arrays back instead
    def gradient(params, loss_and_grad, rho):
        _, g = loss_and_grad(params)
        eps = S.sam_perturbation(g, rho)
        for p, e in zip(params, eps, strict=True):
            p += e
        _, g1 = loss_and_grad(params)
        for p, e in zip(params, eps, strict=True):
            p -= e
        return g1

    with pytest.raises(AssertionError, match=r"changed params \(θ\)"):
        exercises.check_sam_gradient(gradient)


def test_gradients_modified_in_place_by_the_perturbation_are_rejected():
    def perturbation(grads, rho):
        scale = rho / (S.global_norm(grads) + 1e-12)
        for g in grads:
            g *= scale
        return grads

    with pytest.raises(AssertionError, match="changed the gradients you were given"):
        exercises.check_sam_perturbation(perturbation)


def test_g0_instead_of_g1_is_rejected():
    def gradient(params, loss_and_grad, rho):
        return loss_and_grad(params)[1]  # the gradient at θ: plain SGD, no ascent

    with pytest.raises(AssertionError, match="g₀ = ∇L"):
        exercises.check_sam_gradient(gradient)


def test_linear_interpolation_instead_of_slerp_is_rejected():
    def lerp(v0, v1, alpha):
        return [(1 - alpha) * a + alpha * b for a, b in zip(v0, v1, strict=True)]

    with pytest.raises(AssertionError, match="a straight line, not the arc"):
        exercises.check_slerp(lerp)


def test_normalised_linear_interpolation_is_rejected():
    # (1−α)v₀ + αv₁ rescaled to length 1 is on the sphere but at the wrong angle (except α = ½)
    def nlerp(v0, v1, alpha):
        mixed = [(1 - alpha) * a + alpha * b for a, b in zip(v0, v1, strict=True)]
        return [m / S.global_norm(mixed) for m in mixed]

    with pytest.raises(AssertionError, match="check_slerp, case"):
        exercises.check_slerp(nlerp)


def test_slerp_without_the_parallel_guard_is_rejected():
    def unguarded(v0, v1, alpha):
        cos_psi = min(1.0, max(-1.0, sum(float(np.sum(a * b)) for a, b in zip(v0, v1, strict=True))))
        psi = math.acos(cos_psi)
        with np.errstate(all="ignore"):
            a, b = np.sin((1 - alpha) * psi) / np.sin(psi), np.sin(alpha * psi) / np.sin(psi)
            return [a * x + b * y for x, y in zip(v0, v1, strict=True)]

    with pytest.raises(AssertionError, match=r"parallel.*not a finite number"):
        exercises.check_slerp(unguarded)


def _xsam(interpolate=None, ties_to_largest=False, use_g0=False, in_place=False):
    """The reference XSAM step with one thing changed."""
    interpolate = interpolate or S.slerp

    def xsam_gradient(params, loss_and_grad, loss, rho, rho_max, alphas):
        _, g0 = loss_and_grad(params)
        eps = S.sam_perturbation(g0, rho)
        if in_place:
            for p, e in zip(params, eps, strict=True):
                p += e
            point = params
        else:
            point = [p + e for p, e in zip(params, eps, strict=True)]
        _, g1 = loss_and_grad(point)
        if in_place:
            for p, e in zip(params, eps, strict=True):
                p -= e
        g = g0 if use_g0 else g1
        v0 = [e / (S.global_norm(eps) + 1e-12) for e in eps]
        v1 = [d / (S.global_norm(g) + 1e-12) for d in g]
        probes = [
            loss([p + rho_max * d for p, d in zip(params, interpolate(v0, v1, a), strict=True)])
            for a in alphas
        ]
        best = len(probes) - 1 - int(np.argmax(probes[::-1])) if ties_to_largest else int(np.argmax(probes))
        return alphas[best], [S.global_norm(g) * d for d in interpolate(v0, v1, alphas[best])]

    return xsam_gradient


def test_the_xsam_harness_without_changes_is_accepted():
    exercises.check_xsam_gradient(_xsam())


def test_xsam_ties_to_the_largest_alpha_are_rejected():
    with pytest.raises(AssertionError, match=r"alpha_star: expected 0.9, received 2 .*the smallest α"):
        exercises.check_xsam_gradient(_xsam(ties_to_largest=True))


def test_xsam_with_linear_interpolation_is_rejected():
    def lerp(v0, v1, alpha):
        return [(1 - alpha) * a + alpha * b for a, b in zip(v0, v1, strict=True)]

    with pytest.raises(AssertionError, match="check_xsam_gradient, case"):
        exercises.check_xsam_gradient(_xsam(interpolate=lerp))


def test_xsam_with_g0_instead_of_g1_is_rejected():
    with pytest.raises(AssertionError, match="check_xsam_gradient, case"):
        exercises.check_xsam_gradient(_xsam(use_g0=True))


def test_xsam_that_moves_theta_in_place_is_rejected():
    with pytest.raises(AssertionError, match=r"changed params \(θ\)"):
        exercises.check_xsam_gradient(_xsam(in_place=True))


# ---- what the messages say, and bad input ------------------------------------------------------
def test_a_mismatch_names_the_case_the_array_the_index_and_both_values():
    def off_by_one_element(grads, rho):
        answer = S.sam_perturbation(grads, rho)
        answer[1] = answer[1].copy()
        answer[1].flat[2] += 1.0
        return answer

    with pytest.raises(AssertionError) as caught:
        exercises.check_sam_perturbation(off_by_one_element)
    message = str(caught.value)
    assert "case '∇L of the tanh MLP" in message
    assert "array 1, index (2,)" in message
    assert "expected" in message and "received" in message


def test_a_wrong_number_of_arrays_is_named():
    with pytest.raises(AssertionError, match="must have 4 arrays .* got 1"):
        exercises.check_sam_perturbation(lambda grads, rho: [grads[0]])


def test_a_single_array_instead_of_a_list_is_named():
    with pytest.raises(AssertionError, match="must be a list of 4 arrays .* got ndarray"):
        exercises.check_sam_perturbation(lambda grads, rho: np.zeros(3))


def test_a_wrong_shape_is_named():
    with pytest.raises(AssertionError, match=r"array 0 has shape \(15,\), expected \(5, 3\)"):
        exercises.check_sam_perturbation(lambda grads, rho: [g.ravel() for g in grads])


def test_a_non_callable_is_an_argument_error():
    with pytest.raises(ArgumentError, match="check_slerp: fn must be your function"):
        exercises.check_slerp("slerp")


# ---- the cases do what they are there for ------------------------------------------------------
def test_the_perturbation_cases_separate_per_tensor_and_global_norms_wherever_they_can():
    # they can only differ where more than one array has a nonzero gradient
    separating = 0
    for name, grads, rho in exercises.perturbation_cases():
        per_array = [rho * g / (np.linalg.norm(g) + 1e-12) for g in grads]
        differs = not np.allclose(flat(per_array), flat(S.sam_perturbation(grads, rho)))
        assert differs == (sum(bool(np.any(g)) for g in grads) > 1), name
        separating += differs
    assert separating >= 3


def test_the_capped_case_has_a_tie_at_the_largest_probe_loss():
    case = exercises.gradient_cases()[2]
    alpha, _, probes = exercises.expected_xsam(case, case.rho, 2 * case.rho)
    top = max(loss for _, loss in probes)
    tied = [round(a, 10) for a, loss in probes if loss == top]
    assert len(tied) > 1 and alpha == tied[0] == 0.9
    # and no untied probe is within rounding of the cap, so every correct answer sees the same tie
    assert all(top - loss > 1e-3 for _, loss in probes if loss != top)


def test_the_gradient_cases_have_clear_winners_where_they_do_not_tie():
    for case in exercises.gradient_cases()[:2]:
        _, _, probes = exercises.expected_xsam(case, case.rho, 2 * case.rho)
        first, second = sorted((loss for _, loss in probes), reverse=True)[:2]
        assert first - second > 1e-6 * abs(first), case.name


# ---- the expected values agree with the independent reference -----------------------------------
def _grad_at(case):
    return lambda vector: flat(case.loss_and_grad(unflat(vector, case.theta))[1])


def test_expected_perturbation_matches_the_reference_ascent_from_zero():
    for name, grads, rho in exercises.perturbation_cases():
        g = flat(grads)
        reference = ascent(lambda _point, g=g: g, np.zeros_like(g), rho, 1)
        np.testing.assert_allclose(
            flat(exercises.expected_perturbation(grads, rho)), reference, rtol=1e-14, err_msg=name
        )


def test_expected_sam_gradient_matches_the_reference():
    for case in exercises.gradient_cases():
        reference = sam_gradient(_grad_at(case), flat(case.theta), case.rho)
        expected = flat(exercises.expected_sam_gradient(case, case.rho))
        np.testing.assert_allclose(expected, reference, rtol=1e-12, atol=1e-15, err_msg=case.name)


def test_expected_xsam_alpha_and_gradient_match_the_reference():
    for case in exercises.gradient_cases():
        reference = XSAMReference(case.rho, 2 * case.rho, search_every=1)
        theta = flat(case.theta)
        loss_at = lambda vector, case=case: case.loss_value(unflat(vector, case.theta))  # noqa: E731
        reference_grad = reference.gradient(_grad_at(case), loss_at, theta)
        alpha, grad, _ = exercises.expected_xsam(case, case.rho, 2 * case.rho)
        assert alpha == pytest.approx(reference.alpha, abs=1e-12), case.name
        np.testing.assert_allclose(flat(grad), reference_grad, rtol=1e-10, atol=1e-14, err_msg=case.name)


def test_the_slerp_formula_matches_a_rotation_in_the_plane_of_v0_and_v1():
    # independent construction: v(α) = cos(αψ)·v₀ + sin(αψ)·u, u the unit part of v₁ perpendicular to v₀
    for name, v0, v1, alphas in exercises.slerp_cases():
        a, b = flat(v0), flat(v1)
        cos_psi = float(np.clip(a @ b, -1, 1))
        psi = math.acos(cos_psi)
        for alpha in alphas:
            got = flat(exercises.slerp_formula(v0, v1, alpha))
            if math.sin(psi) < 1e-8:
                np.testing.assert_array_equal(got, b, err_msg=f"{name}: the spec says v(α) = v₁")
                continue
            u = (b - cos_psi * a) / np.linalg.norm(b - cos_psi * a)
            rotated = math.cos(alpha * psi) * a + math.sin(alpha * psi) * u
            np.testing.assert_allclose(got, rotated, rtol=1e-9, atol=1e-12, err_msg=f"{name}, α = {alpha}")
