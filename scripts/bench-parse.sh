#!/usr/bin/env bash
# Parsing benchmark: vigil-dataplane in replay mode over a capture that merges every shared pcap
# (../shared/data/pcaps), bridge only (app_layer and defrag off) against all parsers on (defrag,
# TCP reassembly, SMB/DCE-RPC/Kerberos/DNS/HTTP/TLS parsers and their EVE events), alternating in
# one invocation. Prints packets/s, Gbit/s and EVE records of every run, the medians and the
# median ratio parsers-on / bridge-only. Never fails on timing.
#   scripts/bench-parse.sh [CAPTURE.pcap]   default: /tmp/vigil-bench-parse/merged-<BENCH_MB>MB.pcap,
#                                          built on first use (delete it to rebuild)
#   BENCH_ROUNDS=5        rounds (default 3), each one run of both configurations
#   BENCH_MB=500          size of the built capture in MB (default 2000): the merged shared pcaps
#                         (15 MB) repeated with shifted time and rewritten addresses
#   BENCH_PERF=1          afterwards, one parsers-on run under `perf record -a`: the worker's
#                         samples by component and the top symbols
#   BENCH_POOLS=defaults  parsers-on with the default session and parser pools (see below)
#   BENCH_HUGE=1          hugepages (reserved beforehand)
#   BENCH_DETECT=DIR      also "detect": all parsers plus the signature engine on every DIR/*.rules
#                         (with DIR/classification.config when present; databases cached in
#                         $BENCH_DIR/detect-cache), and its ratio to parsers-on
#   BENCH_HISTORY=1       also "nohist": bridge only with the packet history off, and the ratio
#                         bridge (history on, the default) / nohist: the cost of the copy
#   VIGIL_BUILD=DIR       the build directory whose vigil-dataplane runs (default build/)
# Replay reads the capture with net_pcap (libpcap: a read() from the page cache and a copy per
# frame) on the worker's core: that cost is in both figures (a third or more of the parsers-on
# worker's samples, most of the bridge-only run's). The capture is read once before the first run so that
# it comes from the page cache. packets/s and Gbit/s are rx_packets and rx_bytes (frame bytes)
# over the run's elapsed_s (workers launched to workers done, end-of-capture flow flush included).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/vigil-bench-parse}
mkdir -p "$work"
rounds=${BENCH_ROUNDS:-3}
target_mb=${BENCH_MB:-2000}
data="$root/../shared/data/pcaps"
build=${VIGIL_BUILD:-$root/build}
[ -x "$build/dataplane/vigil-dataplane" ] || "$root/scripts/setup.sh"
# A copy of the binary, so that a rebuild during the benchmark changes nothing under it.
bin="$work/vigil-dataplane"
cp "$build/dataplane/vigil-dataplane" "$bin.tmp" && mv "$bin.tmp" "$bin"

# --- the capture --------------------------------------------------------------------------------
# 1. every pcap/pcapng under $data as a classic Ethernet pcap (pcapng via editcap, other link
#    types as tests/scenarios/suricata_verify.py converts them; unconvertible ones are skipped),
# 2. each file shifted in time (editcap -t) to start 1 s after the previous one ends, and the
#    files concatenated with mergecap -a: base.pcap, one monotonic timeline;
# 3. base.pcap repeated K times to reach BENCH_MB, copy k shifted in time past copy k-1 and every
#    IPv4/IPv6 address rewritten so that its flows are new flows. The rewrite adds d_k to one
#    16-bit word of the address and subtracts it from the next (one's-complement arithmetic), so
#    the one's-complement sum of the address is unchanged: IP, TCP, UDP and ICMPv6 checksums stay
#    valid without being recomputed (vigil does not verify them anyway). Addresses with an
#    all-zero or all-one word (0.0.0.0, broadcast) are left as they are. Ports are kept: they
#    order the parsers' probes.
build_capture() {
  local out=$1
  python3 - "$root" "$data" "$work" "$target_mb" "$out" <<'PY'
import math, os, shutil, struct, subprocess, sys, tempfile
root, data, work, target_mb, out = sys.argv[1:6]
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(root, "tests", "scenarios"))
import suricata_verify as sv  # prepare_capture: pcapng -> pcap, other link types -> Ethernet

MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
          b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}

def frames(path):
    """(endian, ts unit, header, [(sec, frac, incl, orig, offset)]) of a classic pcap."""
    with open(path, "rb") as f:
        d = f.read()
    endian, unit = MAGICS[d[:4]]
    recs, off = [], 24
    while off + 16 <= len(d):
        sec, frac, incl, orig = struct.unpack_from(endian + "IIII", d, off)
        if off + 16 + incl > len(d):
            break
        recs.append((sec, frac, incl, orig, off + 16))
        off += 16 + incl
    return d, endian, unit, recs

tmp = tempfile.mkdtemp(dir=work)
captures = []
for dirpath, _, names in sorted(os.walk(data)):
    for n in sorted(names):
        p = os.path.join(dirpath, n)
        with open(p, "rb") as f:
            m = f.read(4)
        if m in MAGICS or m == b"\x0a\x0d\x0d\x0a":
            captures.append(p)
shifted, skipped, t_next, notes = [], [], 1_000_000_000.0, 0
for i, p in enumerate(captures):
    d = os.path.join(tmp, str(i))
    os.mkdir(d)
    try:
        classic, note = sv.prepare_capture(p, d)
    except (ValueError, subprocess.CalledProcessError) as e:
        skipped.append(f"{os.path.relpath(p, data)}: {e}")
        continue
    notes += bool(note)
    _, _, unit, recs = frames(classic)
    if not recs:
        skipped.append(f"{os.path.relpath(p, data)}: no frames")
        continue
    ts = [r[0] + r[1] * unit for r in recs]
    first, last = min(ts), max(ts)
    s = os.path.join(d, "shifted.pcap")
    subprocess.run(["editcap", "-F", "pcap", "-t", f"{t_next - first:.6f}", classic, s],
                   check=True, capture_output=True)
    shifted.append(s)
    t_next += (last - first) + 1.0
base = os.path.join(work, "base.pcap")
subprocess.run(["mergecap", "-a", "-F", "pcap", "-w", base] + shifted, check=True,
               capture_output=True)
print(f"bench: {len(shifted)} of {len(captures)} captures merged ({notes} converted), "
      f"{len(skipped)} skipped", file=sys.stderr)
for s in skipped:
    print(f"bench:   skipped {s}", file=sys.stderr)

d, endian, unit, recs = frames(base)
span = t_next - 1_000_000_000.0 + 1.0
copies = max(1, math.ceil(int(target_mb) * 1e6 / len(d)))
per_sec = 1e6 if unit == 1e-6 else 1e9

def ones_add(a, b):
    s = a + b
    return (s & 0xFFFF) + (s >> 16)

def rewrite(frame, off, k):
    """Rewrites the addresses of the IP header at `off` in place for copy k."""
    delta = (k * 0x0B0B) % 0xFFFF
    ver = frame[off] >> 4
    if ver == 4 and len(frame) >= off + 20:
        spots = (off + 12, off + 16)
    elif ver == 6 and len(frame) >= off + 40:
        spots = (off + 8 + 4, off + 24 + 4)  # words 2 and 3 of each address: prefix kept
    else:
        return
    for a in spots:
        w0, w1 = struct.unpack_from(">HH", frame, a)
        if w0 in (0, 0xFFFF) or w1 in (0, 0xFFFF):
            continue
        n0 = ones_add(w0, delta)
        n1 = ones_add(w1, 0xFFFF - delta)
        struct.pack_into(">HH", frame, a, n0, n1)

def ip_offset(frame):
    off, et = 12, None
    for _ in range(3):
        if len(frame) < off + 2:
            return None
        et = struct.unpack_from(">H", frame, off)[0]
        if et in (0x8100, 0x88A8, 0x9100):
            off += 4
            continue
        break
    return off + 2 if et in (0x0800, 0x86DD) else None

with open(out + ".part", "wb") as f:
    f.write(d[:24])
    for k in range(copies):
        shift = int(k * math.ceil(span))
        chunk = []
        for sec, frac, incl, orig, o in recs:
            fr = bytearray(d[o:o + incl])
            if k:
                ip = ip_offset(fr)
                if ip is not None:
                    rewrite(fr, ip, k)
            chunk.append(struct.pack(endian + "IIII", sec + shift, frac, incl, orig))
            chunk.append(bytes(fr))
        f.write(b"".join(chunk))
os.rename(out + ".part", out)
shutil.rmtree(tmp)
print(f"bench: base {len(recs)} frames, {len(d)/1e6:.1f} MB, {span:.0f} s of capture time; "
      f"{copies} copies -> {out}", file=sys.stderr)
PY
}

cap=${1:-}
if [ -z "$cap" ]; then
  cap="$work/merged-${target_mb}MB.pcap"
  if [ ! -f "$cap" ]; then
    echo "bench: building $cap (once)"
    build_capture "$cap"
  fi
fi
read -r pkts bytes < <(python3 - "$cap" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
e = "<" if d[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
n = b = 0
off = 24
while off + 16 <= len(d):
    incl = struct.unpack_from(e + "I", d, off + 8)[0]
    n += 1; b += incl; off += 16 + incl
print(n, b)
PY
)
mem="hugepages: false, size_mb: 4096"
[ "${BENCH_HUGE:-0}" = 1 ] && mem="hugepages: true, size_mb: 4096"

echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "bench: capture $cap, $pkts frames, $((bytes / 1000000)) MB of frames; $rounds rounds"

write_config() {  # $1 = bridge | parsers | detect
  local extra=""
  [ "$1" = bridge ] && extra=$'app_layer: {enabled: false}\ndefrag: {enabled: false}'
  # Replay runs the capture's time about 10^5 times faster than real time, but idle flows are
  # found by a sweep of the table that takes about a second of wall time, so every flow of the
  # last second lingers with its session and parser: tens of thousands. The default pools
  # (smb: 256, dns: 4096, ...) would leave a third of the flows unparsed. Unless BENCH_POOLS=
  # defaults, the pools are sized so that none is exhausted (about 1 GB of parser state).
  if [ "$1" != bridge ] && [ "${BENCH_POOLS:-sized}" != defaults ]; then
    extra=$'stream: {sessions: 262144}\napp_layer: {parsers: {smb: 8192, dcerpc: 8192, krb5: 8192, dns: 32768, http: 4096, tls: 4096}}'
  fi
  if [ "$1" = nohist ]; then
    extra=$'app_layer: {enabled: false}\ndefrag: {enabled: false}\nhistory: {enabled: false}'
  fi
  if [ "$1" = detect ]; then
    local rules cls=""
    rules=$(printf '"%s", ' "$BENCH_DETECT"/*.rules)
    [ -f "$BENCH_DETECT/classification.config" ] &&
      cls=", classification: \"$BENCH_DETECT/classification.config\""
    extra+=$'\n'"detect: {enabled: true, rules: [${rules%, }]$cls, cache_dir: \"$work/detect-cache\"}"
  fi
  cat >"$work/$1.yaml" <<YAML
sensor: {name: bench-parse}
eal: {file_prefix: vbench-parse, log_level: err, memory: {$mem}}
ports:
  - {name: a, device: "net_null0"}
  - {name: b, device: "net_null1"}
bridges: [[a, b]]
workers: {lcores: [1]}
outputs: {eve: {enabled: true, path: $work/eve.json}, event_ring_mb: 256}
$extra
YAML
# event_ring_mb: the exporter (EVE writer) runs on core 0, shared with the host's other work; a
# ring large enough for a whole run's events keeps its hiccups from losing events, so the
# figures are the worker's. Lost events would be listed under "hit limits".
}
write_config bridge
write_config parsers
configs="bridge parsers"
if [ "${BENCH_HISTORY:-0}" = 1 ]; then
  write_config nohist
  configs="nohist bridge parsers"
fi
if [ -n "${BENCH_DETECT:-}" ]; then
  write_config detect
  configs="bridge parsers detect"
  # Compiles the databases into the cache once, so that no round pays for it.
  "$bin" --config "$work/detect.yaml" --check >/dev/null
fi

cat "$cap" >/dev/null  # into the page cache before the first run

run_one() {  # $1 = config name, $2 = round; appends one JSON line of results to $work/results
  rm -f "$work/eve.json"
  if ! "$bin" --config "$work/$1.yaml" --pcap-in "$cap" >"$work/$1.out" 2>"$work/$1.err"; then
    echo "bench: round $2 $1: vigil-dataplane failed: $(tail -3 "$work/$1.err")"
    return 0
  fi
  python3 - "$work/$1.out" "$1" "$2" "$pkts" "$bytes" >>"$work/results" <<'PY'
import json, sys
c = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
name, rnd, pkts, byts = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
p, w = c["ports"][0], c["workers"][0]
rx, el = p["rx_packets"], c["elapsed_s"]
rxb = p["rx_bytes"]
al, st, df = w["app_layer"], w["stream"], w["defrag"]
limits = {"sessions_exhausted": st["sessions_exhausted"], "stream_memcap": st["memcap"],
          "parser_exhausted": al["parser_exhausted"], "events_lost": al["events_lost"],
          "event_ring_full": w["events"]["ring_full"], "defrag_memcap": df["memcap"],
          "flow_table_full": w["flows"]["table_full"]}
r = {"config": name, "round": rnd, "rx": rx, "elapsed": el, "pps": rx / el,
     "gbps": rxb * 8 / el / 1e9, "eve": c["eve"]["records"], "flows": w["flows"]["created"],
     "identified": al["identified"], "app_events": al["events"],
     "sessions": st["sessions_created"], "stream_bytes": st["bytes"],
     "datagrams": df["datagrams"], "limits": {k: v for k, v in limits.items() if v},
     "dropped": p["dropped_total"], "alerts": c.get("detect", {}).get("alerts", 0),
     "inspected": c.get("detect", {}).get("inspected", 0)}
print(json.dumps(r))
print(f"bench: round {rnd} {name:8}: {rx} frames in {el:.3f} s = {r['pps']/1e6:.3f} Mpps, "
      f"{r['gbps']:.2f} Gbit/s, EVE records {r['eve']}", file=sys.stderr)
PY
}

: >"$work/results"
for round in $(seq 1 "$rounds"); do
  # The order alternates so that a drift of the host's speed does not favour one configuration.
  order=$configs
  [ $((round % 2)) = 0 ] && order=$(echo "$configs" | tr ' ' '\n' | tac | tr '\n' ' ')
  for cfg in $order; do run_one "$cfg" "$round"; done
done

python3 - "$work/results" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rs:
    by.setdefault(r["round"], {})[r["config"]] = r
ratios = []
print()
print(f"round | bridge only: Mpps  Gbit/s     EVE | all parsers: Mpps  Gbit/s     EVE | ratio")
for rnd in sorted(by):
    b, p = by[rnd].get("bridge"), by[rnd].get("parsers")
    if not b or not p:
        continue
    ratio = p["pps"] / b["pps"]
    ratios.append(ratio)
    print(f"{rnd:5} | {b['pps']/1e6:17.3f} {b['gbps']:7.2f} {b['eve']:7} |"
          f" {p['pps']/1e6:17.3f} {p['gbps']:7.2f} {p['eve']:7} | {ratio:6.1%}")
def med(cfg, key):
    v = [r[key] for r in rs if r["config"] == cfg]
    return statistics.median(v) if v else 0
if ratios:
    last_p = [r for r in rs if r["config"] == "parsers"][-1]
    print(f"bridge only (app_layer, defrag off): {med('bridge','pps')/1e6:6.3f} Mpps "
          f"{med('bridge','gbps'):5.2f} Gbit/s (median), EVE records {med('bridge','eve'):.0f}")
    print(f"all parsers on                     : {med('parsers','pps')/1e6:6.3f} Mpps "
          f"{med('parsers','gbps'):5.2f} Gbit/s (median), EVE records {med('parsers','eve'):.0f}")
    print(f"ratio parsers-on / bridge-only     : {statistics.median(ratios):6.1%} "
          f"(median of {len(ratios)} rounds)")
    print(f"last parsers-on run: flows {last_p['flows']}, TCP/UDP sessions {last_p['sessions']}, "
          f"{last_p['stream_bytes']/1e6:.0f} MB reassembled, {last_p['datagrams']} datagrams "
          f"defragmented, parser events {last_p['app_events']}, dropped {last_p['dropped']}")
    print(f"  identified: {last_p['identified']}")
    d = [r for r in rs if r["config"] == "detect"]
    if d:
        dr = [by[k]["detect"]["pps"] / by[k]["parsers"]["pps"] for k in by
              if "detect" in by[k] and "parsers" in by[k]]
        print(f"parsers + detect                   : {med('detect','pps')/1e6:6.3f} Mpps "
              f"{med('detect','gbps'):5.2f} Gbit/s (median), {d[-1]['inspected']} packets "
              f"inspected, {d[-1]['alerts']} alerts")
        print(f"ratio detect / parsers-on          : {statistics.median(dr):6.1%} "
              f"(median of {len(dr)} rounds)")
    h = [r for r in rs if r["config"] == "nohist"]
    if h:
        hr = [by[k]["bridge"]["pps"] / by[k]["nohist"]["pps"] for k in by
              if "nohist" in by[k] and "bridge" in by[k]]
        print(f"bridge only, packet history off    : {med('nohist','pps')/1e6:6.3f} Mpps "
              f"{med('nohist','gbps'):5.2f} Gbit/s (median)")
        print(f"ratio history on / off (bridge)    : {statistics.median(hr):6.1%} "
              f"(median of {len(hr)} rounds)")
    for r in rs:
        if r["limits"]:
            print(f"  round {r['round']} {r['config']} hit limits: {r['limits']}")
PY

# Groups the worker thread's samples (perf report --sort dso,sym on stdin) by component.
perf_summary=$(cat <<'PY'
import collections, re, sys
rows = []
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*\S)", line)
    if m:
        rows.append((float(m.group(1)), m.group(2), m.group(4)))
total = sum(r[0] for r in rows) or 1
GROUPS = [("parser: SMB", r"Smb|smb"), ("parser: DCE-RPC", r"Dcerpc|DceRpc|dcerpc"),
          ("parser: Kerberos", r"Krb5|krb5|Kerberos|Asn1|Der"), ("parser: NTLMSSP", r"Ntlm"),
          ("parser: DNS", r"Dns|dns"), ("parser: HTTP", r"Http|http"),
          ("parser: TLS", r"Tls|tls|Ja4|ja4|Sha256|Md5"),
          ("app-layer events (JSON)", r"Json|Eve|Event"),
          ("app-layer dispatch/probing", r"AppLayer|Probe|Detect"),
          ("TCP reassembly, sessions", r"Session|Stream|Reassem|Segment|Tcp"),
          ("defrag", r"Defrag"), ("flow table", r"FlowTable|Flow"), ("decode", r"Decode"),
          ("worker loop, TX", r"Worker")]
def group(dso, sym):
    if dso.startswith("vigil-dataplane"):
        for name, rx in GROUPS:
            if re.search(rx, sym):
                return name
        return "vigil: other"
    if dso == "[kernel.kallsyms]":
        return "kernel (file read() of the capture)"
    if dso.startswith("libc"):
        return "libc (fread of the capture, memcpy/memmove of both)"
    if "pcap" in dso or "rte_mbuf" in dso:
        return "net_pcap PMD + libpcap + mbuf"
    return "other: " + dso
g = collections.Counter()
for pct, dso, sym in rows:
    g[group(dso, sym)] += pct
print(f"  worker thread samples by component ({len(rows)} symbols):")
for name, pct in g.most_common():
    if pct / total >= 0.003:
        print(f"    {100 * pct / total:5.1f} %  {name}")
print("  top symbols:")
for pct, dso, sym in sorted(rows, reverse=True)[:25]:
    print(f"    {100 * pct / total:5.1f} %  {dso:24.24} {sym[:90]}")
PY
)
if [ "${BENCH_PERF:-0}" = 1 ]; then
  if perf record -o /dev/null -e cpu-clock true >/dev/null 2>&1; then
    echo
    echo "bench: perf: one parsers-on run, the worker's samples (cpu-clock, core 1)"
    rm -f "$work/eve.json"
    # System-wide (-a), so that the libraries mapped by the main thread on core 0 are recorded;
    # the report keeps the samples of vigil's worker thread.
    perf record -q -N -a -e cpu-clock -F 2999 -o "$work/perf.data" -- sleep 600 >/dev/null 2>&1 &
    pf=$!
    sleep 1
    "$bin" --config "$work/parsers.yaml" --pcap-in "$cap" >"$work/perf-run.out" 2>&1 &
    vg=$!
    wait $vg || true
    kill -INT $pf 2>/dev/null || true
    wait $pf 2>/dev/null || true
    perf report -i "$work/perf.data" --no-children --pid "$vg" --comm rte-worker-1 --sort dso,sym \
      --stdio 2>/dev/null | python3 -c "$perf_summary"
    echo "bench: full profile: perf report -i $work/perf.data"
  else
    echo "bench: perf does not work here; no profile"
  fi
fi
