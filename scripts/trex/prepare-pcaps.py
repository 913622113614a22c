#!/usr/bin/python3
"""Splits captures into the one-flow pcaps TRex ASTF replays, plus a manifest for the profile.

TRex ASTF builds one template per capture file and needs every file to hold exactly one TCP or
UDP session over IPv4/IPv6 on Ethernet, a TCP session from its SYN, SYN+ACK on, without loss or
retransmission. The scenario and shared captures hold many flows each, so this script cuts them
into such files, keeps the IPv4 flows TRex accepts (pcapflows.astf_check; IPv6 would need
ASTF's separate IPv6 mode), drops duplicates (same protocol, port and payloads) and keeps one
flow per conversation kind (capture, protocol, server address and port: the lateral scenario's
daily SMB session is one template, not fourteen) so that the mix stays a few dozen templates. It writes DIR/*.pcap and DIR/vigil-mix.json, which
astf_vigil_mix.py reads (tunable --pcap-dir DIR).

usage: /usr/bin/python3 scripts/trex/prepare-pcaps.py --out DIR [--generate] [--per-kind N]
                                                      [--max-flows N] [CAPTURE|DIR ...]
  --generate     also generate the scenario captures (tests/gen/lateral.py, tests/gen/respond.py)
                 into DIR/src/ and include them
  CAPTURE|DIR    pcap/pcapng files; directories are searched for *.pcap, *.pcapng, *.cap
                 (e.g. ../shared/data/pcaps/401trg ../shared/data/pcaps/suricata-verify)

Prints one line per input and a summary; the manifest lists every kept flow with its source
capture, protocol, server port, packets and payload bytes per side.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import pcapflows as pf  # noqa: E402

MANIFEST = "vigil-mix.json"
UDP_IDLE_S = 120.0  # a UDP 5-tuple silent this long starts a new flow


def find_captures(paths):
    """Expands directories into their capture files, sorted; keeps files as given."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            for d, _dirs, files in sorted(os.walk(p)):
                for f in sorted(files):
                    if f.endswith((".pcap", ".pcapng", ".cap")):
                        out.append(os.path.join(d, f))
        else:
            out.append(p)
    return out


def split_flows(path):
    """Yields lists of (timestamp, frame), one per TCP connection or UDP exchange, in order of
    their first packet; frames that are not Ethernet/IPv4/TCP|UDP are counted in `other`."""
    flows = {}  # key -> current instance index
    instances = []  # [packets, syn_seq, last_ts]
    other = {}
    for ts, linktype, frame in pf.read_packets(path):
        if linktype != pf.LINKTYPE_ETHERNET:
            other["not Ethernet"] = other.get("not Ethernet", 0) + 1
            continue
        p, why = pf.parse_frame(frame)
        if p is None:
            other[why] = other.get(why, 0) + 1
            continue
        key = (p["proto"],) + tuple(sorted([(p["src"], p["sport"]), (p["dst"], p["dport"])]))
        idx = flows.get(key)
        new = idx is None
        if not new and p["proto"] == "tcp":
            syn_only = (p["flags"] & pf.TH_SYN) and not (p["flags"] & pf.TH_ACK)
            if syn_only and instances[idx][1] not in (None, p["seq"]):
                new = True  # the same ports again: a new connection
        elif not new and ts - instances[idx][2] > UDP_IDLE_S:
            new = True
        if new:
            syn = p["seq"] if p["proto"] == "tcp" and p["flags"] & pf.TH_SYN else None
            flows[key] = len(instances)
            instances.append([[], syn, ts])
            idx = flows[key]
        instances[idx][0].append((ts, frame))
        instances[idx][2] = ts
    return [i[0] for i in instances], other


def signature(info, frames):
    """Same protocol, server port and payloads in the same order: the same template for TRex."""
    h = hashlib.sha256(f"{info.get('proto')}/{info.get('dport')}".encode())
    for frame in frames:
        p, _ = pf.parse_frame(frame)
        if p and p["payload"]:
            h.update(b"c" if p["src"] == info["client"] else b"s")
            h.update(p["payload"])
    return h.hexdigest()


def tag_of(path):
    """A short file-name-safe tag naming the source capture (with its directory when the file
    name says nothing, as suricata-verify's input.pcap)."""
    base = os.path.basename(path).rsplit(".", 1)[0]
    if base in ("input", "test", "capture"):
        base = os.path.basename(os.path.dirname(os.path.abspath(path))) + "_" + base
    return re.sub(r"[^A-Za-z0-9_-]+", "_", base)[:40]


def generate(out_dir):
    """Runs the scenario generators of tests/gen into OUT/src; returns the capture paths."""
    src = os.path.join(out_dir, "src")
    os.makedirs(src, exist_ok=True)
    made = []
    for gen in ("lateral.py", "respond.py"):
        script = os.path.join(ROOT, "tests", "gen", gen)
        target = os.path.join(src, gen.replace(".py", ".pcap"))
        subprocess.run([sys.executable, script, target], check=True, stdout=subprocess.DEVNULL)
        made.append(target)
    return made


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (pcaps and vigil-mix.json)")
    ap.add_argument("--generate", action="store_true",
                    help="generate tests/gen/lateral.py and respond.py captures and include them")
    ap.add_argument("--per-kind", type=int, default=1,
                    help="flows kept per (capture, protocol, server address, server port), "
                         "default 1")
    ap.add_argument("--max-flows", type=int, default=128, help="flows kept in all, default 128")
    ap.add_argument("captures", nargs="*", help="capture files or directories")
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    for f in os.listdir(args.out):  # a previous run's flows would linger in the manifest's dir
        if f.endswith(".pcap") or f == MANIFEST:
            os.unlink(os.path.join(args.out, f))
    inputs = (generate(args.out) if args.generate else []) + find_captures(args.captures)
    if not inputs:
        ap.error("no capture given (and no --generate)")

    kept, seen, per_port, per_kind, refused, skipped_frames = [], set(), {}, {}, {}, {}
    for path in inputs:
        try:
            flows, other = split_flows(path)
        except (pf.PcapError, OSError) as e:
            print(f"  {path}: unreadable: {e}", file=sys.stderr)
            refused["unreadable capture"] = refused.get("unreadable capture", 0) + 1
            continue
        for why, n in other.items():
            skipped_frames[why] = skipped_frames.get(why, 0) + n
        n_kept = 0
        for packets in flows:
            frames = [f for _, f in packets]
            why, info = pf.astf_check(frames)
            if why:
                reason = re.sub(r"^packet \d+: ", "", why)
                reason = re.sub(r"\d+", "N", reason)
                refused[reason] = refused.get(reason, 0) + 1
                continue
            sig = signature(info, frames)
            port_key = f"{info['proto']}/{info['dport']}"
            kind = (path, port_key, info["server"])
            if info["proto"] == "udp" and info["sport"] < 1024 <= info["dport"]:
                refused["UDP flow starting with the server's answer"] = \
                    refused.get("UDP flow starting with the server's answer", 0) + 1
                continue
            if sig in seen:
                refused["duplicate of a kept flow"] = refused.get("duplicate of a kept flow", 0) + 1
                continue
            if per_kind.get(kind, 0) >= args.per_kind:
                refused["same kind as a kept flow"] = refused.get("same kind as a kept flow", 0) + 1
                continue
            if len(kept) >= args.max_flows:
                refused["over --max-flows"] = refused.get("over --max-flows", 0) + 1
                continue
            seen.add(sig)
            per_kind[kind] = per_kind.get(kind, 0) + 1
            per_port[port_key] = per_port.get(port_key, 0) + 1
            name = f"{tag_of(path)}-{len(kept):03d}-{info['proto']}{info['dport']}.pcap"
            pf.write_pcap(os.path.join(args.out, name), packets)
            kept.append({"file": name, "source": tag_of(path), "proto": info["proto"],
                         "dport": info["dport"], "packets": info["packets"],
                         "client_bytes": info["client_bytes"],
                         "server_bytes": info["server_bytes"],
                         "original": f"{info['client']} -> {info['server']}:{info['dport']}"})
            n_kept += 1
        print(f"  {tag_of(path)}: {len(flows)} flows, {n_kept} kept")

    manifest = {"version": 1, "generated_by": "scripts/trex/prepare-pcaps.py", "flows": kept,
                "refused_flows": refused, "skipped_frames": skipped_frames}
    with open(os.path.join(args.out, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
    ports = ", ".join(f"{k} x{v}" for k, v in sorted(per_port.items()))
    print(f"prepare-pcaps: {len(kept)} flows from {len(inputs)} captures into {args.out} ({ports})")
    if refused:
        print("  not kept: " + "; ".join(f"{k}: {v}" for k, v in sorted(refused.items())))
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())
