#!/usr/bin/env python3
"""Builds config/areas/*.geojson, the bundled defended areas, from Natural Earth.

Source: Natural Earth 1:50m Admin 0 countries, version 4.1.0 (public domain,
https://www.naturalearthdata.com/), as redistributed in TopoJSON by the npm package
world-atlas@2.0.2 (countries-50m.json). Run:

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python3 tools/natural_earth_areas.py package/countries-50m.json config/areas

It decodes the TopoJSON arcs (delta-encoded, quantised) into plain GeoJSON polygons and keeps
the land territories the node defends by default.
"""
import json
import sys
from pathlib import Path

# Area name -> (Natural Earth feature name, optional filter on the polygon's first point).
AREAS = {
    "japan": ("Japan", None),
    "south-korea": ("South Korea", None),
    "guam": ("Guam", None),
    "northern-mariana-islands": ("N. Mariana Is.", None),
    "american-samoa": ("American Samoa", None),
    # Hawaii is part of the United States feature: keep its polygons (mid-Pacific, 18-23 N).
    "hawaii": ("United States of America", lambda lon, lat: -161 < lon < -154 and 18 < lat < 23),
}


def decode(topo):
    t = topo.get("transform")
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for p in arc:
            if t:
                x += p[0]
                y += p[1]
                pts.append((x * t["scale"][0] + t["translate"][0], y * t["scale"][1] + t["translate"][1]))
            else:
                pts.append((p[0], p[1]))
        arcs.append(pts)

    def ring(indices):
        out = []
        for i in indices:
            pts = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
            out.extend(pts if not out else pts[1:])
        return [[round(x, 5), round(y, 5)] for x, y in out]

    return ring


def main(src, dst):
    topo = json.load(open(src))
    ring = decode(topo)
    geoms = topo["objects"]["countries"]["geometries"]
    Path(dst).mkdir(parents=True, exist_ok=True)
    for area, (name, keep) in AREAS.items():
        g = next(g for g in geoms if g["properties"]["name"] == name)
        polys = [g["arcs"]] if g["type"] == "Polygon" else g["arcs"]
        coords = [[ring(r) for r in poly] for poly in polys]
        if keep:
            coords = [p for p in coords if keep(*p[0][0])]
        title = area.replace("-", " ").title()
        fc = {
            "type": "FeatureCollection",
            "features": [{
                "type": "Feature",
                "properties": {
                    "name": title,
                    "source": "Natural Earth 1:50m Admin 0 countries v4.1.0 (public domain), via world-atlas@2.0.2",
                },
                "geometry": {"type": "MultiPolygon", "coordinates": coords},
            }],
        }
        out = Path(dst) / f"{area}.geojson"
        out.write_text(json.dumps(fc, separators=(",", ":")) + "\n")
        print(f"{out}: {len(coords)} polygons, {sum(len(r) for p in coords for r in p)} points")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
