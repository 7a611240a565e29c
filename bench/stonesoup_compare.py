"""trilink against Stone Soup (UK DSTL's tracking framework) on the same radar reports.

Usage (docs/BENCHMARKS.md has the whole recipe):
    python bench/stonesoup_compare.py SIMDIR --trilink target/release/trilink

SIMDIR is the output of `trilink sim` (measurements.ndjson, truth.ndjson). Both trackers get
the radar reports only (Stone Soup has no model here for the infrared lines of sight), and
both are scored by this script with the same code: GOSPA (c = 10 km, p = 2, alpha = 2) every
second against the truth, position RMSE of the pairs GOSPA assigns, and throughput (reports
per second of tracker CPU time). It prints each figure and the ratio trilink / Stone Soup.

The Stone Soup tracker is of comparable design: Kalman filter, nearly-constant-acceleration
motion in a local east-north-up Cartesian frame (its models have no Earth gravity or
rotation; the acceleration state absorbs them), radar reports converted to Cartesian
positions with their first-order covariance, global nearest neighbour association
(GNNWith2DAssignment over a Mahalanobis distance hypothesiser), two-point initiation and
deletion after 30 s without an update. trilink runs as shipped (`trilink track`).
"""

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

A = 6378137.0
F = 1 / 298.257223563
E2 = F * (2 - F)
ORIGIN = (39.0, 131.0)  # frame origin for the comparison, in the Sea of Japan
GOSPA_C = 10_000.0


def geodetic_to_ecef(lat, lon, h):
    lat, lon = math.radians(lat), math.radians(lon)
    n = A / math.sqrt(1 - E2 * math.sin(lat) ** 2)
    return np.array([(n + h) * math.cos(lat) * math.cos(lon), (n + h) * math.cos(lat) * math.sin(lon), (n * (1 - E2) + h) * math.sin(lat)])


def enu_rotation(lat, lon):
    lat, lon = math.radians(lat), math.radians(lon)
    return np.array([
        [-math.sin(lon), math.cos(lon), 0],
        [-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon), math.cos(lat)],
        [math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)],
    ])


FRAME_ORIGIN = geodetic_to_ecef(*ORIGIN, 0.0)
FRAME_ROT = enu_rotation(*ORIGIN)


def to_frame(ecef):
    return FRAME_ROT @ (np.asarray(ecef) - FRAME_ORIGIN)


def parse_time(s):
    # Nanosecond RFC 3339; Python keeps microseconds, plenty for scoring at 1 s epochs.
    base, frac = s[:-1].split(".") if "." in s else (s[:-1], "0")
    t = dt.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    return t + dt.timedelta(microseconds=int((frac + "000000")[:6]))


def radar_to_frame(m):
    """A radar report as a Cartesian position in the frame, with its covariance."""
    site = m["site"]
    r, az, el = m["range_m"], m["az_rad"], m["el_rad"]
    ce, se, ca, sa = math.cos(el), math.sin(el), math.cos(az), math.sin(az)
    enu = np.array([r * ce * sa, r * ce * ca, r * se])
    j = np.array([[ce * sa, r * ce * ca, -r * se * sa], [ce * ca, -r * ce * sa, -r * se * ca], [se, 0, r * ce]])
    s = np.diag([m["sigma_range_m"] ** 2, m["sigma_az_rad"] ** 2, m["sigma_el_rad"] ** 2])
    rot = enu_rotation(site["lat_deg"], site["lon_deg"]).T  # site ENU -> ECEF
    ecef = geodetic_to_ecef(site["lat_deg"], site["lon_deg"], site["alt_m"]) + rot @ enu
    cov_ecef = rot @ j @ s @ j.T @ rot.T
    return to_frame(ecef), FRAME_ROT @ cov_ecef @ FRAME_ROT.T


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_trilink(binary, radar_lines, extra=()):
    with tempfile.TemporaryDirectory() as d:
        meas = Path(d) / "radar.ndjson"
        meas.write_text("".join(json.dumps(m) + "\n" for m in radar_lines))
        out = Path(d) / "tracks.ndjson"
        res = subprocess.run([binary, "track", str(meas), "--out", str(out), *extra], capture_output=True, text=True, check=True)
        engine_s = float(res.stdout.split(" reports in ")[1].split(" s ")[0])
        tracks = {}
        for t in load(out):
            tracks.setdefault(t["track"], []).append((parse_time(t["time"]), to_frame(t["pos_ecef_m"]), to_frame(np.array(t["pos_ecef_m"]) + np.array(t["vel_ecef_mps"])) - to_frame(t["pos_ecef_m"])))
        return tracks, engine_s


def run_stonesoup(radar_lines):
    from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
    from stonesoup.deleter.time import UpdateTimeDeleter
    from stonesoup.hypothesiser.distance import DistanceHypothesiser
    from stonesoup.initiator.simple import MultiMeasurementInitiator
    from stonesoup.measures import Mahalanobis
    from stonesoup.models.measurement.linear import LinearGaussian
    from stonesoup.models.transition.linear import CombinedLinearGaussianTransitionModel, ConstantAcceleration
    from stonesoup.predictor.kalman import KalmanPredictor
    from stonesoup.tracker.simple import MultiTargetTracker
    from stonesoup.types.detection import Detection
    from stonesoup.types.state import GaussianState
    from stonesoup.updater.kalman import KalmanUpdater

    transition = CombinedLinearGaussianTransitionModel([ConstantAcceleration(1.0)] * 3)
    default_meas = LinearGaussian(ndim_state=9, mapping=(0, 3, 6), noise_covar=np.eye(3) * 1e4)
    predictor = KalmanPredictor(transition)
    updater = KalmanUpdater(default_meas)
    hypothesiser = DistanceHypothesiser(predictor, updater, measure=Mahalanobis(), missed_distance=4)
    associator = GNNWith2DAssignment(hypothesiser)
    deleter = UpdateTimeDeleter(dt.timedelta(seconds=30))
    prior = GaussianState(np.zeros((9, 1)), np.diag([1e6, 2e6, 1e3] * 3))
    initiator = MultiMeasurementInitiator(prior, deleter=UpdateTimeDeleter(dt.timedelta(seconds=6)), data_associator=associator, updater=updater, measurement_model=default_meas, min_points=3)

    scans = {}
    for m in radar_lines:
        pos, cov = radar_to_frame(m)
        model = LinearGaussian(ndim_state=9, mapping=(0, 3, 6), noise_covar=cov)
        t = parse_time(m["time"])
        scans.setdefault((t, m["sensor"]), set()).add(Detection(pos.reshape(3, 1), timestamp=t, measurement_model=model))
    feed = [(k[0], v) for k, v in sorted(scans.items(), key=lambda kv: (kv[0][0], kv[0][1]))]
    tracker = MultiTargetTracker(initiator=initiator, deleter=deleter, detector=feed, data_associator=associator, updater=updater)
    tracks = {}
    start = time.process_time()
    for t, current in tracker:
        for tr in current:
            if tr.state.timestamp == t:
                x = np.asarray(tr.state.state_vector, float).ravel()
                tracks.setdefault(id(tr), []).append((t, x[[0, 3, 6]], x[[1, 4, 7]]))
    return tracks, time.process_time() - start


def score(tracks, truth_by_time, epochs):
    """Mean GOSPA and RMSE of assigned pairs over the epochs."""
    gospas, sq = [], []
    for t in epochs:
        est = []
        for updates in tracks.values():
            # Latest update at or before t, at most 5 s old, carried along its velocity.
            best = None
            for (tu, p, v) in updates:
                if tu <= t and (t - tu).total_seconds() <= 5:
                    best = (tu, p, v)
            if best:
                est.append(best[1] + best[2] * (t - best[0]).total_seconds())
        truths = truth_by_time.get(t, [])
        n, m = len(est), len(truths)
        if n == 0 and m == 0:
            continue
        cost = np.zeros((n, m))
        for i in range(n):
            for j in range(m):
                cost[i, j] = min(np.linalg.norm(est[i] - truths[j]), GOSPA_C) ** 2
        assigned = 0
        total = 0.0
        if n and m:
            rows, cols = linear_sum_assignment(cost)
            for i, j in zip(rows, cols):
                if cost[i, j] < GOSPA_C ** 2:
                    total += cost[i, j]
                    sq.append(cost[i, j])
                    assigned += 1
        total += GOSPA_C ** 2 / 2 * (n + m - 2 * assigned)
        gospas.append(math.sqrt(total))
    return float(np.mean(gospas)), float(math.sqrt(np.mean(sq))) if sq else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("simdir")
    ap.add_argument("--trilink", default="target/release/trilink")
    args = ap.parse_args()
    meas = load(Path(args.simdir) / "measurements.ndjson")
    radar = [m for m in meas if m["type"] == "radar"]
    truth_by_time = {}
    for t in load(Path(args.simdir) / "truth.ndjson"):
        truth_by_time.setdefault(parse_time(t["time"]), []).append(to_frame(t["pos_ecef_m"]))
    epochs = sorted(t for t in truth_by_time if t.microsecond == 0)

    # trilink twice: as shipped (with impact prediction and launch estimation, which Stone
    # Soup does not do) and tracking alone, which is what Stone Soup does.
    tri_tracks, tri_s = run_trilink(args.trilink, radar)
    bare_tracks, bare_s = run_trilink(args.trilink, radar, ("--impact-predictions-per-s", "0"))
    ss_tracks, ss_s = run_stonesoup(radar)
    ss_g, ss_rmse = score(ss_tracks, truth_by_time, epochs)
    n = len(radar)
    print(f"radar reports: {n}; epochs scored: {len(epochs)}")
    print(f"{'':32} {'GOSPA mean':>12} {'pos RMSE':>10} {'tracks':>7} {'reports/s':>12}")
    for name, tracks, secs in [("trilink (with impact prediction)", tri_tracks, tri_s), ("trilink (tracking only)", bare_tracks, bare_s)]:
        g, rmse = score(tracks, truth_by_time, epochs)
        print(f"{name:32} {g:10.0f} m {rmse:8.1f} m {len(tracks):7d} {n / secs:12.0f}")
        print(f"{'  ratio to Stone Soup':32} {g / ss_g:12.2f} {rmse / ss_rmse:10.2f} {'':7} {ss_s / secs:11.1f}x")
    print(f"{'Stone Soup':32} {ss_g:10.0f} m {ss_rmse:8.1f} m {len(ss_tracks):7d} {n / ss_s:12.0f}")


if __name__ == "__main__":
    sys.exit(main())
