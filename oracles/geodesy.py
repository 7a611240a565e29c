"""Geodesy oracle: random cases computed by pymap3d, one JSON object per line on stdout.

Used by crates/geodesy/tests/it/oracle.rs; run as `python oracles/geodesy.py N SEED`.
Angles are radians, lengths metres. Edge cases are over-sampled on purpose: exact and
near poles, the antimeridian, heights from -500 m to 40,000 km.
"""

import json
import math
import random
import sys
from datetime import datetime, timedelta, timezone

import logging

import pymap3d
from pymap3d.haversine import anglesep
from pymap3d.vincenty import vdist


def rand_lat(rng):
    u = rng.random()
    if u < 0.04:
        return math.copysign(math.pi / 2, rng.random() - 0.5)
    if u < 0.08:
        return math.copysign(math.pi / 2 - rng.random() * 1e-7, rng.random() - 0.5)
    return math.asin(rng.uniform(-1.0, 1.0))


def rand_lon(rng):
    u = rng.random()
    if u < 0.04:
        return math.copysign(math.pi, rng.random() - 0.5)
    if u < 0.08:
        return math.copysign(math.pi - rng.random() * 1e-7, rng.random() - 0.5)
    return rng.uniform(-math.pi, math.pi)


def rand_alt(rng):
    u = rng.random()
    if u < 0.3:
        return rng.uniform(-500.0, 3000.0)
    if u < 0.6:
        return rng.uniform(0.0, 1.5e6)
    return 10 ** rng.uniform(2.0, math.log10(4.0e7))


def main():
    logging.disable(logging.WARNING)  # pymap3d warns that its non-astropy ECI is approximate; we test that model on purpose
    n = int(sys.argv[1])
    rng = random.Random(int(sys.argv[2]))
    out = sys.stdout
    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
    for _ in range(n):
        lat, lon, alt = rand_lat(rng), rand_lon(rng), rand_alt(rng)
        x, y, z = pymap3d.geodetic2ecef(lat, lon, alt, deg=False)
        out.write(json.dumps({"case": "g2e", "in": [lat, lon, alt], "out": [float(x), float(y), float(z)]}) + "\n")
        # A point off the generated one, so ecef2geodetic does not just undo geodetic2ecef.
        ex, ey, ez = x + rng.uniform(-50, 50), y + rng.uniform(-50, 50), z + rng.uniform(-50, 50)
        glat, glon, galt = pymap3d.ecef2geodetic(ex, ey, ez, deg=False)
        # pymap3d's closed form (You 2000, one correction step) is itself off by up to tens of
        # metres far from the surface; report how well its answer reproduces the point through
        # its own exact forward transform so the test can tell its error from ours.
        bx, by, bz = pymap3d.geodetic2ecef(glat, glon, galt, deg=False)
        residual = math.dist((ex, ey, ez), (float(bx), float(by), float(bz)))
        out.write(json.dumps({"case": "e2g", "in": [ex, ey, ez],
                              "out": [float(glat), float(glon), float(galt), residual]}) + "\n")

        lat0, lon0, alt0 = rand_lat(rng), rand_lon(rng), rng.uniform(-500.0, 5000.0)
        az, el, rng_m = pymap3d.geodetic2aer(lat, lon, alt, lat0, lon0, alt0, deg=False)
        e, nn, u = pymap3d.geodetic2enu(lat, lon, alt, lat0, lon0, alt0, deg=False)
        nn2, e2, d = pymap3d.geodetic2ned(lat, lon, alt, lat0, lon0, alt0, deg=False)
        out.write(json.dumps({
            "case": "aer",
            "in": [lat, lon, alt, lat0, lon0, alt0],
            "out": [float(az), float(el), float(rng_m), float(e), float(nn), float(u), float(nn2), float(e2), float(d)],
        }) + "\n")

        sep = anglesep(lon0, lat0, lon, lat, deg=False)
        out.write(json.dumps({"case": "gc", "in": [lat0, lon0, lat, lon], "out": [float(sep)]}) + "\n")

        # Vincenty does not converge near antipodes; keep pairs it solves.
        lat1d, lon1d = math.degrees(lat0), math.degrees(lon0)
        lat2d, lon2d = rng.uniform(-89.9, 89.9), rng.uniform(-180, 180)
        if anglesep(lon1d, lat1d, lon2d, lat2d) < 170 and abs(lat1d) < 89.9:
            dist, az1 = vdist(lat1d, lon1d, lat2d, lon2d)
            out.write(json.dumps({"case": "geodesic", "in": [lat0, lon0, math.radians(lat2d), math.radians(lon2d)],
                                  "out": [float(dist), math.radians(float(az1))]}) + "\n")

        # Times on 3-hour boundaries are exact in pymap3d's float Julian date, so its sidereal
        # angle is free of the ~40 µs rounding a JD in f64 otherwise carries.
        t = epoch + timedelta(days=rng.randrange(0, 366 * 60), hours=3 * rng.randrange(0, 8))
        r = x, y, z
        xe, ye, ze = pymap3d.eci2ecef(*r, t)
        out.write(json.dumps({"case": "eci", "in": [t.strftime("%Y-%m-%dT%H:%M:%SZ"), *r],
                              "out": [float(xe), float(ye), float(ze)]}) + "\n")


if __name__ == "__main__":
    main()
