"""Logistic mixed model with a municipal random intercept, fitted by adaptive quadrature.

The model (docs/METHOD.md §9) for survey child i of municipality m is

    y_i | u_m ~ Bernoulli(expit(x_i beta + u_m)),    u_m ~ N(0, sigma_u^2).

**Survey weights** enter as a pseudo-likelihood. Level-1 weights are scaled within each
municipality by the "size" method of Pfeffermann et al. (1998) and Rabe-Hesketh & Skrondal
(2006, method 2 in Stata's ``melogit ... pweight(), pwscale(size)``): ``w*_i = w_i n_m /
sum_{i in m} w_i``, so the scaled weights of a municipality add up to its number of survey
children n_m. Municipalities themselves are given weight 1 (the survey does not select them
with known probabilities; its PSUs are nested in them). Unweighted data (all weights equal) give
the ordinary maximum likelihood of ``lme4::glmer``.

**Marginal log-likelihood** ``sum_m log integral exp(sum_i w*_i l_i(beta, u)) phi(u; 0,
sigma_u^2) du`` by adaptive Gauss–Hermite quadrature (Pinheiro & Bates 1995): for every
municipality at once, the mode of the integrand and its curvature are found by vectorised
Newton steps (``numpy.add.reduceat`` over records sorted by municipality; no Python loop over
municipalities), and the K standard Gauss–Hermite nodes are centred and scaled to them.

**Optimisation** over ``(beta, log sigma_u)`` by damped Newton-Raphson with step halving,
using the analytic gradient and Hessian (the quadrature of the exact derivatives, Louis'
identity: posterior-weighted record scores for beta, ``E[u^2/sigma^2 - 1 | y]`` for
``log sigma_u``); it converges in a handful of iterations from the single-level logit. The
covariance of ``(beta, log sigma_u)`` is the inverse of minus that Hessian for unweighted data
and a sandwich with municipalities as clusters for weighted data (pseudo-likelihood).

``MixedLogit`` follows scikit-learn's estimator rules and serialises to plain JSON.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logsumexp

from ..errors import ModelError
from .logit import Z95, SurveyLogit

#: Lower bound of sigma_u (a boundary fit means "no detectable area effect").
SIGMA_MIN = 1e-4
_LOG2PI = np.log(2.0 * np.pi)


def gauss_hermite(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Physicists' Gauss–Hermite nodes ``z`` and log-weights ``log w + z^2``.

    ``integral f(u) du ~= sqrt(2) s sum_k w_k exp(z_k^2) f(m + sqrt(2) s z_k)`` for any centre
    ``m`` and scale ``s`` (exact when ``f`` is a Gaussian times a polynomial of degree
    < 2K).
    """
    z, w = np.polynomial.hermite.hermgauss(int(n_nodes))
    return z, np.log(w) + z * z


class _Data:
    """Survey records sorted by municipality, with scaled weights (built once per fit)."""

    def __init__(self, Xd, y, w, g, n_groups):
        order = np.argsort(g, kind="stable")
        self.Xd, self.y, self.g = Xd[order], y[order], g[order]
        w = w[order]
        n_m = np.bincount(self.g, minlength=n_groups).astype(np.float64)
        sum_w = np.bincount(self.g, weights=w, minlength=n_groups)
        self.w = w * (n_m / sum_w)[self.g]  # "size" scaling: sum of scaled weights = n_m
        self.starts = np.flatnonzero(np.r_[True, self.g[1:] != self.g[:-1]])
        self.G = n_groups
        self.n_m = n_m
        self.u = np.zeros(n_groups)  # warm start of the modes between evaluations

    def gsum(self, values: np.ndarray) -> np.ndarray:
        """Sum of record values (n,) or (n, K) per municipality."""
        return np.add.reduceat(values, self.starts, axis=0)


def _modes(d: _Data, eta: np.ndarray, sigma: float, tol=1e-10, max_iter=100):
    """Modes and curvatures of every municipality's integrand (vectorised Newton)."""
    u = d.u.copy()
    inv_s2 = 1.0 / (sigma * sigma)
    for _ in range(max_iter):
        p = expit(eta + u[d.g])
        grad = d.gsum(d.w * (d.y - p)) - u * inv_s2
        hess = d.gsum(d.w * p * (1.0 - p)) + inv_s2
        step = np.clip(grad / hess, -5.0, 5.0)
        u += step
        if np.max(np.abs(step)) < tol:
            break
    p = expit(eta + u[d.g])
    hess = d.gsum(d.w * p * (1.0 - p)) + inv_s2
    d.u = u
    return u, 1.0 / np.sqrt(hess)


def _node_terms(d: _Data, eta, sigma, z, logw):
    """Adaptive nodes (G, K), their log integrand and normalised posterior weights."""
    mode, scale = _modes(d, eta, sigma)
    U = mode[:, None] + np.sqrt(2.0) * scale[:, None] * z[None, :]
    E = eta[:, None] + U[d.g]
    f = d.gsum(d.w[:, None] * (d.y[:, None] * E - np.logaddexp(0.0, E)))
    f += -0.5 * U * U / (sigma * sigma) - np.log(sigma) - 0.5 * _LOG2PI
    a = f + logw[None, :]
    log_m = logsumexp(a, axis=1) + np.log(np.sqrt(2.0) * scale)
    post = np.exp(a - logsumexp(a, axis=1, keepdims=True))
    return U, E, post, log_m


def marginal_loglik(theta, d: _Data, z, logw, order: int = 1):
    """AGHQ marginal log-likelihood with its gradient, and optionally Hessian and scores.

    Derivatives are the quadrature (on the same adaptive nodes) of the exact derivatives of
    the integral, differentiated under the integral sign: with ``D_mk`` the derivative of node
    k's log integrand and ``pi_mk`` the normalised node weights, the gradient is
    ``sum_m sum_k pi_mk D_mk`` and the Hessian ``sum_m [sum_k pi_mk (dD_mk + D_mk D_mk^T)
    - Dbar_m Dbar_m^T]`` (Louis' identity).

    Parameters
    ----------
    theta : ndarray (p + 1,)
        ``(beta, log sigma_u)``.
    d : _Data
    z, logw : ndarray (K,)
        :func:`gauss_hermite` nodes.
    order : {1, 2}
        2 also returns the Hessian (p + 1, p + 1) and the (G, p + 1) municipal scores.
    """
    beta, sigma = theta[:-1], float(np.exp(theta[-1]))
    eta = d.Xd @ beta
    U, E, post, log_m = _node_terms(d, eta, sigma, z, logw)
    P = expit(E)
    pbar = np.einsum("ik,ik->i", post[d.g], P)
    r = d.w * (d.y - pbar)
    T = U * U / (sigma * sigma) - 1.0
    s_sig = np.sum(post * T, axis=1)
    grad = np.r_[d.Xd.T @ r, s_sig.sum()]
    if order < 2:
        return float(log_m.sum()), grad
    q = np.einsum("ik,ik->i", post[d.g], P * (1.0 - P))
    p1 = d.Xd.shape[1] + 1
    H = np.zeros((p1, p1))
    H[:-1, :-1] = -(d.Xd.T @ ((d.w * q)[:, None] * d.Xd))
    H[-1, -1] = -2.0 * np.sum(post * (T + 1.0))
    R = d.w[:, None] * (d.y[:, None] - P)
    for k in range(len(z)):
        D = np.column_stack([d.gsum(R[:, k, None] * d.Xd), T[:, k]])
        H += D.T @ (post[:, k, None] * D)
    S = np.column_stack([d.gsum(r[:, None] * d.Xd), s_sig])
    H -= S.T @ S
    return float(log_m.sum()), grad, (H + H.T) / 2.0, S


class MixedLogit:
    """Logistic regression with a random intercept per group, by adaptive Gauss–Hermite ML.

    Parameters
    ----------
    n_nodes : int, default 15
        Quadrature nodes per municipality (``nAGQ`` in lme4).
    max_iter : int, default 100
        Newton iterations.
    tol : float, default 1e-9
        Convergence when no parameter moves more than this.

    Attributes
    ----------
    coef_ : ndarray (k + 1,)
        Fixed effects, intercept first.
    sigma_u_ : float
        Standard deviation of the random intercept (logit scale).
    cov_ : ndarray (k + 2, k + 2)
        Covariance of ``(coef_, log sigma_u_)``.
    cov_type_ : str
        ``"model"`` (inverse observed information) or ``"sandwich"`` (weighted data;
        municipalities as clusters).
    names_ : list of str
    groups_ : ndarray of str
        Group labels, sorted.
    n_obs_, n_groups_, loglik_, n_iter_, converged_, weighted_
    """

    def __init__(self, n_nodes=15, max_iter=100, tol=1e-9):
        self.n_nodes = n_nodes
        self.max_iter = max_iter
        self.tol = tol

    # ------------------------------------------------------------------ fitting
    def _check_params(self):
        if not (isinstance(self.n_nodes, (int, np.integer)) and 1 <= self.n_nodes <= 100):
            raise ModelError(f"n_nodes must be an integer in 1..100, got {self.n_nodes!r}")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ModelError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not (np.isfinite(self.tol) and self.tol > 0):
            raise ModelError(f"tol must be positive, got {self.tol!r}")

    def fit(self, X, y, groups, sample_weight=None, start=None, covariance=True):
        """Fit by maximum (pseudo-)likelihood.

        Parameters
        ----------
        X : array-like or DataFrame (n, k)
            Covariates without the intercept.
        y : array-like (n,)
            Outcome 0/1.
        groups : array-like (n,)
            Municipality label of each record.
        sample_weight : array-like (n,), optional
            Survey weights (> 0), scaled within municipality (module docstring).
        start : array-like (k + 2,), optional
            Starting ``(beta, log sigma_u)``; default the single-level logit and 0.5.
        covariance : bool, default True
            Compute ``cov_``; ``False`` (bootstrap refits) leaves it NaN.

        Returns
        -------
        self
        """
        self._check_params()
        arr, feat, _ = SurveyLogit._features(X)
        n, k = arr.shape
        if not np.isfinite(arr).all():
            raise ModelError("missing or infinite covariate values")
        yf = np.asarray(y, dtype=np.float64).reshape(-1)
        if yf.shape[0] != n or not np.isin(yf, (0.0, 1.0)).all():
            raise ModelError("outcome must be 0/1 with one value per record")
        if yf.min() == yf.max():
            raise ModelError(f"outcome is all {int(yf[0])}: nothing to model")
        weighted = sample_weight is not None
        w = (np.ones(n) if sample_weight is None
             else np.asarray(sample_weight, dtype=np.float64).reshape(-1))
        if w.shape[0] != n or not (np.isfinite(w) & (w > 0)).all():
            raise ModelError("weights must be finite and > 0, one per record")
        labels = pd.Series(np.asarray(groups).reshape(-1)).astype(str)
        if len(labels) != n:
            raise ModelError("groups must have one label per record")
        g, uniques = pd.factorize(labels, sort=True)
        Xd = np.hstack([np.ones((n, 1)), arr])
        SurveyLogit._check_rank(Xd, w, ["intercept", *feat])
        d = _Data(Xd, yf, w, g.astype(np.int64), len(uniques))
        z, logw = gauss_hermite(self.n_nodes)
        if start is None:
            single = SurveyLogit().fit(arr, yf, w, design=False)
            start = np.r_[single.coef_, np.log(0.5)]
        theta, n_iter, converged, ll, H, S = self._optimise(np.asarray(start, float), d, z,
                                                             logw)
        self.cov_type_ = "none"
        cov = np.full((len(theta),) * 2, np.nan)
        if covariance:
            try:
                Hinv = np.linalg.inv(-H)
            except np.linalg.LinAlgError:
                Hinv = np.linalg.pinv(-H)
            if weighted:
                G = d.G
                cov = Hinv @ (S.T @ S * (G / max(G - 1, 1))) @ Hinv
                self.cov_type_ = "sandwich"
            else:
                cov = Hinv
                self.cov_type_ = "model"
        self.coef_ = theta[:-1].copy()
        self.sigma_u_ = float(np.exp(theta[-1]))
        self.cov_ = (cov + cov.T) / 2.0
        self.se_ = np.sqrt(np.clip(np.diag(self.cov_), 0.0, None))
        self.names_ = ["intercept", *feat]
        self.groups_ = np.asarray(uniques, dtype=object).astype(str)
        self.n_obs_, self.n_groups_, self.n_features_in_ = n, int(d.G), k
        self.loglik_ = ll
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(converged)
        self.weighted_ = bool(weighted)
        self.at_boundary_ = bool(self.sigma_u_ <= SIGMA_MIN * 1.01)
        return self

    def _optimise(self, theta, d, z, logw):
        """Damped Newton-Raphson on the analytic Hessian, with step halving."""
        lo = np.log(SIGMA_MIN)
        theta = theta.copy()
        theta[-1] = max(theta[-1], lo)
        ll, grad, H, S = marginal_loglik(theta, d, z, logw, order=2)
        converged, it = False, 0
        for it in range(1, self.max_iter + 1):  # noqa: B007 - returned after the loop
            step = _newton_step(H, grad)
            t = 1.0
            for _ in range(40):
                new = theta + t * step
                new[-1] = max(new[-1], lo)
                new_ll, new_grad, new_H, new_S = marginal_loglik(new, d, z, logw, order=2)
                if new_ll >= ll - 1e-10 * abs(ll):
                    break
                t /= 2.0
            else:
                break
            moved = np.max(np.abs(new - theta))
            theta, ll, grad, H, S = new, new_ll, new_grad, new_H, new_S
            if moved < self.tol or (theta[-1] <= lo + 1e-9 and
                                    np.max(np.abs(grad[:-1])) < 1e-6 * len(d.y)):
                converged = True
                break
        if not converged:
            converged = bool(np.max(np.abs(grad)) < 1e-6 * len(d.y))
        return theta, it, converged, ll, H, S

    # ------------------------------------------------------------------ reporting
    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this MixedLogit is not fitted yet; call fit first")

    def sigma_interval(self, z=Z95) -> tuple[float, float]:
        """Wald interval of sigma_u on the log scale (from ``cov_``)."""
        self._check_fitted()
        se = float(self.se_[-1])
        return (float(self.sigma_u_ * np.exp(-z * se)), float(self.sigma_u_ * np.exp(z * se)))

    def coef_table(self) -> pd.DataFrame:
        """Fixed effects with their standard errors and 95 % Wald intervals."""
        self._check_fitted()
        se = self.se_[:-1]
        return pd.DataFrame({"name": self.names_, "estimate": self.coef_, "se": se,
                             "ci_low": self.coef_ - Z95 * se, "ci_high": self.coef_ + Z95 * se})

    _SCALARS = ("sigma_u_", "n_obs_", "n_groups_", "n_features_in_", "loglik_", "n_iter_",
                "converged_", "weighted_", "at_boundary_", "cov_type_")

    def to_dict(self) -> dict:
        """JSON-able dict of parameters and learned state (round-trips exactly)."""
        self._check_fitted()
        d = {"class": "MixedLogit",
             "params": {"n_nodes": int(self.n_nodes), "max_iter": int(self.max_iter),
                        "tol": float(self.tol)},
             "names": list(self.names_), "groups": [str(v) for v in self.groups_],
             "coef": [float(v) for v in self.coef_],
             "cov": [[float(v) for v in row] for row in self.cov_]}
        for attr in self._SCALARS:
            val = getattr(self, attr)
            d[attr.rstrip("_")] = (val if isinstance(val, (str, bool)) else
                                   int(val) if isinstance(val, (int, np.integer)) else float(val))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MixedLogit:
        """Rebuild a fitted model from :meth:`to_dict` output (no code is executed)."""
        if not isinstance(d, dict) or d.get("class") != "MixedLogit":
            raise ModelError("not a MixedLogit model dict")
        try:
            model = cls(**d["params"])
            model.names_ = [str(v) for v in d["names"]]
            model.groups_ = np.asarray([str(v) for v in d["groups"]], dtype=object).astype(str)
            model.coef_ = np.asarray(d["coef"], dtype=np.float64)
            model.cov_ = np.asarray(d["cov"], dtype=np.float64)
            model.se_ = np.sqrt(np.clip(np.diag(model.cov_), 0.0, None))
            for attr in cls._SCALARS:
                setattr(model, attr, d[attr.rstrip("_")])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"invalid MixedLogit model dict: {exc}") from None
        k = len(model.names_)
        if model.coef_.shape != (k,) or model.cov_.shape != (k + 1, k + 1):
            raise ModelError("invalid MixedLogit model dict: shapes do not match names")
        return model


def _newton_step(H, grad):
    """Newton direction ``-H^-1 grad``, regularised until ``-H`` is positive definite."""
    A = -H
    lam = 0.0
    scale = float(np.max(np.abs(np.diag(A)))) or 1.0
    for _ in range(30):
        try:
            L = np.linalg.cholesky(A + lam * np.eye(len(A)))
        except np.linalg.LinAlgError:
            lam = max(2.0 * lam, 1e-8 * scale)
            continue
        return np.linalg.solve(L.T, np.linalg.solve(L, grad))
    return grad / scale


def posterior_nodes(model: MixedLogit, X, y, groups, sample_weight=None, n_nodes=None):
    """Quadrature rule of each sampled municipality's u_m given its survey children.

    The adaptive Gauss–Hermite rule at the fitted ``(beta, sigma_u)``: nodes ``U`` (G, K) and
    normalised weights ``post`` (G, K), so that ``E[g(u_m) | y_m] ~= sum_k post_mk g(U_mk)``
    (the conditional distribution uses the same scaled weights as the fit). ``n_nodes``
    (default the model's) sets K: the rule is centred and scaled at the posterior mode.

    Returns
    -------
    (ndarray of str, ndarray, ndarray, ndarray)
        Group labels (sorted), ``U``, ``post`` and the number of survey children per group.
    """
    model._check_fitted()
    arr, _, _ = SurveyLogit._features(X)
    n = arr.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    labels = pd.Series(np.asarray(groups).reshape(-1)).astype(str)
    g, uniques = pd.factorize(labels, sort=True)
    d = _Data(np.hstack([np.ones((n, 1)), arr]), np.asarray(y, np.float64), w,
              g.astype(np.int64), len(uniques))
    z, logw = gauss_hermite(model.n_nodes if n_nodes is None else n_nodes)
    U, _, post, _ = _node_terms(d, d.Xd @ model.coef_, model.sigma_u_, z, logw)
    return np.asarray(uniques).astype(str), U, post, d.n_m
