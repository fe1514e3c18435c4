"""Which municipalities of a geography vintage touch each other (the neighbours a municipality
page lists), next to the crosswalks between vintages."""

from __future__ import annotations

import geopandas as gpd

#: Two polygons closer than this (degrees) are neighbours; absorbs coordinate round-off.
NEIGHBOUR_TOLERANCE = 1e-6


def adjacency(municipios: gpd.GeoDataFrame,
              tolerance: float = NEIGHBOUR_TOLERANCE) -> dict[str, list[tuple[str, str]]]:
    """Touching municipalities, found with an STRtree.

    Parameters
    ----------
    municipios : geopandas.GeoDataFrame
        Normalised boundaries (``cvegeo``, ``nom_mun``) in EPSG:4326, as the store keeps them.
    tolerance : float, default :data:`NEIGHBOUR_TOLERANCE`
        Polygons within this distance (degrees) count as touching.

    Returns
    -------
    dict
        ``{cvegeo: [(cvegeo, nom_mun), ...]}`` for every municipality (an island has an empty
        list), each list sorted by code.
    """
    from shapely import STRtree

    geoms = municipios.geometry.to_numpy()
    tree = STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=tolerance)
    codes = municipios["cvegeo"].astype(str).to_numpy()
    names = municipios["nom_mun"].astype(str).to_numpy()
    out: dict[str, list[tuple[str, str]]] = {c: [] for c in codes}
    for i, j in zip(left, right):
        if i != j:
            out[codes[i]].append((codes[j], names[j]))
    return {k: sorted(v) for k, v in out.items()}
