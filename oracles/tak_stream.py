#!/usr/bin/env python3
"""An independent TAK peer for trilink's CoT output (crates/trilink/tests/it/cot_e2e.rs).

    tak_stream.py client URL FORMAT SECONDS [--cert C --key K --ca CA --hostname H]
        Connects like a TAK client, with pytak (URL tcp://host:port or tls://host:port), and
        reads the stream for SECONDS.
    tak_stream.py server PORT FORMAT SECONDS [--cert C --key K [--ca CA]]
        Listens like a TAK server for one pushing node and reads its stream: plain TCP, or
        TLS with --cert/--key (Python's ssl, OpenSSL), requiring a client certificate that
        CA issued with --ca; the verified client certificate's subject and subjectAltName
        are printed as {"peer": ...} before the events.

FORMAT is "xml" (CoT XML events one after another) or "protobuf" (TAK protocol version 1,
streaming framing). Every event is decoded by takproto (both formats) and printed as one JSON
line: uid, type, how, lat, lon, hae, ce, le, send/start/stale (ms since the epoch), callsign,
remarks. A framing error is printed as {"error": ...} and ends the read.
"""

import argparse
import asyncio
import configparser
import json
import ssl
import sys
import time

import pytak
import takproto
from google.protobuf.internal.decoder import _DecodeVarint


def event_json(msg):
    e = msg.cotEvent
    return {
        "uid": e.uid,
        "type": e.type,
        "how": e.how,
        "lat": e.lat,
        "lon": e.lon,
        "hae": e.hae,
        "ce": e.ce,
        "le": e.le,
        "send_ms": e.sendTime,
        "start_ms": e.startTime,
        "stale_ms": e.staleTime,
        "callsign": e.detail.contact.callsign,
        "remarks": e.detail.xmlDetail,
        "speed": e.detail.track.speed,
        "course": e.detail.track.course,
    }


def split_frames(buf, fmt):
    """Whole events at the front of buf, and the rest."""
    out = []
    if fmt == "protobuf":
        while buf:
            if buf[0] != 0xBF:
                raise ValueError(f"frame does not start with 0xBF: {buf[:8].hex()}")
            try:
                size, pos = _DecodeVarint(bytes(buf[1:11]), 0)
            except IndexError:
                break
            end = 1 + pos + size
            if len(buf) < end:
                break
            out.append(bytes(buf[:end]))
            buf = buf[end:]
    else:
        while True:
            i = buf.find(b"</event>")
            if i < 0:
                break
            end = i + len(b"</event>")
            out.append(bytes(buf[:end]).strip())
            buf = buf[end:]
    return out, buf


async def read_stream(reader, fmt, seconds):
    deadline = time.monotonic() + seconds
    buf = bytearray()
    n = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=left)
        except asyncio.TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
        try:
            frames, rest = split_frames(buf, fmt)
        except ValueError as e:
            print(json.dumps({"error": str(e)}), flush=True)
            return
        buf = bytearray(rest)
        for f in frames:
            msg = takproto.parse_proto(bytearray(f))
            if msg is None:
                print(json.dumps({"error": f"takproto could not parse {f[:40]!r}"}), flush=True)
                return
            print(json.dumps(event_json(msg)), flush=True)
            n += 1
    print(json.dumps({"done": n}), flush=True)


async def client(args):
    cfg = configparser.ConfigParser()
    cfg["trilink"] = {"COT_URL": args.url}
    if args.cert:
        cfg["trilink"].update(
            {
                "PYTAK_TLS_CLIENT_CERT": args.cert,
                "PYTAK_TLS_CLIENT_KEY": args.key,
                "PYTAK_TLS_CLIENT_CAFILE": args.ca,
                "PYTAK_TLS_SERVER_EXPECTED_HOSTNAME": args.hostname,
            }
        )
    reader, writer = await pytak.protocol_factory(cfg["trilink"])
    await read_stream(reader, args.format, args.seconds)
    writer.close()


async def server(args):
    done = asyncio.Event()

    async def handle(reader, writer):
        peer = writer.get_extra_info("peercert")
        if peer is not None:
            print(json.dumps({"peer": {"subject": peer.get("subject"), "san": peer.get("subjectAltName")}}), flush=True)
        await read_stream(reader, args.format, args.seconds)
        writer.close()
        done.set()

    tls = None
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
        if args.ca:
            tls.load_verify_locations(args.ca)
            tls.verify_mode = ssl.CERT_REQUIRED
    srv = await asyncio.start_server(handle, "127.0.0.1", args.port, ssl=tls)
    print(json.dumps({"listening": args.port}), flush=True)
    try:
        await asyncio.wait_for(done.wait(), timeout=args.seconds + 60)
    except asyncio.TimeoutError:
        print(json.dumps({"error": "no node connected"}), flush=True)
    srv.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["client", "server"])
    p.add_argument("where")
    p.add_argument("format", choices=["xml", "protobuf"])
    p.add_argument("seconds", type=float)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--hostname")
    args = p.parse_args()
    if args.mode == "client":
        args.url = args.where
        asyncio.run(client(args))
    else:
        args.port = int(args.where)
        asyncio.run(server(args))


if __name__ == "__main__":
    sys.exit(main())
