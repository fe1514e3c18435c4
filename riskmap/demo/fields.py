"""Smooth random surfaces over the demo country, so covariates form regions rather than noise."""

from __future__ import annotations

import numpy as np


class SmoothField:
    """A sum of Gaussian bumps with random centres, widths and signs.

    The field is drawn once (from ``rng``) and can then be evaluated anywhere, so the same
    surface drives municipal covariates and the raster. Values are standardised with the
    mean and standard deviation of the field over ``reference`` points.

    Parameters
    ----------
    rng : numpy.random.Generator
    bounds : tuple
        (xmin, ymin, xmax, ymax) in metres.
    reference : (n, 2) array
        Points used to standardise the field (e.g. the micro-cell centres).
    n_bumps : int
    length_scale : tuple of float
        Range (metres) of the bump widths; wider bumps give larger regions.
    """

    def __init__(self, rng, bounds, reference, n_bumps=40, length_scale=(120e3, 450e3)):
        xmin, ymin, xmax, ymax = bounds
        self.centres = np.column_stack([rng.uniform(xmin, xmax, n_bumps),
                                        rng.uniform(ymin, ymax, n_bumps)])
        self.widths = rng.uniform(*length_scale, n_bumps)
        self.amplitudes = rng.normal(0.0, 1.0, n_bumps)
        self._loc, self._scale = 0.0, 1.0
        raw = self(reference)
        self._loc, self._scale = float(raw.mean()), float(raw.std() or 1.0)

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        """Evaluate at (n, 2) points; returns an (n,) standardised array."""
        xy = np.asarray(xy, dtype=float)
        out = np.zeros(len(xy))
        # Loop over bumps (tens), not points (millions): memory stays O(n).
        for (cx, cy), w, a in zip(self.centres, self.widths, self.amplitudes):
            d2 = (xy[:, 0] - cx) ** 2 + (xy[:, 1] - cy) ** 2
            out += a * np.exp(-0.5 * d2 / (w * w))
        return (out - self._loc) / self._scale

    def grid(self, transform, shape, step=8) -> np.ndarray:
        """Evaluate on a raster grid (affine ``transform``, ``shape``), coarsely then interpolated.

        The surface is smooth at the scale of tens of kilometres, so computing it every
        ``step`` pixels and interpolating bilinearly is exact enough and ``step**2`` times cheaper.
        """
        from scipy.ndimage import map_coordinates

        rows, cols = shape
        r = np.arange(0, rows + step, step, dtype=float)
        c = np.arange(0, cols + step, step, dtype=float)
        cc, rr = np.meshgrid(c + 0.5, r + 0.5)
        xs = transform.c + transform.a * cc
        ys = transform.f + transform.e * rr
        coarse = self(np.column_stack([xs.ravel(), ys.ravel()])).reshape(rr.shape)
        fr, fc = np.meshgrid(np.arange(rows) / step, np.arange(cols) / step, indexing="ij")
        return map_coordinates(coarse, [fr, fc], order=1, mode="nearest")
