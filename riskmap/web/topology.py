"""TopoJSON encoding of the web layer: every shared border is stored once, as integers.

The maps draw about 2,500 municipalities. In GeoJSON every border between two of them is
written twice (once per side) as decimal degrees; here each border is one *arc* that both
polygons reference (the second one backwards), and arcs are quantised to an integer grid and
delta-encoded (each position is the offset from the previous one: small integers, which gzip
compresses well). This is the TopoJSON format (https://github.com/topojson/topojson-specification);
the pages' glue script (``static/js/riskmap.js``) turns it back into GeoJSON features.

Shared borders stay shared by construction: the coverage simplification
(:mod:`riskmap.web.weblayer`) leaves identical vertices on both sides of a border, and a
border is cut into arcs only at *junctions*, the vertices with more than two distinct
neighbours (where three polygons meet, or a border meets the coast), which both sides see.
"""

from __future__ import annotations

from collections import defaultdict

OBJECT_NAME = "municipios"


def to_topology(layer: dict, quantize: int = 5) -> dict:
    """Encode a GeoJSON FeatureCollection of (multi)polygons as a quantised TopoJSON topology.

    Parameters
    ----------
    layer : dict
        A FeatureCollection in degrees (:func:`riskmap.web.weblayer.web_layer`); features may
        have ``null`` geometry. A foreign ``attribution`` member is kept.
    quantize : int, default 5
        Decimal places of the integer grid (5 is about 1 m; 4 about 11 m).

    Returns
    -------
    dict
        ``{"type": "Topology", "transform", "bbox", "arcs", "objects": {"municipios":
        GeometryCollection}}``, one geometry per feature in order, with its properties.
        Arcs are delta-encoded integer positions; a negative index ``~i`` means arc ``i``
        reversed. Rings that collapse on the grid are dropped (a feature whose rings all
        collapse gets ``null`` geometry).
    """
    factor = 10 ** int(quantize)
    polygons = []  # per feature: list of polygons, each a list of rings of int positions
    for feature in layer["features"]:
        polygons.append(_int_polygons(feature.get("geometry"), factor))
    xs = [p[0] for feat in polygons for poly in feat for ring in poly for p in ring]
    ys = [p[1] for feat in polygons for poly in feat for ring in poly for p in ring]
    x0, y0 = (min(xs), min(ys)) if xs else (0, 0)

    neighbours: dict = defaultdict(set)
    for feat in polygons:
        for poly in feat:
            for ring in poly:
                n = len(ring) - 1  # closed ring: last == first
                for i in range(n):
                    nb = neighbours[ring[i]]
                    nb.add(ring[i - 1] if i else ring[n - 1])
                    nb.add(ring[i + 1])
    junctions = {p for p, nb in neighbours.items() if len(nb) > 2}

    arcs: list[list] = []
    index: dict = {}

    def arc_id(points: tuple) -> int:
        found = index.get(points)
        if found is not None:
            return found
        found = index.get(points[::-1])
        if found is not None:
            return ~found
        index[points] = len(arcs)
        arcs.append(_delta(points, x0, y0))
        return len(arcs) - 1

    geometries = []
    for feature, feat in zip(layer["features"], polygons):
        coords = [[[arc_id(a) for a in _cut(ring, junctions)] for ring in poly] for poly in feat]
        geometry: dict = {"type": None}
        if len(coords) == 1:
            geometry = {"type": "Polygon", "arcs": coords[0]}
        elif coords:
            geometry = {"type": "MultiPolygon", "arcs": coords}
        geometry["properties"] = dict(feature.get("properties") or {})
        geometries.append(geometry)
    scale = 1.0 / factor
    topo = {"type": "Topology"}
    if layer.get("attribution"):
        topo["attribution"] = layer["attribution"]
    topo["bbox"] = [x0 * scale, y0 * scale, (max(xs) if xs else 0) * scale,
                    (max(ys) if ys else 0) * scale]
    topo["transform"] = {"scale": [scale, scale], "translate": [x0 * scale, y0 * scale]}
    topo["objects"] = {OBJECT_NAME: {"type": "GeometryCollection", "geometries": geometries}}
    topo["arcs"] = arcs
    return topo


def to_features(topo: dict) -> list[dict]:
    """Decode a topology from :func:`to_topology` back into GeoJSON features (for tests and
    for clients without a TopoJSON reader; the glue script does the same in JavaScript)."""
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)

    def ring(ids: list[int]) -> list:
        out: list = []
        for k, i in enumerate(ids):
            points = arcs[~i][::-1] if i < 0 else arcs[i]
            out.extend(points[1:] if k else points)
        return [list(p) for p in out]

    features = []
    for geom in topo["objects"][OBJECT_NAME]["geometries"]:
        geometry = None
        if geom["type"] == "Polygon":
            geometry = {"type": "Polygon", "coordinates": [ring(r) for r in geom["arcs"]]}
        elif geom["type"] == "MultiPolygon":
            geometry = {"type": "MultiPolygon",
                        "coordinates": [[ring(r) for r in poly] for poly in geom["arcs"]]}
        features.append({"type": "Feature", "properties": geom.get("properties", {}),
                         "geometry": geometry})
    return features


def _int_polygons(geometry: dict | None, factor: int) -> list:
    """Polygons of a GeoJSON geometry as rings of integer grid positions (closed, without
    repeated consecutive positions; rings with fewer than 3 distinct positions dropped)."""
    if not geometry:
        return []
    if geometry["type"] == "Polygon":
        polys = [geometry["coordinates"]]
    elif geometry["type"] == "MultiPolygon":
        polys = geometry["coordinates"]
    else:
        return []
    out = []
    for poly in polys:
        rings = []
        for k, raw in enumerate(poly):
            ring = []
            for x, y, *_ in raw:
                p = (round(x * factor), round(y * factor))
                if not ring or ring[-1] != p:
                    ring.append(p)
            if ring[0] != ring[-1]:
                ring.append(ring[0])
            if len(ring) < 4:
                if k == 0:
                    break  # the exterior collapsed: the holes go with it
                continue
            rings.append(ring)
        if rings:
            out.append(rings)
    return out


def _cut(ring: list, junctions: set) -> list[tuple]:
    """Split a closed ring into arcs at its junctions (one canonical arc when it has none)."""
    body = ring[:-1]
    cuts = [i for i, p in enumerate(body) if p in junctions]
    if not cuts:
        # A ring without junctions (an island, or an enclave and the hole around it): start
        # at its smallest position so both sides produce the same arc (one of them reversed).
        start = body.index(min(body))
        rotated = body[start:] + body[:start]
        return [tuple(rotated + rotated[:1])]
    start = cuts[0]
    rotated = body[start:] + body[:start]
    rotated.append(rotated[0])
    marks = [i - start for i in cuts] + [len(body)]
    return [tuple(rotated[a:b + 1]) for a, b in zip(marks[:-1], marks[1:])]


def _delta(points: tuple, x0: int, y0: int) -> list:
    out = []
    px, py = x0, y0
    for x, y in points:
        out.append([x - px, y - py])
        px, py = x, y
    return out
