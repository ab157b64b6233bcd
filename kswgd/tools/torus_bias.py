"""Where the torus kernel-EDMD error comes from (docs/design.md, 'Torus kernel-EDMD bias').

For each training size n and seed, kernel EDMD is fitted on the torus's trajectory pairs and
these numbers are taken per eigenvalue λ_k (k = 1..r, exact λ_k from ``Torus.eigenvalues``):

    in-sample   λ̂_k, the estimator's output, = −log(aᵀAa / aᵀ(C0 + γG)a)/τ at its eigenvector a;
    no-ridge    λ⁰_k = −log(aᵀAa / aᵀC0a)/τ, the same quotient without the ridge term, so that
                λ̂_k − λ⁰_k = log(1 + γ aᵀGa / aᵀC0a)/τ ≈ γ‖φ̂_k‖²_H/τ is the ridge's direct
                shift (‖φ̂_k‖_π = 1), which does not shrink with n at a fixed γ;
    Ritz        the Rayleigh–Ritz values of span{φ̂_1..φ̂_r} with moments of ``n_test`` fresh
                pairs: the generalised eigenvalues μ of Ā v = μ C̄0 v, Ā = mean (φ(x)φ(y)ᵀ +
                φ(y)φ(x)ᵀ)/2, C̄0 = mean (φ(x)φ(x)ᵀ + φ(y)φ(y)ᵀ)/2 (φ centred on the fresh
                data), λ = −log μ/τ. By the min-max principle the j-th Ritz value is ≥ λ_j up to
                the noise of the fresh moments, so its excess is the error of the fitted
                functions themselves (dictionary, bandwidth, ridge), free of the sampling noise
                of the n pairs;
    pair        for the degenerate pair λ_1 = λ_2 (the modes cos θ g(φ), sin θ g(φ)): the mean
                (λ̂_1 + λ̂_2)/2 and the half split (λ̂_2 − λ̂_1)/2. Noise splits a degenerate
                pair symmetrically, so the upper member is high by about the split even when
                the mean is right;
    angle       α = arg(⟨φ̂_1, cos θ⟩ + i⟨φ̂_1, sin θ⟩) mod π on the fresh points, the direction
                of the lower member in the pair's plane. The torus is invariant under rotations
                about its axis, so a split from noise has α uniform over seeds (mean resultant
                length of 2α near 0, ≈ seeds^{−1/2}), a split from anisotropy a fixed α (near 1).

Run: ``python -m kswgd.tools.torus_bias --n 800 3200 --seeds 8`` (one line per fit, then the
mean and the standard deviation over seeds; variants by ``--ridge`` / ``--factor``, and
``--test-n-sub`` for finer Euler steps in the fresh pairs).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def ritz_values(spec, tau: float, x: np.ndarray, y: np.ndarray, block: int = 8000) -> np.ndarray:
    """Rayleigh–Ritz λ of span{φ̂_k} from pairs (x, y) (module docstring), ascending."""
    import scipy.linalg

    phx = np.vstack([spec.phi(x[i:i + block]) for i in range(0, len(x), block)])
    phy = np.vstack([spec.phi(y[i:i + block]) for i in range(0, len(y), block)])
    mean = 0.5 * (phx.mean(axis=0) + phy.mean(axis=0))
    phx, phy = phx - mean, phy - mean
    m = len(x)
    c1 = phx.T @ phy / m
    a = 0.5 * (c1 + c1.T)
    c0 = 0.5 * (phx.T @ phx + phy.T @ phy) / m
    mu = scipy.linalg.eigh(a, c0, eigvals_only=True)[::-1]
    return -np.log(mu) / tau


def unridged_quotients(spec, train, tau: float) -> np.ndarray:
    """λ⁰_k = −log(a_kᵀ A a_k / a_kᵀ C0 a_k)/τ: the in-sample Rayleigh quotient of the fitted
    eigenvector without the ridge term γ a_kᵀ G a_k in the denominator."""
    from kswgd.core.linalg import reversible_moments

    c0, a_sym = reversible_moments(spec.dictionary, train.x, train.y, 20000)
    a = spec.coefficients
    return -np.log(np.einsum("ik,ij,jk->k", a, a_sym, a)
                   / np.einsum("ik,ij,jk->k", a, c0, a)) / tau


def study(n_values, seeds: int, rank: int = 6, n_test: int = 100_000, ridge: float = 3e-5,
          factor: float = 1.0, test_n_sub: int = 0, out=sys.stdout) -> dict:
    """Relative errors (in-sample λ̂ and Ritz) of kernel EDMD on the torus, per n and seed.

    Seeds: training data of (seed, n) from ``np.random.default_rng([seed, n])``, the fresh test
    pairs from ``default_rng([10_000 + seed, n])``, simulated with ``test_n_sub`` Euler steps
    (0: the dataset's own; a larger value measures the Euler–Maruyama bias of the pairs)."""
    from kswgd.core.estimators import kernel_edmd
    from kswgd.registry import get_dataset

    ds = get_dataset("torus")
    exact = ds.eigenvalues(rank)
    tau = float(ds.params["lag"])
    tds = get_dataset("torus", n_sub=test_n_sub) if test_n_sub > 0 else ds
    res: dict = {"exact": exact.tolist()}
    for n in n_values:
        fit, ritz, rq, angle = [], [], [], []
        for seed in range(seeds):
            train = ds.train(n, np.random.default_rng([seed, n]), kind="trajectories")
            spec = kernel_edmd(train, rank=rank, ridge=ridge, bandwidth_factor=factor)
            test = tds.train(n_test, np.random.default_rng([10_000 + seed, n]),
                            kind="trajectories")
            fit.append(spec.eigenvalues[:rank] / exact - 1)
            rq.append(unridged_quotients(spec, train, tau)[:rank] / exact - 1)
            ritz.append(ritz_values(spec, tau, test.x, test.y)[:rank] / exact - 1)
            theta = ds.angles(test.x[:20000])[0]
            phi1 = spec.phi(test.x[:20000])[:, 0]
            angle.append(np.arctan2(np.mean(phi1 * np.sin(theta)),
                                    np.mean(phi1 * np.cos(theta))) % np.pi)
            print(f"n={n} seed={seed} eps={spec.info['bandwidth']:.3f} in-sample "
                  f"{_pc(fit[-1])} no-ridge {_pc(rq[-1])} Ritz {_pc(ritz[-1])} angle "
                  f"{np.degrees(angle[-1]):.0f} deg", file=out,
                  flush=True)
        fit, ritz, rq = np.array(fit), np.array(ritz), np.array(rq)
        mean_pair, split = 0.5 * (fit[:, 1] + fit[:, 0]), 0.5 * (fit[:, 1] - fit[:, 0])
        row = {"in_sample_mean": fit.mean(0), "in_sample_sd": fit.std(0, ddof=1),
               "rq_mean": rq.mean(0), "rq_sd": rq.std(0, ddof=1),
               "ritz_mean": ritz.mean(0), "ritz_sd": ritz.std(0, ddof=1),
               "pair_mean": mean_pair.mean(), "pair_mean_sd": mean_pair.std(ddof=1),
               "half_split": split.mean(), "half_split_sd": split.std(ddof=1),
               "resultant": float(abs(np.mean(np.exp(2j * np.array(angle)))))}
        res[n] = row
        print(f"n={n} ({seeds} seeds, ridge {ridge:g}, factor {factor:g}) in-sample mean "
              f"{_pc(row['in_sample_mean'])} sd {_pc(row['in_sample_sd'])}\n"
              f"    no-ridge mean {_pc(row['rq_mean'])} sd {_pc(row['rq_sd'])}\n"
              f"    Ritz mean {_pc(row['ritz_mean'])} sd {_pc(row['ritz_sd'])}\n"
              f"    pair λ1,λ2: mean {100 * row['pair_mean']:+.2f} % (sd "
              f"{100 * row['pair_mean_sd']:.2f}), half split {100 * row['half_split']:.2f} % "
              f"(sd {100 * row['half_split_sd']:.2f}); resultant length of 2α "
              f"{row['resultant']:.2f}", file=out, flush=True)
    return res


def _pc(v: np.ndarray) -> str:
    return "[" + " ".join(f"{100 * e:+6.2f}" for e in v) + "] %"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kswgd.tools.torus_bias",
                                description="sources of the torus kernel-EDMD error")
    p.add_argument("--n", type=int, nargs="+", default=[800, 3200])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--rank", type=int, default=6)
    p.add_argument("--n-test", type=int, default=100_000)
    p.add_argument("--ridge", type=float, default=3e-5)
    p.add_argument("--factor", type=float, default=1.0, help="bandwidth = factor × median")
    p.add_argument("--test-n-sub", type=int, default=0,
                   help="Euler steps of the fresh pairs (0: the dataset's 10)")
    a = p.parse_args(argv)
    if min(a.n) < 10 or a.seeds < 2 or a.rank < 2 or a.n_test < 100 or a.ridge < 0 \
            or a.factor <= 0 \
            or a.test_n_sub < 0:
        print("torus_bias: need n >= 10, seeds >= 2, rank >= 2, n-test >= 100, ridge >= 0, "
              "factor > 0, test-n-sub >= 0", file=sys.stderr)
        return 2
    study(a.n, a.seeds, a.rank, a.n_test, a.ridge, a.factor, a.test_n_sub)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
