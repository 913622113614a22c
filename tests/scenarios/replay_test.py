#!/usr/bin/env python3
"""Replay every capture in ../shared/data/pcaps through vigil-dataplane and check that:
  1. the output pcap holds exactly the input frames, in the same order (one worker: total order,
     which implies the same order per flow);
  2. packet accounting closes: rx = forwarded + dropped + in flight, nothing in flight at exit;
  3. vigil's TCP and UDP flow counts equal tshark's conversation counts (tshark -z conv,tcp and
     conv,udp) when timeouts are long enough that no flow ends early;
  4. every EVE flow record is valid JSON with the fields Suricata's flow event has, and the
     packets in the records add up to the tracked packets.
Captures that are not Ethernet are skipped with a message (the bridge carries Ethernet).
Then a handful of captures are mutated (editcap -E, fixed seeds) and replayed: the dataplane must
not crash, must still forward every frame unchanged with accounting closed, and the decoder's
anomaly counters must rise (RELIABILITY.md, malformed and mutated pcaps).

usage: replay_test.py BUILD_DIR [CAPTURE...]
Prints one line per capture and a closing 'N passed, N failed, N skipped' line.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "pcaps")

CONFIG = """
sensor: {name: replay-test}
ports:
  - {name: a, device: "net_null0"}
  - {name: b, device: "net_null1"}
bridges: [[a, b]]
workers: {lcores: [1]}
flow:
  capacity: 65536
  hash_seed: 12345
  timeouts:
    tcp: {new: 604800, established: 604800, closed: 604800}
    udp: {new: 604800, established: 604800}
    icmp: {new: 604800, established: 604800}
    other: {new: 604800, established: 604800}
outputs:
  eve: {enabled: true, path: /dev/null}
"""


# DPDK's net_pcap writer copies at most RTE_ETHER_MAX_JUMBO_FRAME_LEN bytes of a frame (and keeps
# its original length in the record). Only captures of TSO/GRO-coalesced segments have larger
# frames; no Ethernet link carries them.
PCAP_PMD_MAX_WRITE = 16128


def read_pcap(path, with_orig_len=False):
    """Frames of a classic pcap file as a list of bytes (any byte order, us or ns); with
    with_orig_len, a list of (bytes, original length)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    frames, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        frames.append((data[off:off + incl], orig) if with_orig_len else data[off:off + incl])
        off += incl
    return linktype & 0xFFFF, frames


def tshark_conversations(path):
    out = subprocess.run(["tshark", "-n", "-q", "-r", path, "-z", "conv,tcp", "-z", "conv,udp"],
                         capture_output=True, text=True, check=True).stdout
    counts, section = {"TCP": 0, "UDP": 0}, None
    for line in out.splitlines():
        if line.startswith("TCP Conversations"):
            section = "TCP"
        elif line.startswith("UDP Conversations"):
            section = "UDP"
        elif section and "<->" in line:
            counts[section] += 1
    return counts


def replay(build, pcap_in, tmp, pcap_out=None, eve=None):
    cfg = os.path.join(tmp, "vigil.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG)
    args = [os.path.join(build, "dataplane", "vigil-dataplane"), "--config", cfg,
            "--pcap-in", pcap_in]
    if pcap_out:
        args += ["--pcap-out", pcap_out]
    args += ["--eve", eve or os.path.join(tmp, "eve.json")]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def check_mutated(build, capture, seed, tmp):
    """A mutated capture: no crash, frames forwarded unchanged, anomalies counted."""
    name = f"{os.path.relpath(capture, DATA)} mutated (seed {seed})"
    classic, mutated = os.path.join(tmp, "in.pcap"), os.path.join(tmp, "mut.pcap")
    subprocess.run(["editcap", "-F", "pcap", capture, classic], check=True, capture_output=True)
    subprocess.run(["editcap", "-F", "pcap", "-E", "0.03", "--seed", str(seed), classic, mutated], check=True,
                   capture_output=True)
    out_pcap = os.path.join(tmp, "out.pcap")
    if os.path.exists(out_pcap):
        os.remove(out_pcap)
    run = replay(build, mutated, tmp, out_pcap)
    if run.returncode != 0:
        return "fail", f"{name}: exit {run.returncode}: {run.stderr.strip()[-500:]}", 0
    c = json.loads(run.stdout.strip().splitlines()[-1])
    port, worker = c["ports"][0], c["workers"][0]
    _, frames_in = read_pcap(mutated)
    _, frames_out = read_pcap(out_pcap)
    same = all(a == b or (len(a) > PCAP_PMD_MAX_WRITE and a[:PCAP_PMD_MAX_WRITE] == b)
               for a, b in zip(frames_in, frames_out)) and len(frames_in) == len(frames_out)
    anomalies = sum(worker["anomalies"].values()) + worker["decode"]["malformed"]
    problems = []
    if not same:
        problems.append("output frames differ from the mutated input")
    if port["rx_packets"] != len(frames_in) or port["forwarded"] != len(frames_in):
        problems.append(f"rx {port['rx_packets']} fwd {port['forwarded']} of {len(frames_in)}")
    if problems:
        return "fail", f"{name}: " + "; ".join(problems), anomalies
    return "pass", (f"{name}: {len(frames_in)} frames forwarded unchanged, "
                    f"{worker['decode']['malformed']} malformed, anomalies "
                    f"{worker['anomalies']}"), anomalies


def check(build, capture, tmp):
    name = os.path.relpath(capture, DATA)
    classic = os.path.join(tmp, "in.pcap")
    subprocess.run(["editcap", "-F", "pcap", capture, classic], check=True, capture_output=True)
    linktype, frames_in = read_pcap(classic)
    if linktype != 1:
        return "skip", f"{name}: linktype {linktype} is not Ethernet"
    out_pcap, eve = os.path.join(tmp, "out.pcap"), os.path.join(tmp, "eve.json")
    for p in (out_pcap, eve):
        if os.path.exists(p):
            os.remove(p)
    run = replay(build, classic, tmp, out_pcap, eve)
    if run.returncode != 0:
        return "fail", f"{name}: exit {run.returncode}: {run.stderr.strip()[-500:]}"
    counters = json.loads(run.stdout.strip().splitlines()[-1])
    problems = []

    _, frames_out = read_pcap(out_pcap, with_orig_len=True)
    truncated_by_writer = 0
    if len(frames_out) != len(frames_in):
        problems.append(f"{len(frames_in)} frames in, {len(frames_out)} out")
    for i, (a, (b, orig)) in enumerate(zip(frames_in, frames_out)):
        if a == b and orig == len(a):
            continue
        if (len(a) > PCAP_PMD_MAX_WRITE and len(b) == PCAP_PMD_MAX_WRITE and
                a[:PCAP_PMD_MAX_WRITE] == b and orig == len(a)):
            truncated_by_writer += 1
            continue
        problems.append(f"frame {i + 1} differs ({len(a)} bytes in, {len(b)}/{orig} out)")
        break

    port = counters["ports"][0]
    if port["rx_packets"] != len(frames_in):
        problems.append(f"rx_packets {port['rx_packets']} != {len(frames_in)} frames")
    if port["rx_packets"] != port["forwarded"] + port["dropped_total"] + port["in_flight"]:
        problems.append("accounting does not close")
    if port["in_flight"] != 0 or port["dropped_total"] != 0:
        problems.append(f"in_flight={port['in_flight']} dropped={port['dropped_total']}")

    records = []
    with open(eve) as f:
        for n, line in enumerate(f, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                problems.append(f"eve line {n}: invalid JSON: {e}")
    # Protocol events (smb, dns, anomaly, ...) share the file; the accounting is over flow records.
    app_events = [r for r in records if r.get("event_type") != "flow"]
    records = [r for r in records if r.get("event_type") == "flow"]
    for r in app_events:
        if not all(k in r for k in ("timestamp", "flow_id", "event_type", "src_ip", "message")):
            problems.append(f"protocol event missing common fields: {r}")
            break
    for r in records:
        missing = [k for k in ("timestamp", "flow_id", "event_type", "src_ip", "dest_ip", "proto",
                               "flow") if k not in r]
        missing += [k for k in ("pkts_toserver", "pkts_toclient", "bytes_toserver",
                                "bytes_toclient", "start", "end", "state", "reason")
                    if k not in r.get("flow", {})]
        if missing:
            problems.append(f"flow record missing {missing}: {r}")
            break
    worker = counters["workers"][0]
    # Fragments are not tracked themselves; each reassembled datagram is, as one packet.
    tracked = (worker["decode"]["l3"] + worker["decode"]["l4"] - worker["fragments_untracked"]
               - worker["defrag"]["fragments"] + worker["defrag"]["datagrams"])
    in_records = sum(r["flow"]["pkts_toserver"] + r["flow"]["pkts_toclient"] for r in records)
    if in_records != tracked:
        problems.append(f"flow records hold {in_records} packets, {tracked} were tracked")
    if len(records) != worker["flows"]["created"]:
        problems.append(f"{len(records)} records for {worker['flows']['created']} flows")

    ours = {"TCP": sum(r["proto"] == "TCP" for r in records),
            "UDP": sum(r["proto"] == "UDP" for r in records)}
    theirs = tshark_conversations(classic)
    if ours != theirs:
        problems.append(f"flows {ours} != tshark conversations {theirs}")
    if problems:
        return "fail", f"{name}: " + "; ".join(problems)
    note = (f" ({truncated_by_writer} frames over {PCAP_PMD_MAX_WRITE} bytes: first "
            f"{PCAP_PMD_MAX_WRITE} identical, the limit of net_pcap's writer)"
            if truncated_by_writer else "")
    return "pass", (f"{name}: {len(frames_in)} frames identical{note}, flows TCP {ours['TCP']} "
                    f"UDP {ours['UDP']} = tshark, {len(records)} records")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    build = sys.argv[1]
    captures = sys.argv[2:]
    if not captures:
        if not os.path.isdir(DATA):
            print(f"SKIP: {DATA} is absent: no captures to replay")
            print("0 passed, 0 failed, 1 skipped")
            return 0
        for d, _, files in os.walk(DATA):
            captures += [os.path.join(d, f) for f in files
                         if f.endswith((".pcap", ".pcapng", ".cap", ".trace"))]
        captures.sort()
    results = {"pass": 0, "fail": 0, "skip": 0}
    with tempfile.TemporaryDirectory(prefix="vigil-replay-") as tmp:
        for c in captures:
            try:
                status, msg = check(build, c, tmp)
            except Exception as e:  # a harness error is a failure, with its reason
                status, msg = "fail", f"{c}: {type(e).__name__}: {e}"
            results[status] += 1
            print(f"{status.upper():4} {msg}", flush=True)
        # Mutations of the Ethernet captures with the most frames under 2000 (fast to replay).
        mutable = []
        for c in captures:
            try:
                subprocess.run(["editcap", "-F", "pcap", c, os.path.join(tmp, "probe.pcap")],
                               check=True, capture_output=True)
                lt, frames = read_pcap(os.path.join(tmp, "probe.pcap"))
            except Exception:
                continue
            if lt == 1 and len(frames) < 2000:
                mutable.append((len(frames), c))
        total_anomalies = 0
        for i, (_, c) in enumerate(sorted(mutable, reverse=True)[:6]):
            try:
                status, msg, n = check_mutated(build, c, 1000 + i, tmp)
                total_anomalies += n
            except Exception as e:
                status, msg = "fail", f"{c} mutated: {type(e).__name__}: {e}"
            results[status] += 1
            print(f"{status.upper():4} {msg}", flush=True)
        if mutable:
            ok = total_anomalies > 0
            results["pass" if ok else "fail"] += 1
            print(f"{'PASS' if ok else 'FAIL'} mutated captures raised {total_anomalies} "
                  "decoder anomalies/malformed counts in all", flush=True)
    print(f"{results['pass']} passed, {results['fail']} failed, {results['skip']} skipped")
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
