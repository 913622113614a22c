#!/usr/bin/python3
"""Packet loss through vigil over a traffic run, from the dataplane's own counters.

Reads the dataplane's counters before and after a run, either straight from its command socket
(newline-delimited JSON, ops `hello` and `counters`, docs/respond.md) or from vigil-control's
Prometheus endpoint (which asks the dataplane over the same socket at every scrape), and reports
per port what was received and forwarded, what was lost and why, and the loss in percent.

  vigil-loss.py [SOURCE] snapshot [--settle S] FILE save the counters (FILE '-' = stdout), after
                                                    waiting up to S s for them to stop moving
  vigil-loss.py diff BEFORE AFTER [--sent N]        the report between two snapshots
  vigil-loss.py [SOURCE] run [--settle S] -- CMD... snapshot, run CMD (e.g. a TRex run or a
                                                    tcpreplay), wait until the counters settle,
                                                    snapshot, report
SOURCE: --command-socket PATH (default /run/vigil/commands.sock) or --metrics-url URL
        (e.g. http://127.0.0.1:8642/metrics).
Report options: --sent N (frames the traffic generator sent: end-to-end loss), --received N
(frames it got back), --json (the report as JSON), --json-out FILE (also write it there).

Loss reasons, per receiving port: the NIC's `imissed` (RX descriptors exhausted), `rx_nombuf`
(no mbuf for a received frame), `ierrors` (bad frames), every reason of vigil's `dropped` map
(tx_full: the peer port's TX queue was full; blocked: a block-table entry; flow_table_full,
flow_action, stream_policy, defrag_policy), and the transmitting NIC's `oerrors`. The
dataplane's accounting closes per port: received = forwarded + dropped + change of in_flight;
the report says whether it did over the run.
"""
import argparse
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request

DEVICE_RX_LOSS = ("imissed", "rx_nombuf", "ierrors")
DEVICE_KEYS = ("ipackets", "opackets", "imissed", "ierrors", "oerrors", "rx_nombuf")
DEFAULT_SOCKET = "/run/vigil/commands.sock"


class LossError(Exception):
    """A snapshot that cannot be taken or compared."""


# ---------------------------------------------------------------- reading the counters

def command(sock_path, requests, timeout=5.0):
    """Sends requests (dicts) on one connection to the dataplane's command socket; returns the
    responses in order. Each request and response is one JSON line."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
        buf = b""
        out = []
        while len(out) < len(requests):
            chunk = s.recv(1 << 20)
            if not chunk:
                raise LossError(f"{sock_path}: connection closed after {len(out)} answers")
            buf += chunk
            while b"\n" in buf and len(out) < len(requests):
                line, buf = buf.split(b"\n", 1)
                out.append(json.loads(line))
    except (OSError, ValueError) as e:
        raise LossError(f"{sock_path}: {e}") from e
    finally:
        s.close()
    for req, resp in zip(requests, out):
        if not resp.get("ok"):
            raise LossError(f"{sock_path}: {req['op']} refused: {resp.get('error')}")
    return out


def port_from_counters(p):
    """One port of the dataplane's counters object, in the snapshot's form."""
    return {"peer": p.get("peer"),
            "rx_packets": p["rx_packets"], "rx_bytes": p["rx_bytes"],
            "forwarded": p["forwarded"], "forwarded_bytes": p["forwarded_bytes"],
            "dropped": dict(p.get("dropped", {})), "in_flight": p.get("in_flight", 0),
            "device": {k: p.get("device", {}).get(k, 0) for k in DEVICE_KEYS}}


def snapshot_from_counters(counters, source, boot_id=None):
    """A snapshot from the dataplane's counters object (the socket's `counters`, or the JSON it
    prints when it stops)."""
    return {"version": 1, "source": source, "taken": time.time(), "boot_id": boot_id,
            "sensor": counters.get("sensor"),
            "ports": {p["name"]: port_from_counters(p) for p in counters.get("ports", [])},
            "resets_sent": counters.get("respond", {}).get("resets_sent", 0)}


def snapshot_socket(path):
    hello, counters = command(path, [{"v": 1, "id": 1, "op": "hello"},
                                     {"v": 1, "id": 2, "op": "counters"}])
    return snapshot_from_counters(counters["counters"], f"socket:{path}", hello.get("boot_id"))


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape(value):
    """A label value as written in the text format: backslash, quote and newline escaped."""
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_prometheus(text):
    """Prometheus text format -> [(name, {label: value}, float)]."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise LossError(f"not a Prometheus sample: {line[:120]}")
        labels = {k: unescape(v) for k, v in LABEL.findall(m.group(3) or "")}
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def snapshot_metrics(url):
    """A snapshot from vigil-control's /metrics (names: control/api/dataplane_metrics.cc)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
    except OSError as e:
        raise LossError(f"{url}: {e}") from e
    samples = parse_prometheus(text)
    up = [v for n, _, v in samples if n == "vigil_dataplane_up"]
    if not up:
        raise LossError(f"{url}: no vigil_dataplane_up: not vigil-control's /metrics?")
    if up[0] != 1:
        raise LossError(f"{url}: vigil_dataplane_up is 0: control cannot read the dataplane")
    ports, sensor, resets = {}, None, 0
    prefix = "vigil_dataplane_port_"
    for name, labels, value in samples:
        sensor = labels.get("sensor", sensor)
        if name == "vigil_dataplane_respond_resets_sent_total":
            resets = int(value)
        if not name.startswith(prefix) or "port" not in labels:
            continue
        p = ports.setdefault(labels["port"], {
            "peer": None, "rx_packets": 0, "rx_bytes": 0, "forwarded": 0, "forwarded_bytes": 0,
            "dropped": {}, "in_flight": 0, "device": {k: 0 for k in DEVICE_KEYS}})
        key = name[len(prefix):]
        if key == "dropped_total":
            p["dropped"][labels.get("reason", "unknown")] = int(value)
        elif key.startswith("device_") and key.endswith("_total"):
            p["device"][key[len("device_"):-len("_total")]] = int(value)
        elif key.endswith("_total") and key[:-len("_total")] in ("rx_packets", "rx_bytes",
                                                                  "forwarded", "forwarded_bytes"):
            p[key[:-len("_total")]] = int(value)
        elif key == "in_flight":
            p["in_flight"] = int(value)
    if not ports:
        raise LossError(f"{url}: no vigil_dataplane_port_* samples")
    return {"version": 1, "source": f"metrics:{url}", "taken": time.time(), "boot_id": None,
            "sensor": sensor, "ports": ports, "resets_sent": resets}


def take(args):
    if args.metrics_url:
        return snapshot_metrics(args.metrics_url)
    return snapshot_socket(args.command_socket)


# ---------------------------------------------------------------- the report

def diff(before, after, sent=None, received=None):
    """The loss report between two snapshots, as a dict."""
    if before.get("boot_id") and after.get("boot_id") and before["boot_id"] != after["boot_id"]:
        raise LossError(f"the dataplane restarted between the snapshots (boot id "
                        f"{before['boot_id']} -> {after['boot_id']}): its counters started over")
    ports = {}
    tot = {"received": 0, "forwarded": 0, "lost": 0, "offered": 0}
    reasons_total = {}
    for name, a in sorted(after["ports"].items()):
        b = before["ports"].get(name)
        if b is None:
            raise LossError(f"port {name} missing from the first snapshot")
        d = {k: a[k] - b[k] for k in ("rx_packets", "rx_bytes", "forwarded", "forwarded_bytes")}
        dev = {k: a["device"].get(k, 0) - b["device"].get(k, 0) for k in DEVICE_KEYS}
        drops = {r: a["dropped"].get(r, 0) - b["dropped"].get(r, 0)
                 for r in sorted(set(a["dropped"]) | set(b["dropped"]))}
        if any(v < 0 for v in list(d.values()) + list(dev.values()) + list(drops.values())):
            raise LossError(f"port {name}: a counter went down: the dataplane restarted between "
                            "the snapshots")
        in_flight = a["in_flight"] - b["in_flight"]
        dropped = sum(drops.values())
        reasons = {f"nic_{k}": dev[k] for k in DEVICE_RX_LOSS}
        reasons.update({f"dropped_{r}": n for r, n in drops.items()})
        reasons["nic_oerrors_on_tx"] = dev["oerrors"]
        lost = sum(reasons.values())
        offered = d["rx_packets"] + sum(dev[k] for k in DEVICE_RX_LOSS)
        ports[name] = {
            "peer": a.get("peer"), "received": d["rx_packets"], "received_bytes": d["rx_bytes"],
            "forwarded": d["forwarded"], "forwarded_bytes": d["forwarded_bytes"],
            "dropped": dropped, "in_flight_change": in_flight,
            "closes": d["rx_packets"] == d["forwarded"] + dropped + in_flight,
            "nic": dev, "reasons": reasons, "offered": offered, "lost": lost,
            "loss_pct": 100.0 * lost / offered if offered else 0.0}
        for r, n in reasons.items():
            reasons_total[r] = reasons_total.get(r, 0) + n
        tot["received"] += d["rx_packets"]
        tot["forwarded"] += d["forwarded"]
        tot["lost"] += lost
        tot["offered"] += offered
    report = {"source": after["source"], "sensor": after.get("sensor"),
              "seconds": after["taken"] - before["taken"], "ports": ports,
              "total": dict(tot, reasons=reasons_total,
                            loss_pct=100.0 * tot["lost"] / tot["offered"] if tot["offered"]
                            else 0.0,
                            closes=all(p["closes"] for p in ports.values()),
                            resets_sent=after.get("resets_sent", 0) -
                            before.get("resets_sent", 0))}
    if sent is not None:
        delivered = tot["forwarded"]
        e2e = {"sent": sent, "offered_to_vigil": tot["offered"], "forwarded_by_vigil": delivered,
               "never_seen_by_vigil": sent - tot["offered"], "lost": sent - delivered,
               "loss_pct": 100.0 * (sent - delivered) / sent if sent else 0.0}
        if received is not None:
            e2e["received"] = received
            e2e["lost_after_vigil"] = delivered - received
            e2e["lost"] = sent - received
            e2e["loss_pct"] = 100.0 * (sent - received) / sent if sent else 0.0
        report["end_to_end"] = e2e
    return report


def text(report):
    """The report for people."""
    out = [f"vigil loss report ({report['source']}, sensor {report['sensor']}, "
           f"{report['seconds']:.1f} s between snapshots)"]
    for name, p in report["ports"].items():
        peer = f" -> {p['peer']}" if p["peer"] else ""
        out.append(f"  port {name}{peer}: received {p['received']} ({p['received_bytes']} bytes), "
                   f"forwarded {p['forwarded']} ({p['forwarded_bytes']} bytes), "
                   f"dropped {p['dropped']}, in flight {p['in_flight_change']:+d}; "
                   f"NIC rx {p['nic']['ipackets']} tx {p['nic']['opackets']}")
        lost = ", ".join(f"{r} {n}" for r, n in p["reasons"].items() if n) or "none"
        out.append(f"    lost {p['lost']} of {p['offered']} offered ({p['loss_pct']:.4f} %): "
                   f"{lost}; accounting {'closes' if p['closes'] else 'DOES NOT CLOSE'} "
                   "(received = forwarded + dropped + in-flight change)")
    t = report["total"]
    reasons = ", ".join(f"{r} {n}" for r, n in t["reasons"].items() if n) or "none"
    out.append(f"  total: received {t['received']}, forwarded {t['forwarded']}, lost {t['lost']} "
               f"of {t['offered']} ({t['loss_pct']:.4f} %); by reason: {reasons}; "
               f"TCP resets sent {t['resets_sent']}")
    e = report.get("end_to_end")
    if e:
        line = (f"  end to end: sent {e['sent']}, vigil saw {e['offered_to_vigil']} "
                f"(never seen {e['never_seen_by_vigil']}), forwarded {e['forwarded_by_vigil']}")
        if "received" in e:
            line += f", received back {e['received']} (lost after vigil {e['lost_after_vigil']})"
        out.append(line + f": lost {e['lost']} ({e['loss_pct']:.4f} %)")
    return "\n".join(out)


def settle(args, timeout):
    """Waits until the received counts stop moving and nothing is in flight (at most timeout s);
    returns the last snapshot."""
    deadline = time.time() + timeout
    last = take(args)
    while time.time() < deadline:
        time.sleep(0.25)
        cur = take(args)
        key = lambda s: [(p["rx_packets"], p["forwarded"], p["in_flight"])  # noqa: E731
                         for _, p in sorted(s["ports"].items())]
        if key(cur) == key(last) and all(p["in_flight"] == 0 for p in cur["ports"].values()):
            return cur
        last = cur
    return last


def emit(report, args):
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1) if args.json else text(report))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--command-socket", default=DEFAULT_SOCKET,
                     help=f"the dataplane's command socket (default {DEFAULT_SOCKET})")
    src.add_argument("--metrics-url", help="vigil-control's Prometheus endpoint")
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("snapshot", help="save the counters now")
    s.add_argument("--settle", type=float, default=0.0,
                   help="first wait up to this many seconds for the counters to stop moving")
    s.add_argument("file", help="output file, '-' for stdout")
    helps = {"diff": "the report between two snapshots",
             "run": "snapshot, run a command, let the counters settle, snapshot, report"}
    for name in ("diff", "run"):
        p = sub.add_parser(name, help=helps[name])
        p.add_argument("--sent", type=int, help="frames the traffic generator sent")
        p.add_argument("--received", type=int, help="frames the traffic generator received")
        p.add_argument("--json", action="store_true", help="print the report as JSON")
        p.add_argument("--json-out", help="also write the JSON report to this file")
        if name == "diff":
            p.add_argument("before")
            p.add_argument("after")
        else:
            p.add_argument("--settle", type=float, default=5.0,
                           help="seconds to wait at most for the counters to settle (default 5)")
            p.add_argument("--before-out", help="keep the first snapshot in this file")
            p.add_argument("--after-out", help="keep the second snapshot in this file")
            p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    args = ap.parse_args()
    try:
        if args.mode == "snapshot":
            snap = settle(args, args.settle) if args.settle > 0 else take(args)
            data = json.dumps(snap, indent=1)
            if args.file == "-":
                print(data)
            else:
                with open(args.file, "w") as f:
                    f.write(data + "\n")
                ports = ", ".join(f"{n} rx {p['rx_packets']}" for n, p in snap["ports"].items())
                print(f"vigil-loss: snapshot of {snap['source']} in {args.file} ({ports})",
                      file=sys.stderr)
            return 0
        if args.mode == "diff":
            with open(args.before) as f:
                before = json.load(f)
            with open(args.after) as f:
                after = json.load(f)
            emit(diff(before, after, args.sent, args.received), args)
            return 0
        cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
        if not cmd:
            ap.error("run: give the command after --")
        before = take(args)
        if args.before_out:
            with open(args.before_out, "w") as f:
                json.dump(before, f, indent=1)
        rc = subprocess.call(cmd)
        after = settle(args, args.settle)
        if args.after_out:
            with open(args.after_out, "w") as f:
                json.dump(after, f, indent=1)
        emit(diff(before, after, args.sent, args.received), args)
        if rc != 0:
            print(f"vigil-loss: the command exited with status {rc}", file=sys.stderr)
        return rc
    except (LossError, OSError, ValueError, KeyError) as e:
        print(f"vigil-loss: {type(e).__name__ + ': ' if not isinstance(e, LossError) else ''}{e}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
