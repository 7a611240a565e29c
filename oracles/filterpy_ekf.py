"""filterpy oracle: one EKF predict + update per case, computed by filterpy's
ExtendedKalmanFilter on the model and data trilink used (its transition F, process noise Q,
propagated state, measurement Jacobian H, predicted measurement h(x), R and z).

Used by crates/fusion/tests/it/oracle_filterpy.rs: `python oracles/filterpy_ekf.py CASES.json`
prints one JSON object per case with filterpy's P_pred, x_upd and P_upd.
"""

import json
import math
import sys

import numpy as np
from filterpy.kalman import ExtendedKalmanFilter


def main():
    cases = json.load(open(sys.argv[1]))
    out = []
    for c in cases:
        n, m = len(c["x"]), len(c["z"])
        ekf = ExtendedKalmanFilter(dim_x=n, dim_z=m)
        ekf.x = np.array(c["x"], float).reshape(n, 1)
        ekf.P = np.array(c["P"], float).reshape(n, n)
        ekf.F = np.array(c["F"], float).reshape(n, n)
        ekf.Q = np.array(c["Q"], float).reshape(n, n)
        x_pred = np.array(c["x_pred"], float).reshape(n, 1)

        # The nonlinear state propagation is trilink's (RK4 over J2 gravity); filterpy's EKF
        # takes it as the user's predict_x and does the covariance algebra itself.
        def predict_x(u=0, x_pred=x_pred):
            ekf.x = x_pred.copy()

        ekf.predict_x = predict_x
        ekf.predict()
        p_pred = ekf.P.copy()
        angles = set(c["angle_rows"])

        def residual(a, b):
            y = a - b
            for i in angles:
                y[i, 0] = (y[i, 0] + math.pi) % (2 * math.pi) - math.pi
            return y

        H = np.array(c["H"], float).reshape(m, n)
        hx = np.array(c["hx"], float).reshape(m, 1)
        ekf.update(
            np.array(c["z"], float).reshape(m, 1),
            HJacobian=lambda x: H,
            Hx=lambda x: hx,
            R=np.array(c["R"], float).reshape(m, m),
            residual=residual,
        )
        out.append({"P_pred": p_pred.ravel().tolist(), "x_upd": ekf.x.ravel().tolist(), "P_upd": ekf.P.ravel().tolist()})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
