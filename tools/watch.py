#!/usr/bin/env python3
"""Prints a node's picture once: one line per track and alert (used by demo.sh).

    python3 tools/watch.py [http://127.0.0.1:8082]
"""
import json
import sys
import urllib.request


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=5) as r:
        return json.load(r)


def main(base):
    tracks = get(base, "/v1/tracks")["tracks"]
    alerts = get(base, "/v1/alerts")["alerts"]
    if not tracks and not alerts:
        print("no tracks")
    for t in tracks:
        i = t.get("impact") or {}
        impact = f"impact {i['lat_deg']:.2f}N {i['lon_deg']:.2f}E" if i else "no impact prediction yet"
        print(f"track {t['track']}: {t['phase']:9} alt {t['alt_m'] / 1e3:6.1f} km  {impact}")
    for a in alerts:
        print(f"  ALERT {a['level'].upper()} {a['area']}: impact in {a['time_to_impact_s']:.0f} s, "
              f"confidence {a['confidence'] * 100:.0f}%")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8082")
