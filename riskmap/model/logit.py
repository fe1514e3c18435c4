"""Survey-weighted logistic regression with a Taylor-linearised design covariance.

``SurveyLogit`` maximises the weighted pseudo log-likelihood
``sum_i w_i [y_i log p_i + (1 - y_i) log(1 - p_i)]`` by Newton's method (IRLS) and estimates
the covariance of the coefficients as Stata's ``svy: logit`` does (docs/METHOD.md §1):
score contributions ``u_i = w_i (y_i - p_i) x_i`` are summed per PSU, centred within stratum,
scaled by ``n_h / (n_h - 1)`` and sandwiched between inverse Hessians.

It follows scikit-learn's estimator rules (parameters stored unchanged, validation in ``fit``,
learned state ending in ``_``) and serialises to plain JSON (``to_dict``/``from_dict``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from ..errors import ModelError
from .score import Z95

SINGLE_PSU = ("centre", "skip")

#: A linear predictor beyond this puts a fitted probability within ~1e-13 of 0 or 1; on real
#: survey data that only happens when the coefficients are running off to infinity.
_ETA_SEPARATION = 30.0

#: Relative eigenvalue of the unit-diagonal weighted Gram matrix below which the design is
#: treated as singular (cond(X) of ~1e6 after column scaling).
_RANK_TOL = 1e-12


def _as_vector(values, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise ModelError(f"{name} must be one-dimensional, got shape {np.shape(values)}")
    if n is not None and arr.shape[0] != n:
        raise ModelError(f"{name} has {arr.shape[0]} values but X has {n} rows")
    return arr


def _labels(values, name: str, n: int) -> np.ndarray | None:
    """Integer codes for stratum / PSU labels (None stays None)."""
    if values is None:
        return None
    arr = _as_vector(values, name, n)
    codes, _ = pd.factorize(pd.Series(arr), use_na_sentinel=True)
    if (codes < 0).any():
        row = int(np.flatnonzero(codes < 0)[0])
        raise ModelError(f"{name} has missing values", column=name, row=row)
    return codes.astype(np.int64)


def _loglik(eta: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    # y*eta - log(1 + e^eta) is the log-likelihood of one record, stable for any eta.
    return float(np.dot(w, y * eta - np.logaddexp(0.0, eta)))


def _psu_keys(s_codes, c_codes, n):
    """PSU index per record (PSUs nested in strata) and the stratum of each PSU."""
    s = np.zeros(n, np.int64) if s_codes is None else s_codes
    if c_codes is None:
        key = np.arange(n, dtype=np.int64)
    else:
        key, _ = pd.factorize(s * (int(c_codes.max()) + 1) + c_codes)
    n_psu = int(key.max()) + 1
    psu_stratum = np.zeros(n_psu, np.int64)
    psu_stratum[key] = s
    return key, n_psu, psu_stratum


def _count_psu(s_codes, c_codes, n):
    _, n_psu, psu_stratum = _psu_keys(s_codes, c_codes, n)
    n_h = np.bincount(psu_stratum)
    return n_psu, int((n_h > 0).sum()), [int(h) for h in np.flatnonzero(n_h == 1)]


def _stratum_names(singles, s_codes, strata_labels, limit=10):
    if strata_labels is None or s_codes is None:
        return "the only stratum"
    labels = np.asarray(strata_labels).reshape(-1)
    first = [labels[int(np.flatnonzero(s_codes == h)[0])] for h in singles[:limit]]
    text = ", ".join(str(v) for v in first)
    return text + (f" and {len(singles) - limit} more" if len(singles) > limit else "")


def _meat(u, s_codes, c_codes, strata_labels, single_psu):
    n, p_ = u.shape
    key, n_psu, psu_stratum = _psu_keys(s_codes, c_codes, n)
    if c_codes is None:
        totals = u  # every record is its own PSU, in row order
    else:
        totals = np.empty((n_psu, p_))
        for j in range(p_):
            totals[:, j] = np.bincount(key, weights=u[:, j], minlength=n_psu)
    n_h = np.bincount(psu_stratum)
    n_strata = int((n_h > 0).sum())
    stratum_mean = np.empty((n_h.size, p_))
    for j in range(p_):
        stratum_mean[:, j] = np.bincount(psu_stratum, weights=totals[:, j], minlength=n_h.size)
    stratum_mean /= np.maximum(n_h, 1)[:, None]
    dev = totals - stratum_mean[psu_stratum]
    nh_psu = n_h[psu_stratum]
    multi = nh_psu > 1
    factor = np.zeros(n_psu)
    factor[multi] = nh_psu[multi] / (nh_psu[multi] - 1.0)
    singles = [int(h) for h in np.flatnonzero(n_h == 1)]
    if singles:
        lone = ~multi
        if single_psu == "centre":
            # Stata singleunit(centered): deviation from the grand mean of all PSU totals,
            # with scale factor 1 (n_h/(n_h-1) is undefined for n_h = 1).
            dev[lone] = totals[lone] - totals.mean(axis=0)
            factor[lone] = 1.0
        labels = _stratum_names(singles, s_codes, strata_labels)
        how = "centred on the grand mean" if single_psu == "centre" else "contributing nothing"
        warnings.warn(f"{len(singles)} stratum/strata with a single PSU ({labels}); "
                      f"variance {how}", RuntimeWarning, stacklevel=4)
    meat = dev.T @ (factor[:, None] * dev)
    return meat, n_psu, n_strata, singles


def design_meat(u, strata=None, psu=None, single_psu="centre"):
    """Centred between-PSU sum of squares of linearised scores (Stata's svy variance).

    Parameters
    ----------
    u : array-like (n,) or (n, p)
        Linearised score of each record (already weighted).
    strata, psu : array-like (n,), optional
        Labels; PSUs are nested in strata. No strata: one stratum; no PSU: one per record.
    single_psu : {"centre", "skip"}
        Treatment of strata with one PSU (see :class:`SurveyLogit`); warns when used.

    Returns
    -------
    meat : ndarray (p, p)
        ``sum_h n_h/(n_h-1) sum_c (z_hc - zbar_h)(z_hc - zbar_h)^T``.
    n_psu, n_strata : int
    """
    if single_psu not in SINGLE_PSU:
        from ..errors import BadParameter

        raise BadParameter("single_psu", single_psu, SINGLE_PSU)
    arr = np.asarray(u, dtype=np.float64)
    arr = arr[:, None] if arr.ndim == 1 else arr
    n = arr.shape[0]
    s_codes = _labels(strata, "strata", n)
    c_codes = _labels(psu, "psu", n)
    meat, n_psu, n_strata, _ = _meat(arr, s_codes, c_codes, strata, single_psu)
    return meat, n_psu, n_strata


class SurveyLogit:
    """Weighted (pseudo-likelihood) logistic regression with design-based covariance.

    Parameters
    ----------
    max_iter : int, default 100
        Maximum Newton iterations.
    tol : float, default 1e-10
        Convergence when the largest Newton step is below ``tol * (1 + max|beta|)``.
    single_psu : {"centre", "skip"}, default "centre"
        Treatment of strata with a single PSU: ``"centre"`` centres that PSU's score total on
        the grand mean of all PSU totals (Stata ``singleunit(centered)``, scale factor 1);
        ``"skip"`` lets it contribute nothing (Stata ``singleunit(certainty)``). Either way a
        ``RuntimeWarning`` names the strata.

    Attributes
    ----------
    coef_ : ndarray (k+1,)
        Intercept first.
    cov_ : ndarray (k+1, k+1)
        Design-based covariance (model-based ``H^-1`` when fitted with ``design=False``).
    se_ : ndarray (k+1,)
    hessian_ : ndarray (k+1, k+1)
        ``sum_i w_i p_i (1 - p_i) x_i x_i^T`` at the solution.
    names_ : list of str
        ``["intercept", *feature names]``.
    n_iter_, loglik_, n_obs_, n_psu_, n_strata_, df_, cov_type_, single_psu_strata_
    """

    def __init__(self, max_iter=100, tol=1e-10, single_psu="centre"):
        self.max_iter = max_iter
        self.tol = tol
        self.single_psu = single_psu

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        if self.single_psu not in SINGLE_PSU:
            from ..errors import BadParameter

            raise BadParameter("single_psu", self.single_psu, SINGLE_PSU)
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ModelError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not (np.isfinite(self.tol) and self.tol > 0):
            raise ModelError(f"tol must be positive, got {self.tol!r}")

    @staticmethod
    def _features(X) -> tuple[np.ndarray, list[str], bool]:
        if isinstance(X, pd.DataFrame):
            names = [str(c) for c in X.columns]
            try:
                arr = X.to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ModelError(f"covariates must be numeric: {exc}") from None
            return arr, names, True
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"covariates must be numeric: {exc}") from None
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ModelError(f"X must be two-dimensional, got shape {arr.shape}")
        return arr, [f"x{j}" for j in range(arr.shape[1])], False

    @staticmethod
    def _check_rank(Xd: np.ndarray, w: np.ndarray, names: list[str]) -> None:
        gram = Xd.T @ (w[:, None] * Xd)
        diag = np.diag(gram).copy()
        zero = [names[j] for j in np.flatnonzero(diag <= 0)]
        if zero:
            raise ModelError("singular design: column(s) all zero: " + ", ".join(zero))
        scale = 1.0 / np.sqrt(diag)
        corr = gram * scale[:, None] * scale[None, :]
        vals, vecs = np.linalg.eigh(corr)
        if vals[0] > _RANK_TOL * vals[-1]:
            return
        bad = []
        for j in np.flatnonzero(vals <= _RANK_TOL * vals[-1]):
            v = vecs[:, j]
            bad.extend(names[i] for i in np.flatnonzero(np.abs(v) > 0.05 * np.abs(v).max()))
        bad = list(dict.fromkeys(bad))
        raise ModelError("singular design: collinear columns: " + ", ".join(bad)
                         + " (drop one of them; a constant column is collinear with the "
                         "intercept)")

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, sample_weight, strata=None, psu=None, design=True):
        """Fit the model.

        Parameters
        ----------
        X : array-like or DataFrame (n, k)
            Covariates without the intercept.
        y : array-like (n,)
            Outcome, 0/1.
        sample_weight : array-like (n,)
            Survey weights, finite and > 0.
        strata, psu : array-like (n,), optional
            Stratum and PSU labels; PSUs are nested within strata (the same PSU label in two
            strata is two PSUs). No strata: one stratum; no PSU: every record is its own PSU.
        design : bool, default True
            Compute the design-based covariance. ``False`` stores the model-based ``H^-1``
            instead (for fast refits, e.g. cross-validation).

        Returns
        -------
        self

        Raises
        ------
        ModelError
            Outcome not 0/1 or constant, bad weights, missing covariates, fewer rows than
            parameters, collinear columns, or (quasi-)complete separation.
        """
        self._check_params()
        arr, feat, is_df = self._features(X)
        n, k = arr.shape
        names = ["intercept", *feat]
        bad_cols = [feat[j] for j in np.flatnonzero(~np.isfinite(arr).all(axis=0))]
        if bad_cols:
            first = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
            raise ModelError("missing or infinite covariate values in: " + ", ".join(bad_cols),
                             column=bad_cols[0], row=first)
        yv = _as_vector(y, "y", n)
        try:
            yf = yv.astype(np.float64)
        except (TypeError, ValueError):
            raise ModelError("outcome must be 0/1", column="y") from None
        notbin = ~((yf == 0) | (yf == 1))
        if notbin.any():
            i = int(np.flatnonzero(notbin)[0])
            raise ModelError(f"outcome must be 0/1, found {yv[i]}", column="y", row=i)
        try:
            w = _as_vector(sample_weight, "sample_weight", n).astype(np.float64)
        except (TypeError, ValueError):
            raise ModelError("weights must be numeric", column="weight") from None
        badw = ~(np.isfinite(w) & (w > 0))
        if badw.any():
            i = int(np.flatnonzero(badw)[0])
            raise ModelError(f"weights must be finite and > 0, found {w[i]}",
                             column="weight", row=i)
        if n < k + 1:
            raise ModelError(f"{n} records cannot identify {k + 1} parameters")
        if yf.min() == yf.max():
            raise ModelError(f"outcome is all {int(yf[0])}: nothing to model")
        s_codes = _labels(strata, "strata", n)
        c_codes = _labels(psu, "psu", n)

        Xd = np.hstack([np.ones((n, 1)), arr])
        self._check_rank(Xd, w, names)
        beta, H, ll, n_iter = self._newton(Xd, yf, w, names)

        self.coef_ = beta
        self.hessian_ = H
        self.loglik_ = ll
        self.n_iter_ = n_iter
        self.names_ = names
        self.n_features_in_ = k
        if is_df:
            self.feature_names_in_ = np.asarray(feat, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.n_obs_ = n
        self.sum_weights_ = float(w.sum())
        Hinv = np.linalg.inv(H)
        if design:
            u = (w * (yf - expit(Xd @ beta)))[:, None] * Xd
            meat, n_psu, n_strata, singles = _meat(u, s_codes, c_codes, strata,
                                                   self.single_psu)
            cov = Hinv @ meat @ Hinv
            self.cov_type_ = "design"
        else:
            cov = Hinv
            n_psu, n_strata, singles = _count_psu(s_codes, c_codes, n)
            self.cov_type_ = "model"
        self.cov_ = (cov + cov.T) / 2.0
        self.se_ = np.sqrt(np.clip(np.diag(self.cov_), 0.0, None))
        self.n_psu_ = n_psu
        self.n_strata_ = n_strata
        self.df_ = n_psu - n_strata
        self.single_psu_strata_ = singles
        return self

    def _newton(self, Xd, y, w, names):
        n, p_ = Xd.shape
        ybar = float(np.dot(w, y) / w.sum())
        beta = np.zeros(p_)
        beta[0] = np.log(ybar / (1.0 - ybar))
        eta = Xd @ beta
        ll = _loglik(eta, y, w)
        sd = Xd.std(axis=0)
        sd[0] = 1.0
        for it in range(1, self.max_iter + 1):  # noqa: B007 - the count is returned
            prob = expit(eta)
            grad = Xd.T @ (w * (y - prob))
            H = Xd.T @ ((w * prob * (1.0 - prob))[:, None] * Xd)
            try:
                step = np.linalg.solve(H, grad)
            except np.linalg.LinAlgError:
                self._separation(beta, step_dir=beta, names=names, sd=sd)
            # Step halving keeps the pseudo-likelihood increasing far from the optimum.
            t = 1.0
            for _ in range(50):
                new_beta = beta + t * step
                new_eta = Xd @ new_beta
                new_ll = _loglik(new_eta, y, w)
                if new_ll >= ll - 1e-12 * abs(ll):
                    break
                t /= 2.0
            beta, eta, gain, ll = new_beta, new_eta, new_ll - ll, new_ll
            size = np.max(np.abs(t * step))
            if np.max(np.abs(eta)) > _ETA_SEPARATION and gain > 0:
                self._separation(beta, step_dir=step, names=names, sd=sd)
            if size <= self.tol * (1.0 + np.max(np.abs(beta))):
                break
            # Rounding can stall the step just above tol once the likelihood is flat.
            if size < 1e-7 * (1.0 + np.max(np.abs(beta))) and abs(gain) <= 1e-15 * abs(ll):
                break
        else:
            if np.max(np.abs(eta)) > 0.5 * _ETA_SEPARATION:
                self._separation(beta, step_dir=step, names=names, sd=sd)
            warnings.warn(f"SurveyLogit did not converge in {self.max_iter} iterations "
                          f"(last step {size:.2e})", RuntimeWarning, stacklevel=3)
        prob = expit(eta)
        H = Xd.T @ ((w * prob * (1.0 - prob))[:, None] * Xd)
        return beta, H, ll, it

    @staticmethod
    def _separation(beta, step_dir, names, sd):
        # The covariates whose scaled coefficients move fastest are the separating ones.
        d = np.abs(np.asarray(step_dir) * sd)
        d[0] = 0.0
        culprits = ([names[j] for j in np.flatnonzero(d > 0.25 * d.max())]
                    if d.max() > 0 else [])
        who = (" involving " + ", ".join(culprits)) if culprits else ""
        raise ModelError("perfect or quasi-complete separation" + who + ": fitted "
                         "probabilities reach 0 or 1 and the coefficients diverge; drop or "
                         "recode the covariate(s), or merge sparse categories")

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this SurveyLogit is not fitted yet; call fit first")

    def _prepare(self, X) -> np.ndarray:
        self._check_fitted()
        feat = self.names_[1:]
        if isinstance(X, pd.DataFrame) and hasattr(self, "feature_names_in_"):
            cols = [str(c) for c in X.columns]
            if cols != feat:
                missing = [f for f in feat if f not in cols]
                if missing:
                    raise ModelError("covariates missing for prediction: " + ", ".join(missing))
                X = X[feat]
            arr = X.to_numpy(dtype=np.float64)
        else:  # fitted on an array: columns are taken by position
            arr = np.asarray(X, dtype=np.float64)
            if arr.ndim == 1:
                arr = arr[None, :] if arr.size == len(feat) else arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != len(feat):
            raise ModelError(f"X has {arr.shape[-1]} features, the model expects {len(feat)}")
        return arr

    def decision_function(self, X) -> np.ndarray:
        """Linear predictor ``x beta`` (log-odds) for each row of ``X``."""
        arr = self._prepare(X)
        return arr @ self.coef_[1:] + self.coef_[0]

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, columns ``[P(y=0), P(y=1)]``."""
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """Class 1 where the probability exceeds 0.5."""
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)

    # ------------------------------------------------------------------ reporting
    def coef_table(self, domains=None) -> pd.DataFrame:
        """Coefficient table with design SEs and z-based 95 % intervals.

        Parameters
        ----------
        domains : mapping, optional
            Covariate name -> policy domain tag (the intercept gets None).

        Returns
        -------
        DataFrame
            Columns name, estimate, se, z, p_value, ci_low, ci_high, odds_ratio, domain.
        """
        self._check_fitted()
        domains = domains or {}
        est, se = self.coef_, self.se_
        with np.errstate(divide="ignore", invalid="ignore"):
            z = est / se
        return pd.DataFrame({
            "name": list(self.names_),
            "estimate": est,
            "se": se,
            "z": z,
            "p_value": 2.0 * stats.norm.sf(np.abs(z)),
            "ci_low": est - Z95 * se,
            "ci_high": est + Z95 * se,
            "odds_ratio": np.exp(est),
            # object dtype keeps None (JSON null) for the intercept instead of NaN
            "domain": pd.Series([domains.get(nm) for nm in self.names_], dtype=object),
        })

    _SCALARS = ("n_iter_", "loglik_", "n_obs_", "sum_weights_", "n_psu_", "n_strata_", "df_",
                "cov_type_", "n_features_in_")

    def to_dict(self) -> dict:
        """JSON-able dict of parameters and learned state (round-trips exactly)."""
        self._check_fitted()
        d = {
            "class": "SurveyLogit",
            "params": {"max_iter": int(self.max_iter), "tol": float(self.tol),
                       "single_psu": self.single_psu},
            "names": list(self.names_),
            "coef": [float(v) for v in self.coef_],
            "cov": [[float(v) for v in row] for row in self.cov_],
            "hessian": [[float(v) for v in row] for row in self.hessian_],
            "single_psu_strata": [int(h) for h in self.single_psu_strata_],
            "feature_names_in": hasattr(self, "feature_names_in_"),
        }
        for attr in self._SCALARS:
            val = getattr(self, attr)
            d[attr.rstrip("_")] = val if isinstance(val, str) else (
                int(val) if isinstance(val, (int, np.integer)) else float(val))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SurveyLogit":
        """Rebuild a fitted model from :meth:`to_dict` output (no code is executed)."""
        if not isinstance(d, dict) or d.get("class") != "SurveyLogit":
            raise ModelError("not a SurveyLogit model dict")
        try:
            model = cls(**d["params"])
            model.names_ = [str(v) for v in d["names"]]
            model.coef_ = np.asarray(d["coef"], dtype=np.float64)
            model.cov_ = np.asarray(d["cov"], dtype=np.float64)
            model.hessian_ = np.asarray(d["hessian"], dtype=np.float64)
            model.se_ = np.sqrt(np.clip(np.diag(model.cov_), 0.0, None))
            model.single_psu_strata_ = [int(h) for h in d.get("single_psu_strata", [])]
            for attr in cls._SCALARS:
                setattr(model, attr, d[attr.rstrip("_")])
            if d.get("feature_names_in"):
                model.feature_names_in_ = np.asarray(model.names_[1:], dtype=object)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"invalid SurveyLogit model dict: {exc}") from None
        k = len(model.names_)
        if model.coef_.shape != (k,) or model.cov_.shape != (k, k):
            raise ModelError("invalid SurveyLogit model dict: shapes do not match names")
        return model
