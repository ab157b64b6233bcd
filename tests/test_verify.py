"""The verification table of `kswgd spectra`: every estimator against the spectrum its dataset
declares (seeded).

Measured (seed 0; see `kswgd spectra`, worst |λ̂_k/λ_k − 1| over k = 1..5): oracle exact;
poly `dirichlet`/`edmd` on 2-D OU ≤ 1.7 %; on the circle and S² (tangential gradients) ≤ 2.8 %;
Prinz `dirichlet` with the cosine dictionary 3.3 % and `edmd` (rbf) 4.8 %; `kde-pairs` 4.8 %
(circle, geodesic step) and 7.7 % (2-D OU, lag 0.02); diffusion maps 3.8 % on 2-D OU (no
self-loops, localised modes filtered).

Torus (800 training points, the paper's size): kernel-edmd 18 %, dirichlet 17 % over λ_1..λ_5,
diffusion maps 10 %. For kernel-edmd: noise splitting the degenerate pairs and the in-sample
optimism of 800 pairs, not a smoothing bias (kswgd.tools.verify.TOLERANCES and docs/design.md,
'Torus kernel-EDMD bias').

Not met at the table's sizes, with the trend asserted instead:
- 1-D OU poly λ_4, λ_5 (9–14 % at 200 000 samples): pure sampling noise of degree-10 moments
  (heavy-tailed); the seed-to-seed RMS error falls like M^{−1/2}.
- Diffusion maps on 1-D OU (11 %), the circle (11 %) and S² (13 %): the O(s²) bias of the graph
  generator; on the circle the estimates match the closed-form biased limit, which tends to k²
  like s², and on S² and 1-D OU the error falls as s does.
"""

import numpy as np
import pytest

from kswgd.cli import main
from kswgd.core.dictionaries import Poly
from kswgd.core.estimators import circle_dmap_limit, dirichlet, estimate
from kswgd.dataset import TrainingData
from kswgd.registry import get_dataset
from kswgd.tools.verify import CASES, run_case, verification_table


@pytest.fixture(scope="module")
def table():
    return verification_table(rank=5, seed=0)


def _errors(table, system, estimator):
    rows = [r for r in table if r["system"] == system and r["estimator"] == estimator]
    assert len(rows) == 5
    return np.array([r["rel_error"] for r in rows])


def _case(system, estimator):
    return next(c for c in CASES if c[0] == system and c[5] == estimator)


def test_table_has_the_documented_keys_and_all_cases(table):
    assert len(table) == 5 * len(CASES)
    assert set(table[0]) >= {"system", "estimator", "dictionary", "k", "exact", "estimate",
                             "rel_error"}


@pytest.mark.parametrize("system", ["ou-1d", "ou-2d"])
def test_oracle_is_exact_on_ou(table, system):
    assert _errors(table, system, "oracle").max() < 1e-9


def test_poly_on_ou_within_3pc(table):
    assert _errors(table, "ou-2d", "dirichlet").max() < 0.03
    assert _errors(table, "ou-2d", "edmd").max() < 0.03
    assert _errors(table, "ou-1d", "dirichlet")[:3].max() < 0.03
    assert _errors(table, "ou-1d", "edmd")[:3].max() < 0.03


def test_poly_on_1d_ou_error_is_sampling_noise_shrinking_like_inverse_sqrt_m():
    # Degree-5 Hermite dictionary: the exact He_1..He_5 lie in its span, so with exact moments
    # λ̂ = 1..5 exactly; the error is the noise of degree-10 moments (E x^20 = 19!! makes them
    # heavy-tailed). Over 16 seeds at 200 000 samples: λ_1, λ_2 within 3 % for every seed, λ_3
    # within 3 % in RMS (worst seed 3.8 %), and the RMS error of λ_3..λ_5 falls about
    # 16^{1/2} = 4-fold from 12 500 to 200 000 samples (λ_5: 22.6 → 6.0 % over 8 seeds).
    # 3 % on λ_5 for every seed would need ~10^8 samples.
    def errors(m):
        out = []
        for seed in range(16):
            x = np.random.default_rng([seed, m]).standard_normal((m, 1))
            out.append(dirichlet(TrainingData(x), Poly(5), rank=5).eigenvalues / np.arange(1, 6)
                       - 1)
        return np.array(out)

    small, large = errors(12_500), errors(200_000)
    assert np.abs(large[:, :2]).max() < 0.03
    rms_small, rms_large = np.sqrt((small**2).mean(0)), np.sqrt((large**2).mean(0))
    assert rms_large[2] < 0.03
    ratio = rms_small[2:] / rms_large[2:]
    assert np.all((ratio > 2.5) & (ratio < 8)), ratio


@pytest.mark.parametrize("system,estimator,tol", [
    ("circle", "dirichlet", 0.08), ("sphere", "dirichlet", 0.08), ("prinz", "edmd", 0.08),
    ("prinz", "dirichlet", 0.08), ("circle", "kde-pairs", 0.08), ("ou-2d", "kde-pairs", 0.08),
    ("ou-2d", "diffusion-map", 0.08),
])
def test_other_rows_within_8pc(table, system, estimator, tol):
    assert _errors(table, system, estimator).max() < tol


@pytest.mark.parametrize("system,estimator", [("prinz", "dirichlet"), ("ou-2d", "kde-pairs")])
def test_rows_hold_for_other_seeds(system, estimator):
    # not one lucky seed: measured worst 5.0 % (Prinz, cosine), 7.7 % (kde-pairs) over 3 seeds
    for seed in (1, 2):
        exact, spec = run_case(_case(system, estimator), 5, seed)
        assert np.abs(spec.eigenvalues / exact - 1).max() < 0.08, seed


def test_prinz_dirichlet_random_rbf_landmarks_miss_the_barriers():
    # Why the table uses the cosine dictionary: 150 random-landmark bumps (σ = 0.04) leave the
    # barriers, where the slow modes change sign, almost uncovered; λ̂_1 was 51 % off at 50 000
    # samples and 101 % at 200 000 (seed 0).
    case = _case("prinz", "dirichlet")
    rbf = case[:6] + (("rbf", {"n_features": 150, "bandwidth": 0.04}), {})
    exact, spec = run_case(rbf, 2, 0)
    assert abs(spec.eigenvalues[0] / exact[0] - 1) > 0.2


def test_kde_pairs_bias_shrinks_with_lag_and_geodesic_step_removes_circle_bias():
    # 2-D OU: the one-step Euler pair is O(τ) off (λ_5: 10.6 % at τ = 0.05, 7.7 % at 0.02).
    # Circle: the retraction's atan‖v‖ shrinks the angle step, λ̂ ≈ 4τ + O(τ²) low (17 % at
    # τ = 0.05); the geodesic step (the default on unit spheres) leaves < 5 %.
    ou = _case("ou-2d", "kde-pairs")
    e = {}
    for lag in (0.05, 0.02):
        exact, spec = run_case(ou[:7] + ({**ou[7], "lag": lag},), 5, 0)
        e[lag] = np.abs(spec.eigenvalues / exact - 1)
    assert e[0.02].mean() < e[0.05].mean() and e[0.02].max() < e[0.05].max()
    circ = _case("circle", "kde-pairs")
    exact, retract = run_case(circ[:7] + ({**circ[7], "step": "retract"},), 5, 0)
    _, geodesic = run_case(circ, 5, 0)
    assert geodesic.info["step"] == "geodesic" and retract.info["step"] == "retract"
    assert np.abs(retract.eigenvalues / exact - 1).min() > 0.08
    assert np.abs(geodesic.eigenvalues / exact - 1).max() < 0.05


def test_diffusion_map_on_circle_matches_its_biased_limit_which_tends_to_k2_like_s2(table):
    # The circle row's 11 % (λ_5 = 9) is the O(s²) bias of the graph generator: the estimates
    # sit within the n = 3 000 noise (≈ 5 % per mode) of the closed-form large-n limit
    # 2(1 − I_k/I_0)(1/s²)/s², and λ̂_5 = 7.95 is nearer its limit 8.22 than the exact 9.
    exact, spec = run_case(_case("circle", "diffusion-map"), 5, 0)
    s = spec.info["bandwidth"]
    limit = circle_dmap_limit(np.sqrt(exact).round().astype(int), s)
    assert np.abs(spec.eigenvalues / limit - 1).max() < 0.06
    assert abs(spec.eigenvalues[4] - limit[4]) < abs(spec.eigenvalues[4] - exact[4])
    assert spec.info["localised_modes"] == 0
    bias = [abs(circle_dmap_limit(3, h) / 9 - 1) for h in (s, s / 2)]
    assert bias[1] < bias[0] / 3.5                                 # ∝ s²
    # and the sample estimate's error falls with s (n = 3 000; λ_5: 26 %, 17 %, 11 %)
    errs = []
    for h in (0.4, 0.3, s):
        c = _case("circle", "diffusion-map")
        _, sp = run_case(c[:7] + ({"bandwidth": h},), 5, 0)
        errs.append(abs(sp.eigenvalues[4] / 9 - 1))
    assert errs[0] > errs[1] > errs[2]


def test_diffusion_map_on_sphere_bias_shrinks_with_bandwidth():
    # S², n = 4 000: mean error of λ̂ for l = 2 (exact 6) 18 %, 13 %, 9 % at s = 0.4, 0.3, 0.2
    # (seed 0); the default rule gives s = 0.205 and the table's 13 %.
    c = _case("sphere", "diffusion-map")
    errs = []
    for h in (0.4, 0.3, 0.2):
        exact, sp = run_case(c[:7] + ({"bandwidth": h},), 5, 0)
        assert sp.info["localised_modes"] == 0
        errs.append(np.abs(sp.eigenvalues[3:] / exact[3:] - 1).mean())
    assert errs[0] > errs[1] > errs[2]


def test_diffusion_map_bias_shrinks_with_bandwidth_on_1d_ou():
    # The O(s²) bias on 1-D OU (n = 5 000, seed 0): the summed error of λ̂_1..λ̂_3 falls as s
    # goes 0.8 → 0.5 → 0.3. The table row (n = 6 000, default s = 0.29) is 11 % off at λ_5.
    def err(s):
        case = ("ou-1d", "gaussian", {"d": 1}, "samples", 5000, "diffusion-map", None,
                {"bandwidth": s})
        return np.array([r["rel_error"] for r in verification_table(3, 0, [case])])

    e_wide, e_mid, e_narrow = err(0.8), err(0.5), err(0.3)
    assert e_narrow.sum() < e_mid.sum() < e_wide.sum()
    assert e_narrow.max() < 0.08


def test_diffusion_map_tail_point_remedy_on_2d_ou():
    # 2-D OU, n = 4 000, seed 2: with self-loops and no filter, isolated tail points give
    # λ̂ = 0.07, 0.16, 0.19 before the genuine 1, 1; the defaults (no self-loops, modes with
    # > 70 % of Σφ² on 5 points dropped) give 1.03, 1.06, 1.93, 2.03, 2.17.
    data = get_dataset("gaussian", d=2).train(4000, np.random.default_rng(2), kind="samples")
    raw = estimate("diffusion-map", data, None, rank=5, self_loops=True, max_localisation=1.0)
    fixed = estimate("diffusion-map", data, None, rank=5)
    assert raw.eigenvalues[0] < 0.3
    np.testing.assert_allclose(fixed.eigenvalues, [1, 1, 2, 2, 2], rtol=0.1)
    assert fixed.info["self_loops"] is False and fixed.info["max_localisation"] == 0.7


def test_cli_spectra_json(capsys, monkeypatch):
    import json

    import kswgd.tools.verify as verify

    monkeypatch.setattr(verify, "CASES", [CASES[0]])
    assert main(["spectra", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["k"] for r in rows] == [1, 2, 3, 4, 5]
    assert set(rows[0]) == {"system", "estimator", "dictionary", "k", "exact", "estimate",
                            "rel_error", "tolerance", "ok"}
    assert all(r["ok"] for r in rows)


def test_cli_spectra_prints_tolerance_and_exits_nonzero_when_a_row_fails(capsys, monkeypatch):
    import kswgd.tools.verify as verify

    monkeypatch.setattr(verify, "CASES", [CASES[0]])
    assert main(["spectra"]) == 0
    out = capsys.readouterr().out
    assert "tolerance" in out and out.count("pass") == 5
    monkeypatch.setitem(verify.TOLERANCES, ("ou-1d", "oracle"), -1.0)   # nothing can meet it
    assert main(["spectra"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_every_case_has_a_tolerance():
    from kswgd.tools.verify import TOLERANCES

    assert all((c[0], c[5]) in TOLERANCES for c in CASES)


def test_torus_spectrum_matches_finite_differences_and_the_thin_torus_limit():
    from kswgd.datasets.torus import torus_spectrum

    # independent method: conservative finite differences for −(a g')' + m² r²/a g = λ r² a g
    # on a periodic grid, for m = 0, 1, 2 (each m ≥ 1 twice)
    big_r, r, n = 2.0, 0.8, 1500
    phi = 2 * np.pi * np.arange(n) / n
    h = 2 * np.pi / n
    a = big_r + r * np.cos(phi)
    a_half = big_r + r * np.cos(phi + h / 2)
    vals = []
    import scipy.sparse as sp
    import scipy.sparse.linalg as sla
    for m in range(3):
        main_d = (a_half + np.roll(a_half, 1)) / h**2 + m * m * r * r / a
        stiff = sp.diags([main_d, -a_half[:-1] / h**2, -a_half[:-1] / h**2], [0, 1, -1]).tolil()
        stiff[0, n - 1] = stiff[n - 1, 0] = -a_half[-1] / h**2
        mass = sp.diags(r * r * a)
        lam = sla.eigsh(stiff.tocsc(), k=6, M=mass.tocsc(), sigma=-0.01, which="LM")[0]
        vals += sorted(lam)[:6] * (1 if m == 0 else 2)
    fd = np.sort(vals)[1:7]
    got = torus_spectrum(big_r, r, 6)
    np.testing.assert_allclose(got, fd, rtol=1e-4)         # FD error O(h²) ≈ 2e-5
    np.testing.assert_allclose(got[:4], [0.25724, 0.25724, 0.90284, 0.90284], rtol=1e-4)
    # thin-torus limit R → ∞: the first modes are the θ modes m²/R² (m = 1, twice)
    thin = torus_spectrum(1000.0, 0.8, 2)
    np.testing.assert_allclose(thin, [1e-6, 1e-6], rtol=1e-4)
    assert get_dataset("torus").eigenvalues(4) == pytest.approx(got[:4])


def test_rbf_scale_check_reports_both_fits_and_their_difference():
    from kswgd.tools.verify import rbf_scale_check

    rec = rbf_scale_check("gaussian", n_pairs=3000, features=(40, 80), rank=3, d=1)
    assert [f["n_features"] for f in rec["fits"]] == [40, 80]
    a, b = (np.asarray(f["eigenvalues"]) for f in rec["fits"])
    assert rec["max_rel_difference"] == pytest.approx(np.max(np.abs(a / b - 1)))
    np.testing.assert_allclose(a, [1, 2, 3], rtol=0.25)  # OU: λ = 1, 2, 3
