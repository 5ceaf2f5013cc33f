"""Step Law: power laws of the optimal peak LR and batch size.

Li et al. 2025, "Predictable Scale: Part I -- Optimal Hyperparameter Scaling Law in Large Language Model
Pretraining" (arXiv 2503.04715), Eq. (1)-(2):

    eta*(N, D) = a * N**alpha * D**beta          (N non-embedding parameters, D tokens)
    B*(D)      = b * D**gamma                    (B in tokens)

optionally bent by an interaction of N and D (``kappa``, 0 in the published law): the D exponent moving with N,

    eta*(N, D) = a * N**alpha * D**beta * exp(kappa * (ln N - n0) * (ln D - d0))

so that ``alpha`` and ``beta`` stay the exponents at the centre (n0, d0) of the cells that fitted it, and the D
exponent at N is beta + kappa (ln N - n0) (laws.estimators chooses kappa by empirical Bayes; see there).

with published a = 1.79, alpha = -0.713, beta = 0.307, b = 0.58, gamma = 0.571, fitted by least squares on
logs. The published law is the prior; :func:`fit_step_law` refits the same form to a user's optima. The
sign of each exponent is left to the data: other published laws have the LR falling with D.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

__all__ = ["PUBLISHED", "StepLaw", "StepLawFit", "fit_step_law"]


@dataclass(frozen=True, slots=True)
class StepLaw:
    """Coefficients of the Step Law (see module docstring); ``kappa`` 0 (the default) is the published form."""

    a: float
    alpha: float
    beta: float
    b: float
    gamma: float
    kappa: float = 0.0
    n0: float = 0.0
    d0: float = 0.0

    def lr(self, N: float | np.ndarray, D: float | np.ndarray) -> np.ndarray | float:
        """Optimal peak LR at N non-embedding parameters and D tokens."""
        out = self.a * np.power(N, self.alpha) * np.power(D, self.beta)
        if self.kappa:
            out = out * np.exp(self.kappa * (np.log(N) - self.n0) * (np.log(D) - self.d0))
        return out

    def beta_at(self, N: float) -> float:
        """The D exponent at N: beta, plus kappa (ln N - n0) where the law is bent."""
        return float(self.beta + self.kappa * (np.log(N) - self.n0)) if self.kappa else self.beta

    def alpha_at(self, D: float) -> float:
        """The N exponent at D: alpha, plus kappa (ln D - d0) where the law is bent."""
        return float(self.alpha + self.kappa * (np.log(D) - self.d0)) if self.kappa else self.alpha

    def batch_tokens(self, D: float | np.ndarray) -> np.ndarray | float:
        """Optimal batch size in tokens at D training tokens."""
        return self.b * np.power(D, self.gamma)


#: The published coefficients (arXiv 2503.04715, Eq. 1-2).
PUBLISHED = StepLaw(a=1.79, alpha=-0.713, beta=0.307, b=0.58, gamma=0.571)


@dataclass(frozen=True, slots=True)
class StepLawFit:
    """A Step Law refitted to per-scale optima.

    Attributes:
        law: The fitted coefficients.
        intervals: 95% intervals per coefficient name; absent for a fixed coefficient or a fit with no
            residual degrees of freedom.
        fixed: Coefficients held at the prior because the data cannot identify them (e.g. one D only).
        n_scales: Number of optima fitted.
        lr_rms_log2: RMS residual of log2(lr*) in octaves.
        batch_rms_log2: RMS residual of log2(B*) in octaves.
        estimator: How it was fitted: 'vertex', 'pooled' or 'posterior' (laws.estimators).
        data_share: Posterior fits: per coefficient, the share of its posterior precision that came from the
            cells (1: the data decided it; 0: the prior did). Empty for the other estimators.
        prior_scale: Posterior fits: how far the prior's covariance was widened (x SD) to agree with the cells.
        n_bounds: Posterior fits: cell optima used as one-sided bounds (on a grid edge).
        prior_source: Posterior fits: where the prior came from.
    """

    law: StepLaw
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    fixed: tuple[str, ...] = ()
    n_scales: int = 0
    lr_rms_log2: float = float("nan")
    batch_rms_log2: float = float("nan")
    estimator: str = "vertex"
    data_share: dict[str, float] = field(default_factory=dict)
    prior_scale: float = float("nan")
    n_bounds: int = 0
    prior_source: str = ""
    draws: np.ndarray | None = field(default=None, repr=False, compare=False)
    """Pooled and posterior fits: coefficient draws (rows of log a, alpha, beta, log b, gamma[, kappa]) from the
    bootstrap or the posterior, for prediction intervals that keep the coefficients' correlation; kappa about the
    law's centre (n0, d0)."""
    noise_log: tuple[float, float] = (float("nan"), float("nan"))
    """Scatter (SD, nats) of a cell's log optimal LR and log optimal batch about the law: the posterior's per-cell
    noise (empirical Bayes); NaN where the fit did not estimate it (then the residual RMS stands in)."""
    p_bent: float = float("nan")
    """Posterior fits that weighed the N x D interaction: its posterior probability (the bent settings' share of
    the mixture the intervals average over); NaN where it was not weighed."""
    noise_draws: np.ndarray | None = field(default=None, repr=False, compare=False)
    """Posterior fits: each row of :attr:`draws`'s per-cell noise (columns: LR, batch; nats), from the empirical-Bayes
    setting the row was drawn under, so that predictive intervals average over the noise too (NaN: not
    estimated)."""

    def draws_at(self, N: float, D: float) -> tuple[np.ndarray, np.ndarray]:
        """The optimal LR and batch at (N, D) under each of :attr:`draws` (empty arrays without draws)."""
        if self.draws is None:
            return np.array([]), np.array([])
        dr, lN, lD = self.draws, np.log(N), np.log(D)
        log_lr = dr[:, 0] + dr[:, 1] * lN + dr[:, 2] * lD
        if dr.shape[1] > 5:
            log_lr = log_lr + dr[:, 5] * (lN - self.law.n0) * (lD - self.law.d0)
        return np.exp(log_lr), np.exp(dr[:, 3] + dr[:, 4] * lD)


def _ols(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Huber M-estimation by iteratively reweighted least squares, with coefficient standard errors.

    Starts from OLS; the Huber threshold is 1.345 robust standard deviations of the residuals (MAD,
    re-estimated every iteration), the usual 95%-efficiency tuning, so a few optima from a bad grid
    cannot drag the exponents. Standard errors are None when there are no residual degrees of freedom.
    """
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    w = np.ones_like(y)
    for _ in range(100):
        r = y - X @ coef
        scale = 1.4826 * float(np.median(np.abs(r - np.median(r))))
        delta = 1.345 * max(scale, 1e-3)
        w = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-12))
        sw = np.sqrt(w)
        new, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
        done = np.allclose(new, coef, rtol=0, atol=1e-12)
        coef = new
        if done:
            break
    resid = y - X @ coef
    dof = X.shape[0] - X.shape[1]
    if dof <= 0:
        return coef, None, resid
    sigma2 = float(np.sum(w * resid**2)) / dof
    cov = sigma2 * np.linalg.pinv(X.T @ (X * w[:, None]))
    return coef, np.sqrt(np.diag(cov)), resid


def _interval(est: float, se: float, dof: int) -> tuple[float, float]:
    t = stats.t.ppf(0.975, dof)
    return (est - t * se, est + t * se)


def _fit_batch_law(lD: np.ndarray, lb: np.ndarray, gamma_fixed: float | None,
                   intervals: dict[str, tuple[float, float]]) -> tuple[float, float, np.ndarray]:
    """B* = b D^gamma by OLS on logs (gamma held when given); (b, gamma, residuals), intervals filled in."""
    if gamma_fixed is None:
        Xb = np.column_stack([np.ones_like(lD), lD])
        cb, seb, resid_b = _ols(Xb, lb)
        if seb is not None:
            dofb = Xb.shape[0] - 2
            lo, hi = _interval(cb[0], seb[0], dofb)
            intervals["b"] = (float(np.exp(lo)), float(np.exp(hi)))
            intervals["gamma"] = tuple(float(v) for v in _interval(cb[1], seb[1], dofb))  # type: ignore[assignment]
        return float(np.exp(cb[0])), float(cb[1]), resid_b
    lb0 = lb - gamma_fixed * lD
    if lb0.size > 1:
        se_b = float(np.std(lb0, ddof=1) / np.sqrt(lb0.size))
        lo, hi = _interval(float(lb0.mean()), se_b, lb0.size - 1)
        intervals["b"] = (float(np.exp(lo)), float(np.exp(hi)))
    return float(np.exp(lb0.mean())), float(gamma_fixed), lb0 - lb0.mean()


def _check_inputs(arrs: list[np.ndarray], fix: tuple[str, ...]) -> None:
    N = arrs[0]
    if len({a.shape for a in arrs}) != 1 or N.ndim != 1:
        raise ValueError("fit_step_law: N, D, lr and batch_tokens must be 1-D with one entry per scale.")
    if N.size < 2:
        raise ValueError(
            f"fit_step_law: need optima at >= 2 scales, got {N.size}; add scales to the sweep."
        )
    for name, a in zip(("N", "D", "lr", "batch_tokens"), arrs):
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(f"fit_step_law: {name} must be finite and positive, got {a.tolist()}.")
    unknown = set(fix) - {"alpha", "beta", "gamma"}
    if unknown:
        raise ValueError(f"fit_step_law: fix may name alpha, beta, gamma; got {sorted(unknown)}.")


def fit_step_law(
    N: np.ndarray,
    D: np.ndarray,
    lr: np.ndarray,
    batch_tokens: np.ndarray,
    *,
    prior: StepLaw = PUBLISHED,
    fix: tuple[str, ...] = (),
    min_span_octaves: float = 1.0,
) -> StepLawFit:
    """Refit the Step Law to per-scale optima by OLS on logs (arXiv 2503.04715, Sec. 3).

    Exponents the data cannot identify are held at ``prior``: alpha when N spans less than
    ``min_span_octaves``, beta and gamma when D does, beta also when D does not vary independently of N.

    Args:
        N: Non-embedding parameters of each scale.
        D: Tokens of each scale.
        lr: Optimal peak LR of each scale.
        batch_tokens: Optimal batch (tokens) of each scale.
        prior: Coefficients used for exponents the data cannot identify.
        fix: Exponents ('alpha', 'beta', 'gamma') to hold at ``prior`` regardless of the data.
        min_span_octaves: Least log2 range of N (or D) that identifies its exponent.

    Returns:
        The fit, with 95% intervals where there are residual degrees of freedom.

    Raises:
        ValueError: for mismatched lengths, fewer than 2 scales, or non-positive values.
    """
    arrs = [np.asarray(v, dtype=np.float64) for v in (N, D, lr, batch_tokens)]
    _check_inputs(arrs, fix)
    N, D, lr, batch_tokens = arrs
    lN, lD, ly, lb = np.log(N), np.log(D), np.log(lr), np.log(batch_tokens)
    intervals: dict[str, tuple[float, float]] = {}
    span = min_span_octaves * np.log(2.0)
    n_varies, d_varies = np.ptp(lN) >= span, np.ptp(lD) >= span
    fixed = set(fix)
    if not n_varies:
        fixed.add("alpha")
    if not d_varies:
        fixed.update(("beta", "gamma"))
    cols = {k: v for k, v in (("alpha", lN), ("beta", lD)) if k not in fixed}
    if len(cols) == 2 and np.linalg.matrix_rank(np.column_stack([np.ones_like(lN), lN, lD])) < 3:
        cols.pop("beta")  # D moves in lockstep with N: only one exponent is identified
        fixed.add("beta")
    offset = sum(getattr(prior, k) * v for k, v in (("alpha", lN), ("beta", lD)) if k not in cols)
    X = np.column_stack([np.ones_like(lN), *cols.values()])
    coef, se, resid_lr = _ols(X, ly - offset)
    est = {"alpha": prior.alpha, "beta": prior.beta}
    est.update(dict(zip(cols, coef[1:])))
    a = float(np.exp(coef[0]))
    dof = X.shape[0] - X.shape[1]
    if se is not None:
        lo, hi = _interval(coef[0], se[0], dof)
        intervals["a"] = (float(np.exp(lo)), float(np.exp(hi)))
        for k, c, s in zip(cols, coef[1:], se[1:]):
            intervals[k] = tuple(float(v) for v in _interval(c, s, dof))  # type: ignore[assignment]

    b, gamma, resid_b = _fit_batch_law(lD, lb, prior.gamma if "gamma" in fixed else None, intervals)

    law = StepLaw(a=a, alpha=float(est["alpha"]), beta=float(est["beta"]), b=b, gamma=float(gamma))
    ln2 = np.log(2.0)
    return StepLawFit(
        law=law,
        intervals=intervals,
        fixed=tuple(k for k in ("alpha", "beta", "gamma") if k in fixed),
        n_scales=int(N.size),
        lr_rms_log2=float(np.sqrt(np.mean(resid_lr**2)) / ln2),
        batch_rms_log2=float(np.sqrt(np.mean(resid_b**2)) / ln2),
    )
