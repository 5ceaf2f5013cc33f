"""Estimators of the Step Law from a sweep's runs: pooled band, cell vertices, and a censored posterior.

Three ways to go from runs at many (N, D) cells to eta*(N, D) = a N^alpha D^beta and B*(D) = b D^gamma:

- ``"pooled"``: the Step Law authors' procedure (step-law/steplaw ``code/fit_tool.py``): pool every run within
  0.25% of its cell's best loss, regress log lr on (log N, log D) and log batch on log D by least squares over
  those runs, repeat on ``n_boot`` bootstrap resamples of the rows and take the mean coefficients.
- ``"vertex"``: the parabola vertex of each cell (laws.optimum), then a Huber regression over cells; exponents the
  cells cannot identify are held at the prior (laws.steplaw.fit_step_law).
- ``"posterior"`` (the default): each cell contributes the centroid of its near-optimal band (one observation per
  cell, so a flat bowl with many band runs does not outvote a sharp one), a cell whose optimum sits on an edge of
  its grid contributes a one-sided bound ("at or beyond this edge") instead of a point, and the exponents get a
  Gaussian prior: the published law with the covariance of the authors' 1,000 bootstrap fits, widened by a factor
  ``tau >= 1`` when the cells disagree with it. ``tau`` and the per-cell noise are chosen together by empirical
  Bayes (the marginal likelihood of the bracketed cells' optima under the prior: type-II maximum likelihood), which
  needs no held-out cell, so it judges the prior from two cells as well as from twenty. The level of each law
  has a weak prior (``LEVEL_SD`` nats around the prior law at the cells' centroid). The MAP is found by L-BFGS;
  intervals are Laplace (posterior) intervals; ``data_share`` says, per coefficient, how much of its posterior
  precision came from the cells (1: the data decided; 0: the prior did).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from scipy import optimize, stats

from laws.optimum import NEAR_OPTIMAL_BAND, vertex_1d
from laws.steplaw import PUBLISHED, StepLaw, StepLawFit

__all__ = [
    "ESTIMATORS",
    "PUBLISHED_PRIOR",
    "CellObservation",
    "Estimator",
    "LawPrior",
    "cell_observations",
    "fit_pooled",
    "fit_posterior",
]

Estimator = Literal["posterior", "posterior_straight", "pooled", "vertex"]
#: The estimators fit_sweep accepts, the default first. ``posterior_straight`` is the posterior without the N x D
#: interaction (the published form, as the default was before 2026-12-04).
ESTIMATORS: tuple[Estimator, ...] = ("posterior", "posterior_straight", "pooled", "vertex")

#: Prior SD (nats) of each law's level at the cells' centroid: wide (about 2.9 octaves), so any cell moves it.
LEVEL_SD = 2.0
#: Least per-cell noise (nats) of a log optimum: a quarter octave on a grid of octave steps is as fine as a
#: cell resolves its optimum.
NOISE_FLOOR = 0.1
#: Per-cell noise (nats) assumed when too few bracketed cells leave nothing to estimate it from.
NOISE_DEFAULT = 0.25
#: Two-sided 95% quantile of the normal: a 95% interval is this many SDs either side.
Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class LawPrior:
    """A Gaussian prior on the Step Law's exponents (and the law that centres the levels).

    Attributes:
        law: The prior law: its exponents are the prior means, its prefactors centre the weak level prior.
        lr_cov: 2x2 covariance of (alpha, beta).
        gamma_var: Variance of gamma.
        source: Where it comes from (printed with the fit).
    """

    law: StepLaw
    lr_cov: tuple[tuple[float, float], tuple[float, float]]
    gamma_var: float
    source: str = "given"

    def __post_init__(self) -> None:
        cov = np.asarray(self.lr_cov, dtype=np.float64)
        if cov.shape != (2, 2) or not np.all(np.isfinite(cov)) or np.any(np.linalg.eigvalsh(cov) <= 0):
            raise ValueError(f"LawPrior.lr_cov must be a positive-definite 2x2 covariance, got {self.lr_cov!r}.")
        if not (np.isfinite(self.gamma_var) and self.gamma_var > 0):
            raise ValueError(f"LawPrior.gamma_var must be finite and > 0, got {self.gamma_var!r}.")

    @staticmethod
    def from_sd(law: StepLaw, alpha_sd: float, beta_sd: float, gamma_sd: float, rho: float = 0.0,
                source: str = "given") -> LawPrior:
        """A prior from standard deviations (and the alpha-beta correlation ``rho``)."""
        c = rho * alpha_sd * beta_sd
        return LawPrior(law=law, lr_cov=((alpha_sd**2, c), (c, beta_sd**2)), gamma_var=gamma_sd**2, source=source)

    @staticmethod
    def from_fit(fit: StepLawFit, source: str) -> LawPrior:
        """The posterior of an earlier sweep's fit as the prior of a new one: centred on its law (without an N x D
        interaction, whose prior stays at 0), each exponent's SD from its 95% interval (the published bootstrap's
        where it has none), the alpha-beta correlation from the draws of the straight law (those with no
        interaction: a bent draw's alpha at the origin of logs carries the bend's lever arm), else 0."""
        law = StepLaw(a=fit.law.a, alpha=fit.law.alpha, beta=fit.law.beta, b=fit.law.b, gamma=fit.law.gamma)
        sd = {}
        for k, published in zip(("alpha", "beta", "gamma"), _PUBLISHED_SD, strict=True):
            lo, hi = fit.intervals.get(k, (np.nan, np.nan))
            sd[k] = (hi - lo) / (2 * Z95) if np.isfinite(hi - lo) and hi > lo else published
        rho = 0.0
        if fit.draws is not None:
            d = np.asarray(fit.draws, dtype=np.float64)
            straight = d[d[:, 5] == 0.0] if d.shape[1] > 5 else d
            if len(straight) > 50 and np.all(np.std(straight[:, 1:3], axis=0) > 0):
                rho = float(np.clip(np.corrcoef(straight[:, 1], straight[:, 2])[0, 1], -0.95, 0.95))
        return LawPrior.from_sd(law, sd["alpha"], sd["beta"], sd["gamma"], rho=rho, source=source)

    @staticmethod
    def from_mapping(d: dict, source: str) -> LawPrior:
        """A prior written down: ``{"alpha", "beta", "gamma"[, "a", "b"][, "alpha_sd", "beta_sd", "gamma_sd",
        "rho"]}``, or the ``lr_law`` / ``batch_law`` of ``lawsweep fit --json`` (SDs from its 95% intervals). The
        exponents are required; prefactors default to the published law's, SDs (and rho) to the published
        bootstrap's.

        Raises:
            ValueError: naming the field, its value and what it should be.
        """
        if not isinstance(d, dict):
            raise ValueError(f"prior {source}: expected a JSON object with alpha, beta and gamma, got "
                             f"{type(d).__name__}.")
        flat = dict(d)
        for part in ("lr_law", "batch_law"):  # lawsweep fit --json
            sub = d.get(part)
            if isinstance(sub, dict):
                flat.update({k: v for k, v in sub.items() if k != "intervals"})
                for k, iv in (sub.get("intervals") or {}).items():
                    if k in ("alpha", "beta", "gamma") and f"{k}_sd" not in d and isinstance(iv, list | tuple) \
                            and len(iv) == 2:
                        flat[f"{k}_sd"] = (float(iv[1]) - float(iv[0])) / (2 * Z95)
        if d.get("lr_law", 0) is None or d.get("batch_law", 0) is None:
            raise ValueError(f"prior {source}: its fit has no law (lr_law or batch_law is null): the sweep it came "
                             "from had too few scales; fit a sweep with optima at two scales or more.")
        vals: dict[str, float] = {}
        defaults = {"a": PUBLISHED.a, "b": PUBLISHED.b, "alpha_sd": _PUBLISHED_SD[0], "beta_sd": _PUBLISHED_SD[1],
                    "gamma_sd": _PUBLISHED_SD[2], "rho": _PUBLISHED_RHO if "alpha_sd" not in flat else 0.0}
        for k in ("alpha", "beta", "gamma", "a", "b", "alpha_sd", "beta_sd", "gamma_sd", "rho"):
            if k not in flat:
                if k in defaults:
                    vals[k] = float(defaults[k])
                    continue
                raise ValueError(f"prior {source}: no {k!r}; give the exponents alpha, beta and gamma (e.g. "
                                 '{"alpha": -0.713, "beta": 0.307, "gamma": 0.571}), or the output of '
                                 "`lawsweep fit --json`.")
            v = flat[k]
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                raise ValueError(f"prior {source}: {k} must be a finite number, got {v!r}.")
            vals[k] = float(v)
        for k in ("a", "b", "alpha_sd", "beta_sd", "gamma_sd"):
            if vals[k] <= 0:
                raise ValueError(f"prior {source}: {k} must be > 0, got {vals[k]!r}.")
        if not -1.0 < vals["rho"] < 1.0:
            raise ValueError(f"prior {source}: rho (the alpha-beta correlation) must lie in (-1, 1), got "
                             f"{vals['rho']!r}.")
        law = StepLaw(a=vals["a"], alpha=vals["alpha"], beta=vals["beta"], b=vals["b"], gamma=vals["gamma"])
        return LawPrior.from_sd(law, vals["alpha_sd"], vals["beta_sd"], vals["gamma_sd"], rho=vals["rho"],
                                source=source)


#: SDs of the authors' 1,000 bootstrap fits (alpha, beta, gamma) and the alpha-beta correlation.
_PUBLISHED_SD = (0.029858, 0.019139, 0.018669)
_PUBLISHED_RHO = -0.30507


#: The published law with the spread of the authors' 1,000 bootstrap fits
#: (shared/data/steplaw/1004_fitted_lr_bs_scaling_model_parameters.csv: SD of lr_coefN 0.0299, of lr_coefD 0.0191,
#: their correlation -0.305; SD of bs_coefD 0.0187; tests check these against the file).
PUBLISHED_PRIOR = LawPrior.from_sd(PUBLISHED, *_PUBLISHED_SD, rho=_PUBLISHED_RHO,
                                   source="published Step Law, bootstrap spread of its 1,000 fits")


@dataclass(frozen=True, slots=True)
class CellObservation:
    """What one (N, D) cell says about one optimum (log LR or log batch).

    Attributes:
        N, D: The cell.
        value: Log of the optimum (band centroid), or of the edge when ``side`` is not 0.
        side: 0 for a bracketed optimum; +1 when the optimum is at or above ``value`` (best run on the grid's
            upper edge); -1 when it is at or below (lower edge).
    """

    N: float
    D: float
    value: float
    side: int = 0


def _band_centroids(lr: np.ndarray, bt: np.ndarray, loss: np.ndarray, band: float
                    ) -> tuple[float, float, int | None, int | None]:
    """Per axis, the log optimum and the edge side of the best run.

    The optimum is the mean over the near-optimal band where the band holds 2 or more values of that axis
    (fine grids with broad bowls, as the Step Law grids); on a coarser grid the band may hold a single value
    and its mean would be the grid point itself, so the parabola vertex through the best run and its neighbours
    (laws.optimum) is used instead. ``loss`` may hold +inf (a diverged run): it is no optimum, but it is a grid
    value beyond the best run, so a best run next to it is not on the grid's edge.
    """
    ran_lr, ran_bt = lr, bt
    fin = np.isfinite(loss)
    lr, bt, loss = lr[fin], bt[fin], loss[fin]
    best = int(np.argmin(loss))
    inb = loss <= loss[best] * (1 + band)
    at_bt, at_lr = bt == bt[best], lr == lr[best]
    c_lr, c_bt = float(np.mean(np.log(lr[inb]))), float(np.mean(np.log(bt[inb])))
    if np.unique(lr[inb]).size < 2:
        c_lr = vertex_1d(np.log(lr[at_bt]), loss[at_bt], float(np.log(lr[best])))[0]
    if np.unique(bt[inb]).size < 2 and np.unique(bt).size > 1:
        c_bt = vertex_1d(np.log(bt[at_lr]), loss[at_lr], float(np.log(bt[best])))[0]

    def side(values: np.ndarray, at: float) -> int | None:
        """0: bracketed; +1/-1: on the upper/lower edge; None: the best run is the only value sampled on this
        axis at its other coordinate (its batch, for the LR), so it neither brackets nor bounds the optimum."""
        u = np.unique(values)
        if u.size < 2:
            return None
        return 1 if at >= u[-1] else (-1 if at <= u[0] else 0)

    s_lr = side(ran_lr[ran_bt == bt[best]], lr[best])
    s_bt = side(ran_bt[ran_lr == lr[best]], bt[best]) if np.unique(bt).size > 1 else 0
    return c_lr, c_bt, s_lr, s_bt


def cell_observations(
    N: np.ndarray, D: np.ndarray, lr: np.ndarray, bt: np.ndarray, loss: np.ndarray, *, band: float = NEAR_OPTIMAL_BAND
) -> tuple[list[CellObservation], list[CellObservation]]:
    """Per cell, the LR and batch observations: band centroids, or one-sided bounds at the grid's edge.

    A cell whose best run is at the largest (smallest) LR sampled at its batch says "the optimal LR is at or
    above (below) this LR"; likewise for the batch at the best run's LR. A cell that ran one value of an axis,
    or one value of it at its best run's other coordinate, gives no observation on it. A +inf loss is a run that
    diverged: not an optimum, but a sampled value that brackets the best run (its LR was too high); NaN is no run
    (failed, stopped).
    """
    N, D, lr, bt, loss = (np.asarray(v, dtype=np.float64) for v in (N, D, lr, bt, loss))
    out_lr, out_bt = [], []
    for n, d in sorted({(float(a), float(b)) for a, b in zip(N, D)}):
        ran = (N == n) & (D == d) & (np.isfinite(loss) | (loss == np.inf))
        m = ran & np.isfinite(loss)
        if not m.any():
            continue
        c_lr, c_bt, s_lr, s_bt = _band_centroids(lr[ran], bt[ran], loss[ran], band)
        best = int(np.argmin(loss[m]))
        # An axis the cell did not sweep (one value), or did not sweep at its best run's other coordinate (a
        # searched cell that tried one LR at the best run's batch), says nothing about its optimum.
        if np.unique(lr[m]).size > 1 and s_lr is not None:
            out_lr.append(CellObservation(n, d, float(np.log(lr[m][best])) if s_lr else c_lr, s_lr))
        if np.unique(bt[m]).size > 1 and s_bt is not None:
            out_bt.append(CellObservation(n, d, float(np.log(bt[m][best])) if s_bt else c_bt, s_bt))
    return out_lr, out_bt


def fit_pooled(
    N: np.ndarray, D: np.ndarray, lr: np.ndarray, bt: np.ndarray, loss: np.ndarray, *,
    band: float = NEAR_OPTIMAL_BAND, n_boot: int = 1000, seed: int = 0,
) -> StepLawFit:
    """The Step Law authors' fit: least squares over every near-optimal run, bootstrap mean of the coefficients.

    Args:
        N, D, lr, bt, loss: One entry per run; NaN/inf loss marks a run that did not finish.
        band: Relative gap to the cell's best loss that counts as near-optimal (0.25%).
        n_boot: Bootstrap resamples of the pooled rows (0: the plain least-squares fit).
        seed: Seeds the bootstrap.

    Returns:
        The law (mean coefficients), with 95% percentile intervals of the bootstrap.

    Raises:
        ValueError: fewer than two cells, or the pooled runs do not vary in N or D.
    """
    N, D, lr, bt, loss = (np.asarray(v, dtype=np.float64) for v in (N, D, lr, bt, loss))
    ok = np.isfinite(loss)
    N, D, lr, bt, loss = N[ok], D[ok], lr[ok], bt[ok], loss[ok]
    keys = np.unique(np.column_stack([N, D]), axis=0)
    if len(keys) < 2:
        raise ValueError(f"fit_pooled: need finished runs at >= 2 (N, D) cells, got {len(keys)}.")
    best = np.full(N.shape, np.inf)
    for n, d in keys:
        m = (N == n) & (D == d)
        best[m] = loss[m].min()
    sel = loss <= best * (1 + band)
    lN, lD, ly, lb = np.log(N[sel]), np.log(D[sel]), np.log(lr[sel]), np.log(bt[sel])
    X = np.column_stack([np.ones_like(lN), lN, lD])
    Xb = np.column_stack([np.ones_like(lD), lD])
    if np.linalg.matrix_rank(X) < 3 or np.linalg.matrix_rank(Xb) < 2:
        raise ValueError(
            "fit_pooled: the near-optimal runs must vary in both N and D independently to fit "
            "a N^alpha D^beta by least squares; use estimator 'posterior', which takes the prior where they do not."
        )

    def fit(i: np.ndarray) -> np.ndarray:
        c = np.linalg.lstsq(X[i], ly[i], rcond=None)[0]
        cb = np.linalg.lstsq(Xb[i], lb[i], rcond=None)[0]
        return np.concatenate([c, cb])

    rows = np.arange(lN.size)
    coefs = np.array([fit(rows)])
    if n_boot:
        rng = np.random.default_rng(seed)
        coefs = np.array([fit(rng.integers(0, rows.size, size=rows.size)) for _ in range(n_boot)])
    mean = coefs.mean(axis=0)
    law = StepLaw(a=float(np.exp(mean[0])), alpha=float(mean[1]), beta=float(mean[2]),
                  b=float(np.exp(mean[3])), gamma=float(mean[4]))
    intervals: dict[str, tuple[float, float]] = {}
    if n_boot:
        lo, hi = np.percentile(coefs, [2.5, 97.5], axis=0)
        for i, k in enumerate(("a", "alpha", "beta", "b", "gamma")):
            tr = np.exp if k in ("a", "b") else float
            intervals[k] = (float(tr(lo[i])), float(tr(hi[i])))
    draws = coefs.copy() if n_boot else None
    ln2 = np.log(2.0)
    res_lr = ly - X @ mean[:3]
    res_b = lb - Xb @ mean[3:]
    return StepLawFit(law=law, intervals=intervals, n_scales=len(keys),
                      lr_rms_log2=float(np.sqrt(np.mean(res_lr**2)) / ln2),
                      batch_rms_log2=float(np.sqrt(np.mean(res_b**2)) / ln2), estimator="pooled",
                      draws=draws)


class _Setting(NamedTuple):
    """One hyperparameter setting empirical Bayes weighed, with the law's posterior under it."""

    weight: float
    """Posterior probability of the setting (the weights of a mixture sum to 1)."""
    mean: np.ndarray
    cov: np.ndarray
    sigma: float
    """Per-cell noise (nats)."""
    cross_sd: float
    """Prior SD of the N x D interaction (0: the straight law)."""


@dataclass(frozen=True, slots=True)
class _Posterior:
    """MAP and Laplace covariance of one linear law in centred coordinates."""

    mean: np.ndarray
    cov: np.ndarray
    prior_var: np.ndarray
    tau: float
    sigma: float
    n_points: int
    n_bounds: int
    quantile: float = Z95
    """Two-sided 95% quantile: Student's t when the noise was estimated from the cells' residuals."""
    cross_sd: float = 0.0
    """Prior SD of the N x D interaction that empirical Bayes chose (0: no interaction; the last slope is 0)."""
    mixture: tuple[_Setting, ...] = ()
    """The settings empirical Bayes weighed (interaction SD, prior widening, noise): intervals and draws average
    over them, so they carry the uncertainty of the choice that :attr:`mean` plugs in. Empty: one setting
    (``mean``, ``cov``, ``sigma``, with ``quantile``)."""
    weighed_cross: bool = False
    """Whether empirical Bayes weighed the N x D interaction (enough bracketed cells to identify it)."""

    def components(self) -> tuple[_Setting, ...]:
        return self.mixture or (_Setting(1.0, self.mean, self.cov, self.sigma, self.cross_sd),)

    @property
    def p_bent(self) -> float:
        """Posterior probability of the N x D interaction (NaN where it was not weighed)."""
        return float(sum(c.weight for c in self.mixture if c.cross_sd > 0)) if self.weighed_cross else float("nan")

    def interval(self, g: np.ndarray, level: float = 0.95) -> tuple[float, float]:
        """Central ``level`` interval of the linear combination ``g @ theta``: the Laplace (or Student t) interval
        for one setting, the mixture's quantiles over several."""
        n = g.size
        if not self.mixture:
            m, sd = float(g @ self.mean[:n]), float(np.sqrt(max(g @ self.cov[:n, :n] @ g, 0.0)))
            return m - self.quantile * sd, m + self.quantile * sd
        w = np.array([c.weight for c in self.mixture])
        m = np.array([float(g @ c.mean[:n]) for c in self.mixture])
        sd = np.array([float(np.sqrt(max(g @ c.cov[:n, :n] @ g, 0.0))) for c in self.mixture])
        sd = np.maximum(sd, 1e-12)

        def q(p: float) -> float:
            lo, hi = float(np.min(m - 10 * sd)), float(np.max(m + 10 * sd))
            return float(optimize.brentq(lambda x: float(w @ stats.norm.cdf((x - m) / sd)) - p, lo, hi))

        def snap(x: float) -> float:  # onto a setting that holds the combination fixed (the straight law's kappa 0)
            held = np.abs(x - m) < 1e-9 * max(1.0, abs(x))
            return float(m[held & (sd <= 1e-12)][0]) if np.any(held & (sd <= 1e-12)) else x

        a = (1.0 - level) / 2.0
        return snap(q(a)), snap(q(1.0 - a))


def _design(obs: Sequence[CellObservation], cols: tuple[str, ...], centre: np.ndarray, cross: bool = False
            ) -> np.ndarray:
    X = [np.ones(len(obs))]
    for j, c in enumerate(cols):
        X.append(np.array([np.log(getattr(o, c)) for o in obs]) - centre[j])
    if cross:  # the interaction (ln N - n0)(ln D - d0): the D exponent moving with N
        X.append(X[1] * X[2])
    return np.column_stack(X)


def _linear_posterior(
    obs: Sequence[CellObservation], cols: tuple[str, ...], prior_mean: np.ndarray, prior_cov: np.ndarray,
    level_mean: float, centre: np.ndarray, tau: float | None, cross_grid: Sequence[float] = (0.0,),
) -> _Posterior:
    """MAP of y = level + sum_j slope_j (log x_j - centre_j) [+ kappa (log N - n0)(log D - d0)] with point cells,
    one-sided bound cells and the prior.

    ``tau`` widens the slopes' prior SD; None picks it and the per-cell noise by :func:`_empirical_bayes`. With
    ``tau`` given, the noise is the cells' scatter about a free fit (at least :data:`NOISE_FLOOR`), or
    :data:`NOISE_DEFAULT` without residual degrees of freedom. ``cross_grid``: prior SDs of the interaction kappa
    (prior mean 0) that empirical Bayes chooses from with ``tau`` and the noise; (0,) leaves it out (kappa = 0).
    """
    pts = [o for o in obs if o.side == 0]
    bnd = [o for o in obs if o.side != 0]
    # The interaction is weighed only where the bracketed cells identify it on their own, with residual degrees of
    # freedom to spare (two N at two D at least, and four cells more): from fewer the prior would be all it says.
    cross = (len(cols) == 2 and any(v > 0 for v in cross_grid) and len(pts) >= CROSS_MIN_CELLS
             and np.linalg.matrix_rank(_design(pts, cols, centre, True)) == len(cols) + 2)
    Xp, yp = _design(pts, cols, centre, cross), np.array([o.value for o in pts])
    Xb, yb, sb = _design(bnd, cols, centre, cross), np.array([o.value for o in bnd]), np.array([o.side for o in bnd])
    m0 = np.concatenate([[level_mean], prior_mean, [0.0] if cross else []])
    k = len(cols)
    K = Xp.shape[1]
    unanimous = not pts and len({o.side for o in bnd}) == 1

    def V(t: float, s: float = 0.0) -> np.ndarray:
        v = np.zeros((K, K))
        v[0, 0] = LEVEL_SD**2
        v[1:k + 1, 1:k + 1] = t**2 * prior_cov
        if cross:
            v[K - 1, K - 1] = s**2
        return v

    sigma, quantile = NOISE_DEFAULT, Z95
    if len(pts) > k + 1:  # residual degrees of freedom: the cells' own scatter about a free fit
        r = yp - Xp[:, :k + 1] @ np.linalg.lstsq(Xp[:, :k + 1], yp, rcond=None)[0]
        sigma = max(NOISE_FLOOR, float(np.sqrt(r @ r / (len(pts) - k - 1))))
        quantile = float(stats.t.ppf(0.975, len(pts) - k - 1))

    def solve(v: np.ndarray, sg: float) -> np.ndarray:
        # A coefficient with zero prior variance (the interaction left out) is held at its prior mean.
        on = np.diag(v) > 0
        P0 = np.linalg.inv(v[np.ix_(on, on)])
        A, B = Xp[:, on], Xb[:, on]
        y, e = yp - Xp[:, ~on] @ m0[~on], yb - Xb[:, ~on] @ m0[~on]
        mo = m0[on]
        # A bound's violation costs what a point's error does; a bound that every cell agrees on (all bounds,
        # one side) is held hard: nothing in the data says otherwise, and the prior must not overrule it.
        w_b = (100.0 if unanimous else 1.0) / sg**2

        def obj(th: np.ndarray) -> tuple[float, np.ndarray]:
            r = A @ th - y
            d = th - mo
            viol = np.minimum(sb * (B @ th - e), 0.0)  # < 0 where a bound is violated
            f = 0.5 * (r @ r) / sg**2 + 0.5 * d @ P0 @ d + 0.5 * w_b * (viol @ viol)
            g = A.T @ r / sg**2 + P0 @ d + w_b * B.T @ (viol * sb)
            return float(f), g

        # Without a violated bound the objective is quadratic: its minimum solves the normal equations.
        th = np.linalg.solve(A.T @ A / sg**2 + P0, A.T @ y / sg**2 + P0 @ mo)
        if B.shape[0] and not np.all(sb * (B @ th - e) >= 0):
            th = optimize.minimize(obj, th, jac=True, method="L-BFGS-B").x
        full = m0.copy()
        full[on] = th
        return full

    def laplace(v: np.ndarray, sg: float) -> np.ndarray:
        on = np.diag(v) > 0
        c = np.zeros((K, K))
        c[np.ix_(on, on)] = np.linalg.inv(Xp[:, on].T @ Xp[:, on] / sg**2 + np.linalg.inv(v[np.ix_(on, on)]))
        return c

    grid = tuple(cross_grid) if cross else (0.0,)
    weighed: list[tuple[float, float, float, float]] = []
    if tau is not None:
        t_fit, s_fit = float(tau), 0.0
    elif len(pts) >= EB_MIN_CELLS:
        t_fit, sigma, s_fit, weighed = _empirical_bayes(Xp, yp, m0, V, grid)
    else:  # too few bracketed cells to tell a wrong prior from noise: the prior stands as given
        t_fit, s_fit = 1.0, 0.0
    v = V(t_fit, s_fit)
    th = solve(v, sigma)
    mixture = tuple(  # the settings empirical Bayes weighed, each with its own MAP and covariance
        _Setting(w, solve(V(t, s), sg), laplace(V(t, s), sg), sg, s) for w, t, sg, s in weighed)
    return _Posterior(mean=th, cov=laplace(v, sigma), prior_var=np.diag(v), tau=t_fit, sigma=sigma,
                      n_points=len(pts), n_bounds=len(bnd), quantile=quantile, cross_sd=s_fit,
                      mixture=mixture, weighed_cross=cross and bool(weighed))


#: Widening factors of the prior's SD that empirical Bayes chooses from (1: the prior as given).
TAU_GRID = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 1000.0)
#: Bracketed cells below which empirical Bayes is not asked: two cells leave one contrast, which a wider prior and
#: a noisier cell explain equally well (on the divergence grid's two widths it widened the prior x16 on 0.1 octave).
EB_MIN_CELLS = 3
#: Per-cell noise (nats of a log optimum) that empirical Bayes chooses from: a tenth of a nat to one nat.
SIGMA_GRID = tuple(float(v) for v in np.exp(np.linspace(np.log(NOISE_FLOOR), 0.0, 15)))
#: Prior SDs of the N x D interaction kappa that empirical Bayes chooses from (0: the published, unbent form).
CROSS_SD_GRID = (0.0, 0.05, 0.1, 0.2, 0.4)
#: Bracketed cells below which the interaction is not weighed: its four coefficients and as many residual degrees of
#: freedom. With two to spare (6 cells, the rule until 2026-12-06) the per-cell noise comes from two residuals and
#: the interaction absorbs noise: alpha's 95% interval covered a truth far from the prior 87% of the time on the
#: censored synthetic bench (92% with 8).
CROSS_MIN_CELLS = 8


def _empirical_bayes(X: np.ndarray, y: np.ndarray, m0: np.ndarray, V, cross_grid: Sequence[float] = (0.0,)
                     ) -> tuple[float, float, float, list[tuple[float, float, float, float]]]:
    """The prior widening ``tau``, per-cell noise ``sigma`` and interaction SD that make the bracketed cells most
    probable, and the posterior weights of every setting tried.

    Under y = X theta + noise, theta ~ N(m0, V(tau, s)), noise ~ N(0, sigma^2 I), the cells' optima are jointly
    Gaussian, y ~ N(X m0, sigma^2 I + X V X^T). Per interaction SD ``s`` in ``cross_grid`` (its first entry 0:
    no interaction) the pair on :data:`TAU_GRID` x :data:`SIGMA_GRID` with the largest marginal likelihood wins
    (ties go to the narrower prior, then the smaller noise); the interaction enters only where the bent models'
    mean likelihood beats the straight one's (a Bayes factor above 1). A prior the cells agree with stays as given;
    cells that contradict it beyond their scatter widen it; scattered cells that do not contradict it are explained
    as noise rather than as new exponents; the D exponent moves with N only where that explains the cells better
    than scatter does.

    The weights (the last item: (weight, tau, sigma, s), largest first, those above :data:`MIXTURE_MIN_WEIGHT` of
    the largest, at most :data:`MIXTURE_MAX`) are the settings' posterior probabilities under a hyperprior that
    gives the straight and the bent law half each (the bent half split evenly over the interaction's widths) and
    is uniform over the tau x sigma grid: the same Bayes factor that gates the interaction. Intervals average over
    them instead of plugging the chosen setting in.
    """
    r = y - X @ m0
    per_s = []
    table: list[tuple[float, float, float, float]] = []
    for s in cross_grid:
        best = (-np.inf, 1.0, NOISE_DEFAULT, s)
        for t in TAU_GRID:
            XVX = X @ V(t, s) @ X.T
            for sg in SIGMA_GRID:
                S = sg**2 * np.eye(len(y)) + XVX
                ll = -0.5 * (r @ np.linalg.solve(S, r) + np.linalg.slogdet(S)[1])
                table.append((ll, t, sg, s))
                if ll > best[0] + 1e-9:
                    best = (ll, t, sg, s)
        per_s.append(best)
    pick = per_s[0]
    if len(per_s) > 1:
        # The interaction enters when the bent models, averaged with equal weight (not the best of them: that would
        # pay no price for trying several widths), explain the cells better than the straight one: a Bayes factor
        # above 1. Then the most probable width is used.
        lls = np.array([b[0] for b in per_s[1:]])
        log_bf = float(np.log(np.mean(np.exp(lls - lls.max()))) + lls.max() - per_s[0][0])
        if log_bf > 0:
            pick = max(per_s[1:], key=lambda b: b[0])
    n_bent = len(cross_grid) - 1
    log_w = np.array([ll + (np.log(0.5 / n_bent) if (s > 0) else (np.log(0.5) if n_bent else 0.0))
                      for ll, _, _, s in table])
    w = np.exp(log_w - log_w.max())
    order = [i for i in np.argsort(-w, kind="stable") if w[i] >= MIXTURE_MIN_WEIGHT][:MIXTURE_MAX]
    total = float(w[order].sum())
    weighed = [(float(w[i]) / total, table[i][1], table[i][2], table[i][3]) for i in order]
    return pick[1], pick[2], pick[3], weighed


#: Settings of empirical Bayes whose posterior weight falls below this share of the most probable one's are left
#: out of the intervals' average (their mass is negligible), and at most :data:`MIXTURE_MAX` are kept.
MIXTURE_MIN_WEIGHT = 1e-3
MIXTURE_MAX = 60


def fit_posterior(
    lr_obs: Sequence[CellObservation], bt_obs: Sequence[CellObservation], *,
    prior: LawPrior = PUBLISHED_PRIOR, tau: float | None = None, interaction: bool = True,
) -> StepLawFit:
    """The Step Law as the posterior of the cells' observations under ``prior`` (see module docstring).

    Args:
        lr_obs: Per-cell log LR optima or bounds (:func:`cell_observations`).
        bt_obs: Per-cell log batch optima or bounds (empty, e.g. no cell swept the batch: the prior's batch law).
        prior: Gaussian prior on the exponents.
        tau: Widening of the prior's SD; None chooses it (>= 1), with the per-cell noise, by empirical Bayes.

    Returns:
        The MAP law with 95% Laplace intervals, ``data_share`` per coefficient and the prior widening ``tau``.

    Raises:
        ValueError: no cell with an LR observation.
    """
    if not lr_obs:
        raise ValueError(
            "fit_posterior: no cell swept the LR with a finished run; run at least two LRs per scale."
        )
    law = prior.law
    bt_obs = list(bt_obs)
    centre_lr = np.array([np.mean([np.log(o.N) for o in lr_obs]), np.mean([np.log(o.D) for o in lr_obs])])
    centre_bt = np.array([np.mean([np.log(o.D) for o in bt_obs or lr_obs])])
    lv_lr = float(np.log(law.lr(*np.exp(centre_lr))))
    lv_bt = float(np.log(law.batch_tokens(np.exp(centre_bt[0]))))
    p_lr = _linear_posterior(lr_obs, ("N", "D"), np.array([law.alpha, law.beta]), np.asarray(prior.lr_cov),
                             lv_lr, centre_lr, tau, CROSS_SD_GRID if interaction else (0.0,))
    if bt_obs:
        p_bt = _linear_posterior(bt_obs, ("D",), np.array([law.gamma]), np.array([[prior.gamma_var]]),
                                 lv_bt, centre_bt, tau)
    else:  # no cell swept the batch: the batch law is the prior's, and says so (data share 0)
        v = np.diag([LEVEL_SD**2, prior.gamma_var])
        p_bt = _Posterior(mean=np.array([lv_bt, law.gamma]), cov=v, prior_var=np.diag(v), tau=1.0,
                          sigma=NOISE_DEFAULT, n_points=0, n_bounds=0)
    lvl, alpha, beta = p_lr.mean[:3]
    kappa = float(p_lr.mean[3]) if p_lr.cross_sd > 0 else 0.0
    lvl_b, gamma = p_bt.mean
    a = float(np.exp(lvl - alpha * centre_lr[0] - beta * centre_lr[1]))
    b = float(np.exp(lvl_b - gamma * centre_bt[0]))
    fitted = StepLaw(a=a, alpha=float(alpha), beta=float(beta), b=b, gamma=float(gamma), kappa=kappa,
                     n0=float(centre_lr[0]) if kappa else 0.0, d0=float(centre_lr[1]) if kappa else 0.0)
    intervals: dict[str, tuple[float, float]] = {}
    share: dict[str, float] = {}
    coefs = [("alpha", p_lr, 1), ("beta", p_lr, 2), ("gamma", p_bt, 1)] + ([("kappa", p_lr, 3)] if kappa else [])
    for name, post, i in coefs:
        intervals[name] = post.interval(np.eye(i + 1)[i])
        share[name] = float(np.clip(1.0 - post.cov[i, i] / post.prior_var[i], 0.0, 1.0))
    # Prefactors: the level's interval at the centroid moved to the origin of logs along the exponents.
    for name, post, cen in (("a", p_lr, centre_lr), ("b", p_bt, centre_bt)):
        lo, hi = post.interval(np.concatenate([[1.0], -cen]))
        with np.errstate(over="ignore"):  # a flat prior's level interval may exceed floats: it is then (0, inf)
            intervals[name] = (float(np.exp(lo)), float(np.exp(hi)))
        share[name] = float(np.clip(1.0 - post.cov[0, 0] / post.prior_var[0], 0.0, 1.0))
    ln2 = np.log(2.0)
    draws, noise_draws = _posterior_draws(p_lr, centre_lr, p_bt, centre_bt, (fitted.n0, fitted.d0))
    if not p_bt.n_points:  # the batch law is the prior's: no noise was estimated for it
        noise_draws[:, 1] = np.nan

    def rms(obs: Sequence[CellObservation], pred) -> float:
        r = [o.value - np.log(pred(o)) for o in obs if o.side == 0]
        return float(np.sqrt(np.mean(np.square(r))) / ln2) if r else float("nan")

    return StepLawFit(
        law=fitted, intervals=intervals, fixed=(),
        n_scales=len({(o.N, o.D) for o in [*lr_obs, *bt_obs]}),
        lr_rms_log2=rms(lr_obs, lambda o: fitted.lr(o.N, o.D)),
        batch_rms_log2=rms(bt_obs, lambda o: fitted.batch_tokens(o.D)),
        estimator="posterior", data_share=share, prior_scale=max(p_lr.tau, p_bt.tau),
        n_bounds=p_lr.n_bounds + p_bt.n_bounds, prior_source=prior.source, draws=draws,
        noise_log=(float(p_lr.sigma), float(p_bt.sigma) if p_bt.n_points else float("nan")),
        p_bent=p_lr.p_bent, noise_draws=noise_draws,
    )


def _posterior_draws(p_lr: _Posterior, c_lr: np.ndarray, p_bt: _Posterior, c_bt: np.ndarray,
                     about: tuple[float, float], n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Coefficient rows (log a, alpha, beta, log b, gamma, kappa) drawn from the Laplace posterior, mixed over the
    settings empirical Bayes weighed, with kappa about ``about`` (the fitted StepLaw's (n0, d0): the origin of logs
    where the chosen law is straight though some weighed settings bend it); and each row's per-cell noise (nats of
    the log LR optimum, of the log batch optimum)."""
    rng = np.random.default_rng(seed)
    k = 4 if any(c.cross_sd > 0 for c in p_lr.components()) else 3

    def mix(post: _Posterior, m: int) -> tuple[np.ndarray, np.ndarray]:
        comps = post.components()
        counts = rng.multinomial(n, [c.weight for c in comps])
        rows, noise = [], []
        for (_, mean, cov, sg, _), c in zip(comps, counts, strict=True):
            if c:
                mu = np.zeros(m)
                mu[: min(m, mean.size)] = mean[:m]
                cv = np.zeros((m, m))
                j = min(m, cov.shape[0])
                cv[:j, :j] = cov[:j, :j]
                rows.append(rng.multivariate_normal(mu, cv, size=c))
                noise.append(np.full(c, sg))
        return np.concatenate(rows), np.concatenate(noise)

    lr, s_lr = mix(p_lr, k)
    bt, s_bt = mix(p_bt, 2)
    kappa = lr[:, 3] if k == 4 else np.zeros(n)
    # kappa (lnN - c0)(lnD - c1) = kappa (lnN - z0)(lnD - z1) + kappa (z1 - c1)(lnN - z0) + kappa (z0 - c0)(lnD - z1)
    #                              + kappa (z0 - c0)(z1 - c1): the same law with the interaction about z = about.
    u0, u1 = about[0] - c_lr[0], about[1] - c_lr[1]
    log_a = (lr[:, 0] - lr[:, 1] * c_lr[0] - lr[:, 2] * c_lr[1]
             + kappa * (u0 * u1 - u1 * about[0] - u0 * about[1]))
    alpha, beta = lr[:, 1] + kappa * u1, lr[:, 2] + kappa * u0
    log_b = bt[:, 0] - bt[:, 1] * c_bt[0]
    return np.column_stack([log_a, alpha, beta, log_b, bt[:, 1], kappa]), np.column_stack([s_lr, s_bt])
