"""The demo country's geography: outline, states, municipalities, and a later vintage with splits.

How it is drawn (all in EPSG:6372, metres, roughly where Mexico is):

1. an outline: an ellipse with smooth harmonic wobbles, oriented north-west to south-east;
2. tens of thousands of small *micro-cells*: the Voronoi tessellation of a jittered grid,
   clipped to the outline, with their edge-adjacency graph;
3. states, then municipalities, grown on that graph from seed cells by a multi-source shortest
   path with random edge lengths. Every region is the union of the cells nearer (in that
   randomised metric) to its seed than to any other, so it is connected by construction and
   its boundary is an irregular chain of Voronoi edges rather than a straight line;
4. the newer vintage splits a dozen municipalities in two the same way (parent keeps its code,
   the new municipality gets the next code of its state, as INEGI does).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from .fields import SmoothField
from .names import municipality_names, sort_key, state_names

CRS = "EPSG:6372"
#: Centre of the outline (EPSG:6372 metres; about 102 W, 23.5 N) and its shape.
CENTRE = (2.55e6, 1.28e6)
SEMI_AXES = (1.35e6, 0.48e6)
ROTATION_DEG = -39.0


@dataclass
class Geography:
    """Everything the rest of the demo needs to know about the country's geography.

    Attributes
    ----------
    outline : shapely.Polygon
    cell_xy : (n_cells, 2) array
        Micro-cell generating points.
    cell_area : (n_cells,) array
        Micro-cell areas (m^2).
    cell_state : (n_cells,) int array
        Index of the state (0-based, in ``estados`` order) of each cell.
    cell_mun : dict
        Vintage name -> (n_cells,) int array, index into that vintage's municipality table.
    municipios : dict
        Vintage name -> GeoDataFrame (cvegeo, cve_ent, cve_mun, nom_ent, nom_mun, geometry), EPSG:6372.
    estados : GeoDataFrame
        cve_ent, cvegeo, nom_ent, geometry (EPSG:6372).
    splits : DataFrame
        parent, child (cvegeo codes of the newer vintage's new municipalities).
    """

    outline: shapely.Polygon
    cell_xy: np.ndarray
    cell_area: np.ndarray
    cell_state: np.ndarray
    cell_mun: dict
    municipios: dict
    estados: gpd.GeoDataFrame
    splits: pd.DataFrame


def make_outline(rng: np.random.Generator, n_vertices: int = 720) -> shapely.Polygon:
    """An irregular, star-shaped country outline (valid by construction: radius stays > 0)."""
    t = np.linspace(0.0, 2 * np.pi, n_vertices, endpoint=False)
    wobble = np.ones_like(t)
    for k in range(2, 12):
        wobble += rng.normal(0.0, 0.09 / k ** 0.8) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    wobble = np.clip(wobble, 0.55, None)
    x = SEMI_AXES[0] * np.cos(t) * wobble
    y = SEMI_AXES[1] * np.sin(t) * wobble
    a = np.deg2rad(ROTATION_DEG)
    xr = CENTRE[0] + x * np.cos(a) - y * np.sin(a)
    yr = CENTRE[1] + x * np.sin(a) + y * np.cos(a)
    return shapely.Polygon(np.column_stack([xr, yr]))


def micro_cells(rng: np.random.Generator, outline, n_cells: int):
    """Clipped Voronoi cells of a jittered grid inside ``outline``.

    Returns
    -------
    xy : (n, 2) array of generating points, cells : array of Polygons (same order).
    """
    spacing = np.sqrt(outline.area / n_cells)
    xmin, ymin, xmax, ymax = outline.bounds
    gx = np.arange(xmin + spacing / 2, xmax, spacing)
    gy = np.arange(ymin + spacing / 2, ymax, spacing)
    xx, yy = np.meshgrid(gx, gy)
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    # Jitter keeps cells of similar size (unlike uniform points) yet irregular in shape.
    xy = xy + rng.uniform(-0.42, 0.42, xy.shape) * spacing
    xy = xy[shapely.contains_xy(outline, xy[:, 0], xy[:, 1])]
    vor = shapely.voronoi_polygons(shapely.MultiPoint(xy), extend_to=outline.buffer(spacing * 4),
                                   ordered=True)
    cells = np.asarray(shapely.get_parts(vor))
    # Only cells crossing the border need clipping (intersecting with the detailed outline is
    # the costly step, and most cells lie well inside).
    shapely.prepare(outline)
    border = ~shapely.contains(outline, cells)
    cells[border] = shapely.intersection(cells[border], outline)
    # A cell cut in two by a bay of the outline would make a region disconnected: keep the
    # part that holds the generating point, and give the rest to the neighbouring cells.
    multi = np.flatnonzero(shapely.get_type_id(cells) != 3)
    for i in multi:
        parts = shapely.get_parts(cells[i])
        hit = [p for p in parts if p.covers(shapely.Point(xy[i]))]
        cells[i] = hit[0] if hit else max(parts, key=lambda p: p.area)
    return xy, cells


def adjacency(cells: np.ndarray, xy: np.ndarray, rng: np.random.Generator, roughness: float):
    """Sparse graph of cells sharing an edge, with randomly stretched edge lengths.

    ``roughness`` is the log-scale spread of the stretch: higher gives more irregular regions.
    """
    from scipy.spatial import Delaunay

    # Voronoi cells share an edge exactly when their points are Delaunay neighbours (points
    # in general position, as jittered ones are). Clipping to the outline can remove a shared
    # edge, so also require the clipped cells to still intersect.
    tri = Delaunay(xy).simplices
    edges = np.sort(np.vstack([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]]), axis=1)
    edges = np.unique(edges, axis=0)
    left, right = edges[:, 0], edges[:, 1]
    keep = shapely.intersects(cells[left], cells[right])
    left, right = left[keep], right[keep]
    dist = np.hypot(*(xy[left] - xy[right]).T)
    weight = dist * rng.lognormal(0.0, roughness, len(dist))
    return left, right, weight


def _graph(left, right, weight, n, keep=None):
    """CSR graph of ``n`` nodes from an edge list (optionally only the ``keep`` edges)."""
    if keep is not None:
        left, right, weight = left[keep], right[keep], weight[keep]
    return coo_matrix((weight, (left, right)), shape=(n, n)).tocsr()


def grow_regions(graph, seeds: np.ndarray) -> np.ndarray:
    """Assign every node to its nearest seed (index into ``seeds``) along the graph."""
    _, _, sources = dijkstra(graph, directed=False, indices=seeds, min_only=True,
                             return_predecessors=True)
    lookup = np.full(graph.shape[0], -1)
    lookup[seeds] = np.arange(len(seeds))
    owner = lookup[sources]
    if (owner < 0).any():
        raise RuntimeError("micro-cell graph is not connected; change the seed")
    return owner


def _dissolve(cells, labels, n_labels):
    """Union the cells of each label; cells form a clean coverage, so coverage union is exact."""
    out = []
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_labels + 1))
    for k in range(n_labels):
        members = cells[order[bounds[k]:bounds[k + 1]]]
        geom = shapely.coverage_union_all(members)
        if geom.geom_type != "Polygon":
            geom = shapely.union_all(members)
        out.append(geom)
    return np.asarray(out, dtype=object)


def build_geography(rng: np.random.Generator, n_states: int = 32, n_municipalities: int = 2400,
                    n_splits: int = 12, cells_per_municipality: int = 14,
                    vintages=("2015", "2020")) -> Geography:
    """Draw the country.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_states : int
        Number of states (at most 32).
    n_municipalities : int
        Municipalities of the older vintage (the newer one has ``n_splits`` more).
    n_splits : int
        Municipalities split off between the two vintages.
    cells_per_municipality : int
        Average micro-cells per municipality (finer gives more detailed boundaries, slower).
    vintages : (str, str)
        Names of the older and newer vintage.
    """
    old, new = vintages
    outline = make_outline(rng)
    xy, cells = micro_cells(rng, outline, n_municipalities * cells_per_municipality)
    n = len(cells)
    left, right, weight = adjacency(cells, xy, rng, roughness=0.6)
    # States grow through a landscape of smooth "friction" (mountain ranges, rivers), so
    # their borders meander at the scale of tens of kilometres instead of being nearly
    # straight lines between seeds.
    friction = SmoothField(rng, outline.bounds, xy, n_bumps=80, length_scale=(40e3, 160e3))
    midpoints = (xy[left] + xy[right]) / 2
    graph = _graph(left, right, weight * np.exp(1.2 * friction(midpoints)), n)

    # States: seeds spread by k-means on the cells (weighted so that states in the denser
    # south-east are smaller, like Mexico's), then grown on the graph.
    along = along_axis(xy)
    density = np.exp(1.2 * along)
    state_seeds = _nearest_unique(xy, _weighted_kmeans(rng, xy, density, n_states))
    cell_state_raw = grow_regions(graph, state_seeds)
    names_ent = state_names(n_states)
    # INEGI numbers states alphabetically: map the grown regions to the sorted names randomly.
    perm = rng.permutation(n_states)
    cell_state = perm[cell_state_raw]

    # Municipalities per state: proportional to area x density, at least 3, at most cells/2.
    cells_in_state = np.bincount(cell_state, minlength=n_states)
    dens_state = np.bincount(cell_state, weights=density, minlength=n_states)
    share = dens_state * rng.lognormal(0.0, 0.5, n_states)
    n_mun = np.maximum(3, np.round(share / share.sum() * n_municipalities)).astype(int)
    n_mun = np.minimum(n_mun, cells_in_state // 2)
    _fix_total(n_mun, n_municipalities, cells_in_state // 2)

    seeds, seed_state = [], []
    for s in range(n_states):
        members = np.flatnonzero(cell_state == s)
        w = density[members] * rng.lognormal(0.0, 0.7, len(members))
        chosen = rng.choice(members, size=n_mun[s], replace=False, p=w / w.sum())
        seeds.extend(chosen.tolist())
        seed_state.extend([s] * n_mun[s])
    seeds = np.asarray(seeds)
    # Without edges between states, municipalities grow inside their state.
    within_states = _graph(left, right, weight, n, cell_state[left] == cell_state[right])
    cell_mun_old = grow_regions(within_states, seeds)

    # Codes: alphabetical by name within the state, as INEGI's historical numbering.
    seed_state = np.asarray(seed_state)
    table = pd.DataFrame({"state": seed_state})
    table["nom_mun"] = ""
    for s in range(n_states):
        idx = np.flatnonzero(seed_state == s)
        table.loc[idx, "nom_mun"] = municipality_names(rng, len(idx))
    table["key"] = [sort_key(x) for x in table["nom_mun"]]
    table["rank"] = table.groupby("state")["key"].rank(method="first").astype(int)
    order = np.lexsort((table["rank"].to_numpy(), table["state"].to_numpy()))
    relabel = np.empty(len(table), dtype=int)
    relabel[order] = np.arange(len(table))
    table = table.iloc[order].reset_index(drop=True)
    cell_mun_old = relabel[cell_mun_old]
    seeds_sorted = seeds[order]

    table["cve_ent"] = [f"{s + 1:02d}" for s in table["state"]]
    table["cve_mun"] = [f"{r:03d}" for r in table["rank"]]
    table["cvegeo"] = table["cve_ent"] + table["cve_mun"]
    table["nom_ent"] = [names_ent[s] for s in table["state"]]

    # Splits: a dozen large-enough municipalities lose a part to a new municipality.
    cell_mun_new, new_rows, split_rows = _split(rng, table, cell_mun_old, seeds_sorted, xy,
                                                within_states, n_splits)
    table_new = pd.concat([table, pd.DataFrame(new_rows)], ignore_index=True)

    geoms_old = _dissolve(cells, cell_mun_old, len(table))
    # Only the split municipalities changed: dissolve those again, reuse the rest.
    changed = np.zeros(len(table_new), dtype=bool)
    changed[len(table):] = True
    changed[[table.index[table["cvegeo"] == p][0] for p, _ in split_rows]] = True
    geoms_new = np.concatenate([geoms_old, np.empty(len(new_rows), dtype=object)])
    idx = np.flatnonzero(changed)
    in_changed = changed[cell_mun_new]
    remap = np.full(len(table_new), -1)
    remap[idx] = np.arange(len(idx))
    geoms_new[idx] = _dissolve(cells[in_changed], remap[cell_mun_new[in_changed]], len(idx))
    municipios = {}
    for name, tab, geoms in ((old, table, geoms_old), (new, table_new, geoms_new)):
        municipios[name] = gpd.GeoDataFrame(
            tab[["cvegeo", "cve_ent", "cve_mun", "nom_ent", "nom_mun"]].copy(),
            geometry=geoms, crs=CRS)
    state_geoms = _dissolve(cells, cell_state, n_states)
    estados = gpd.GeoDataFrame({"cve_ent": [f"{s + 1:02d}" for s in range(n_states)],
                                "nom_ent": names_ent}, geometry=state_geoms, crs=CRS)
    estados.insert(1, "cvegeo", estados["cve_ent"])
    return Geography(outline=outline, cell_xy=xy, cell_area=shapely.area(cells),
                     cell_state=cell_state, cell_mun={old: cell_mun_old, new: cell_mun_new},
                     municipios=municipios, estados=estados,
                     splits=pd.DataFrame(split_rows, columns=["parent", "child"]))


def along_axis(xy: np.ndarray) -> np.ndarray:
    """Position along the country's long axis, -1 (north-west) to 1 (south-east)."""
    a = np.deg2rad(ROTATION_DEG)
    u = (xy[:, 0] - CENTRE[0]) * np.cos(a) + (xy[:, 1] - CENTRE[1]) * np.sin(a)
    return u / SEMI_AXES[0]


def _weighted_kmeans(rng, xy: np.ndarray, weight: np.ndarray, k: int, n_iter: int = 30):
    """Lloyd's k-means with point weights; returns (k, 2) centres (small k, plain numpy)."""
    from scipy.spatial import cKDTree

    centres = xy[rng.choice(len(xy), size=k, replace=False, p=weight / weight.sum())]
    for _ in range(n_iter):
        label = cKDTree(centres).query(xy)[1]
        w = np.bincount(label, weights=weight, minlength=k)
        for dim in range(2):
            moved = np.bincount(label, weights=weight * xy[:, dim], minlength=k)
            # An empty cluster keeps its centre rather than dividing by zero.
            centres[:, dim] = np.where(w > 0, moved / np.where(w > 0, w, 1), centres[:, dim])
    return centres


def _nearest_unique(xy: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the cell nearest each centre, never the same cell twice."""
    chosen: list[int] = []
    for c in centres:
        order = np.argsort(np.hypot(*(xy - c).T))
        chosen.append(int(next(i for i in order if i not in chosen)))
    return np.asarray(chosen)


def _fix_total(counts: np.ndarray, total: int, cap: np.ndarray) -> None:
    """Adjust ``counts`` in place so they sum to ``total`` (within 3 <= counts <= cap)."""
    i = 0
    while counts.sum() != total and i < 100000:
        k = i % len(counts)
        if counts.sum() < total and counts[k] < cap[k]:
            counts[k] += 1
        elif counts.sum() > total and counts[k] > 3:
            counts[k] -= 1
        i += 1


def _split(rng, table, cell_mun, seeds, xy, graph, n_splits):
    """Split ``n_splits`` municipalities; return new cell labels, new rows, (parent, child)."""
    sizes = np.bincount(cell_mun, minlength=len(table))
    candidates = np.flatnonzero(sizes >= 8)
    # Prefer different states, as Mexico's 2015-2020 splits were spread over several states.
    rng.shuffle(candidates)
    picked, states_seen = [], set()
    for c in candidates:
        if table.at[c, "state"] not in states_seen or len(states_seen) >= table["state"].nunique():
            picked.append(int(c))
            states_seen.add(table.at[c, "state"])
        if len(picked) == n_splits:
            break
    if len(picked) < n_splits:
        raise ValueError(f"only {len(picked)} municipalities are large enough to split; "
                         "raise cells_per_municipality or lower n_splits")
    picked.sort()
    labels = cell_mun.copy()
    next_code = table.groupby("cve_ent")["cve_mun"].max().astype(int).to_dict()
    new_rows, split_rows = [], []
    for parent in picked:
        members = np.flatnonzero(cell_mun == parent)
        own_seed = seeds[parent]
        far = members[np.argsort(np.hypot(*(xy[members] - xy[own_seed]).T))[len(members) // 2:]]
        other = int(rng.choice(far))
        sub = graph[members][:, members]
        local = np.searchsorted(members, [own_seed, other])
        owner = grow_regions(sub, local)
        cve_ent = table.at[parent, "cve_ent"]
        next_code[cve_ent] += 1
        new_index = len(table) + len(new_rows)
        labels[members[owner == 1]] = new_index
        taken = table.loc[table["cve_ent"] == cve_ent, "nom_mun"].tolist()
        taken += [r["nom_mun"] for r in new_rows]
        name = municipality_names(rng, 1, taken=taken)[0]
        cve_mun = f"{next_code[cve_ent]:03d}"
        new_rows.append({"state": table.at[parent, "state"], "nom_mun": name,
                         "rank": next_code[cve_ent], "cve_ent": cve_ent, "cve_mun": cve_mun,
                         "cvegeo": cve_ent + cve_mun, "nom_ent": table.at[parent, "nom_ent"]})
        split_rows.append((table.at[parent, "cvegeo"], cve_ent + cve_mun))
    return labels, new_rows, split_rows
