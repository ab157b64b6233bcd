"""Verification of the spectral estimators against known spectra: the table ``kswgd spectra``
prints, one row per (system, estimator, k) with the fitted λ̂_k, the reference λ_k, the relative
error and the tolerance that row must meet (CASES × TOLERANCES below).

The reference values are what each dataset declares (``Dataset.eigenvalues``): closed forms
for OU, the circle and the sphere, a Sturm–Liouville Fourier–Galerkin for the torus and a fine
finite-difference solve for Prinz's 1-D potential (``kswgd.core.exact``).
"""

from __future__ import annotations

import numpy as np

from kswgd.params import ConfigError


def reference_eigenvalues(dataset, r: int) -> np.ndarray:
    """λ_1..λ_r declared by the dataset; a dataset without them cannot be a verification case."""
    lam = dataset.eigenvalues(r)
    if lam is None:
        raise ConfigError(f"dataset {dataset.name!r} declares no eigenvalues to verify against")
    return np.asarray(lam, dtype=float)


# (system label, dataset name, dataset params, data kind, n, estimator, dictionary spec, params)
CASES: list[tuple] = [
    ("ou-1d", "gaussian", {"d": 1}, None, 0, "oracle", None, {}),
    ("ou-1d", "gaussian", {"d": 1}, "samples", 200_000, "dirichlet", ("poly", {"degree": 5}), {}),
    ("ou-1d", "gaussian", {"d": 1, "lag": 0.3}, "trajectories", 200_000, "edmd",
     ("poly", {"degree": 5}), {}),
    ("ou-1d", "gaussian", {"d": 1}, "samples", 6000, "diffusion-map", None, {}),
    ("ou-2d", "gaussian", {"d": 2}, None, 0, "oracle", None, {}),
    ("ou-2d", "gaussian", {"d": 2}, "samples", 100_000, "dirichlet", ("poly", {"degree": 4}), {}),
    ("ou-2d", "gaussian", {"d": 2, "lag": 0.3}, "trajectories", 100_000, "edmd",
     ("poly", {"degree": 4}), {}),
    ("ou-2d", "gaussian", {"d": 2}, "samples", 10_000, "kde-pairs", ("poly", {"degree": 4}),
     {"repeats": 10, "lag": 0.02}),
    ("ou-2d", "gaussian", {"d": 2}, "samples", 4000, "diffusion-map", None, {}),
    ("circle", "circle", {}, "samples", 20_000, "dirichlet", ("poly", {"degree": 6}), {}),
    ("circle", "circle", {}, "samples", 5000, "kde-pairs", ("poly", {"degree": 6}),
     {"repeats": 10, "lag": 0.05}),
    ("circle", "circle", {}, "samples", 3000, "diffusion-map", None, {}),
    ("sphere", "sphere", {}, "samples", 20_000, "dirichlet", ("poly", {"degree": 4}), {}),
    ("sphere", "sphere", {}, "samples", 4000, "diffusion-map", None, {}),
    ("prinz", "prinz", {}, "samples", 50_000, "dirichlet", ("cosine", {"n_features": 40}), {}),
    ("prinz", "prinz", {"lag": 0.002, "n_sub": 10}, "trajectories", 50_000, "edmd",
     ("rbf", {"n_features": 150, "bandwidth": 0.04}), {}),
    # the paper's torus at its size (800 training points)
    ("torus", "torus", {}, "trajectories", 800, "kernel-edmd", None, {}),
    ("torus", "torus", {}, "trajectories", 800, "edmd", ("rbf", {"n_features": 100}), {}),
    ("torus", "torus", {}, "samples", 800, "dirichlet",
     ("rbf", {"n_features": 100, "landmarks": "kmeans"}), {}),
    ("torus", "torus", {}, "samples", 800, "kde-pairs", ("rbf", {"n_features": 100}),
     {"repeats": 10, "lag": 0.05}),
    ("torus", "torus", {}, "samples", 800, "diffusion-map", None, {}),
]


# Tolerance of |λ̂_k/λ_k − 1| for each row (system, estimator): what the row is expected to meet
# at the table's size, from the error budget of each estimator (statistical error ∝ M^{−1/2},
# the O(s²) bias of diffusion maps, the O(τ) bias of kde-pairs' Euler pairs).
TOLERANCES: dict[tuple[str, str], float] = {
    ("ou-1d", "oracle"): 1e-9, ("ou-2d", "oracle"): 1e-9,
    # λ_4, λ_5 on 1-D OU: sampling noise of degree-10 moments (9–14 % at 200 000 samples)
    ("ou-1d", "dirichlet"): 0.2, ("ou-1d", "edmd"): 0.2,
    ("ou-1d", "diffusion-map"): 0.15,          # O(s²) bias, 11 %
    ("ou-2d", "dirichlet"): 0.03, ("ou-2d", "edmd"): 0.03,
    ("ou-2d", "kde-pairs"): 0.1, ("ou-2d", "diffusion-map"): 0.08,
    ("circle", "dirichlet"): 0.05, ("circle", "kde-pairs"): 0.08,
    ("circle", "diffusion-map"): 0.15,         # O(s²) bias, matches the closed-form limit
    ("sphere", "dirichlet"): 0.05, ("sphere", "diffusion-map"): 0.15,
    ("prinz", "dirichlet"): 0.05, ("prinz", "edmd"): 0.08,
    # the paper's torus with 800 training points (seed 0, worst of λ_1..λ_5): kernel-edmd 18 %,
    # dirichlet 17 % (λ_1..λ_4: 12 % and 14 %), diffusion-map 10 %, kde-pairs 29 %, edmd with
    # 100 bumps 39 % (overfits 800 pairs: biased low).
    # kernel-edmd over 16 seeds (python -m kswgd.tools.torus_bias --n 800 --seeds 16), mean
    # and sd of λ̂_k/λ_k − 1 for k = 1..5: −6.6/+6.1/−7.3/+6.9/−8.2 %, sd 4.8–5.7 %. The two
    # degenerate pairs come out split by sampling noise (lower member low, upper high, pair mean
    # −0.3 %); λ̂_5 is low by the in-sample optimism of 800 pairs. Tolerance = the worst
    # |mean| + 2.5 sd (λ_3: 7.3 + 2.5 × 5.6 = 21.4 %), see docs/design.md, 'Torus kernel-EDMD
    # bias'.
    ("torus", "kernel-edmd"): 0.22, ("torus", "edmd"): 0.4, ("torus", "dirichlet"): 0.2,
    ("torus", "kde-pairs"): 0.35, ("torus", "diffusion-map"): 0.15,
}


def run_case(case: tuple, rank: int = 5, seed: int = 0):
    """Fit one verification case; returns (exact λ_1..λ_r, fitted spectrum)."""
    from kswgd.core.dictionaries import make_dictionary
    from kswgd.core.estimators import estimate
    from kswgd.registry import get_dataset

    system, ds_name, ds_params, kind, n, est, dic_spec, params = case
    ds = get_dataset(ds_name, **ds_params)
    root = np.random.SeedSequence([seed, len(system), n])
    data_rng, fit_rng = (np.random.default_rng(s) for s in root.spawn(2))
    train = ds.train(n, data_rng, kind=kind) if kind else None
    dic = make_dictionary(dic_spec[0], **dic_spec[1]) if dic_spec else None
    if est == "oracle":                  # the dataset's own spectrum: no data, no seed
        spec = estimate(est, None, None, rank=rank, dataset=ds, **params)
    else:                                # edmd works in the ambient coordinates only
        where = {} if est == "edmd" else {"manifold": ds.manifold}
        spec = estimate(est, train, dic, rank=rank, rng=fit_rng, **where, **params)
    return reference_eigenvalues(ds, rank), spec


def verification_table(rank: int = 5, seed: int = 0, cases: list[tuple] | None = None):
    """Rows {system, estimator, dictionary, k, exact, estimate, rel_error, tolerance, ok} for
    each case × k (``ok``: rel_error ≤ tolerance, see TOLERANCES)."""
    rows = []
    for case in CASES if cases is None else cases:
        exact, spec = run_case(case, rank, seed)
        dic = case[6][0] if case[6] else "-"
        for k in range(rank):
            est = float(spec.eigenvalues[k]) if k < spec.rank else float("nan")
            rows.append({"system": case[0], "estimator": case[5], "dictionary": dic,
                         "k": k + 1, "exact": float(exact[k]), "estimate": est,
                         "rel_error": abs(est / exact[k] - 1.0),
                         "tolerance": TOLERANCES[(case[0], case[5])],
                         "ok": bool(abs(est / exact[k] - 1.0) <= TOLERANCES[(case[0], case[5])]),
                         "fit_seconds": float(spec.info.get("fit_seconds", np.nan))})
    return rows


def rbf_scale_check(dataset: str = "quadruple_well", n_pairs: int = 100_000,
                    features: tuple[int, int] = (1000, 2000), rank: int = 5,
                    bandwidth: float = 0.0, seed: int = 0, **dataset_params) -> dict:
    """The rbf scale check (``kswgd spectra --scale``): EDMD with ``features[0]`` and
    ``features[1]`` random-landmark Gaussian bumps on the same ``n_pairs`` trajectory pairs; fit
    seconds of each and the largest relative difference of λ_1..λ_rank between the two
    (convergence in F)."""
    import time

    from kswgd.core.dictionaries import RBF
    from kswgd.core.estimators import edmd
    from kswgd.registry import get_dataset

    data_ss, fit_ss = np.random.SeedSequence(seed).spawn(2)
    train = get_dataset(dataset, **dataset_params).train(
        n_pairs, np.random.default_rng(data_ss), kind="trajectories")
    out: dict = {"dataset": dataset, "n_pairs": n_pairs, "rank": rank, "fits": []}
    for f in features:
        t0 = time.perf_counter()
        spec = edmd(train, RBF(f, bandwidth), rank=rank, rng=np.random.default_rng(fit_ss))
        out["fits"].append({"n_features": f, "seconds": time.perf_counter() - t0,
                            "bandwidth": spec.info["bandwidth"],
                            "kept_dim": spec.info["kept_dim"],
                            "eigenvalues": spec.eigenvalues.tolist()})
    a, b = (np.asarray(fit["eigenvalues"]) for fit in out["fits"])
    out["max_rel_difference"] = float(np.max(np.abs(a / b - 1.0)))
    return out
