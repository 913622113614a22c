#!/usr/bin/env bash
# Forwarding benchmark: vigil-dataplane (bridge + decode + flow tracking + EVE export) against
# dpdk-testpmd --forward-mode=io on the same vdevs, in one invocation, one forwarding core each:
# net_pcap with infinite_rx=1 over the shared benchmark mix (../shared/tools/make-bench-mix.sh)
# into net_null. Prints packets/s of each and the ratio. Never fails on timing.
#   scripts/bench-forward.sh [MIX.pcap]      (default: builds /tmp/vigil-bench/mix.pcap once)
#   BENCH_SECONDS=20 BENCH_HUGE=1 ...         measure longer / use hugepages if reserved
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/vigil-bench}
mkdir -p "$work"
mix=${1:-$work/mix.pcap}
secs=${BENCH_SECONDS:-12}
warm=4  # seconds after the first forwarded packet that are not counted (cache and TLB warm-up)
if [ ! -f "$mix" ]; then
  [ -x "$root/../shared/tools/make-bench-mix.sh" ] || [ -f "$root/../shared/tools/make-bench-mix.sh" ] || {
    echo "bench: no $mix and no ../shared/tools/make-bench-mix.sh to build it"; exit 0; }
  echo "bench: building $mix (once)"
  bash "$root/../shared/tools/make-bench-mix.sh" "$mix" 30
fi
[ -x "$root/build/dataplane/vigil-dataplane" ] || "$root/scripts/setup.sh"
pkts=$(capinfos -c -M "$mix" | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
mbufs=$(( pkts + 300000 ))
mem="--no-huge -m 6144"; memyaml="hugepages: false, size_mb: 6144"
if [ "${BENCH_HUGE:-0}" = 1 ]; then mem="-m 6144"; memyaml="hugepages: true, size_mb: 6144"; fi
in_dev="net_pcap0,rx_pcap=$mix,infinite_rx=1"
out_dev="net_null0,no-rx=1"

echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "bench: mix $mix, $pkts packets; $secs s per run, the first $warm s after traffic starts not counted"

# The machine's speed drifts (shared host): the two programs run alternately, BENCH_ROUNDS times,
# and each round's ratio compares runs made seconds apart. The median round is reported.
rounds=${BENCH_ROUNDS:-3}
tp_rates=(); vg_rates=()
run_round() {
# testpmd prints per-port Rx-pps every second; average the steady-state samples of port 0.
echo "bench: round $round: dpdk-testpmd --forward-mode=io ..."
timeout -s INT $((secs + 40)) dpdk-testpmd $mem --no-pci --no-shconf --file-prefix vbench-tp -l 0-1 \
  --vdev "$in_dev" --vdev "$out_dev" --log-level 'pmd.*:error' -- \
  --forward-mode=io --total-num-mbufs=$mbufs --no-flush-rx --port-topology=chained \
  --stats-period 1 >"$work/testpmd.log" 2>&1 &
tp=$!
python3 - "$work/testpmd.log" "$secs" "$warm" "$tp" >"$work/testpmd.rate" <<'PY'
import os, re, signal, sys, time
log, secs, warm, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
deadline = time.time() + secs + 60
samples = []
while time.time() < deadline:
    time.sleep(0.5)
    text = open(log, errors="replace").read()
    # Port 0 blocks: "NIC statistics for port 0 ... Rx-pps: N"
    rates = [int(m) for m in re.findall(r"NIC statistics for port 0 .*?Rx-pps:\s+(\d+)", text, re.S)]
    started = [r for r in rates if r > 0]
    if len(started) >= warm + secs:
        samples = started[warm:warm + secs]
        break
try:
    os.kill(pid, signal.SIGINT)
except ProcessLookupError:
    pass
print(sum(samples) / len(samples) if samples else 0)
PY
wait $tp || true
tp_rates+=("$(cat "$work/testpmd.rate")")

echo "bench: round $round: vigil-dataplane ..."
cat >"$work/vigil.yaml" <<YAML
sensor: {name: bench}
eal: {file_prefix: vbench-vg, log_level: err, memory: {$memyaml}}
ports:
  - {name: in, device: "$in_dev"}
  - {name: out, device: "$out_dev"}
bridges: [[in, out]]
workers: {lcores: [1], mbufs_per_worker: $mbufs, stats_interval_s: 1}
outputs: {eve: {enabled: true, path: $work/eve.json}}
YAML
rm -f "$work/eve.json"
"$root/build/dataplane/vigil-dataplane" --config "$work/vigil.yaml" >"$work/vigil.log" 2>&1 &
vg=$!
python3 - "$work/vigil.log" "$secs" "$warm" "$vg" >"$work/vigil.rate" <<'PY'
import os, re, signal, sys, time
log, secs, warm, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
deadline = time.time() + secs + 60
rate = 0
while time.time() < deadline:
    time.sleep(0.5)
    pts = [(float(t), int(rx)) for t, rx in
           re.findall(r"^stats t=([\d.]+)s \| in rx=(\d+)", open(log, errors="replace").read(), re.M)]
    started = [p for p in pts if p[1] > 0]
    if len(started) >= warm + secs + 1:
        (t0, n0), (t1, n1) = started[warm], started[warm + secs]
        rate = (n1 - n0) / (t1 - t0)
        break
try:
    os.kill(pid, signal.SIGTERM)
except ProcessLookupError:
    pass
print(rate)
PY
wait $vg || true
vg_rates+=("$(cat "$work/vigil.rate")")
tail -1 "$work/vigil.log" >"$work/vigil-counters.json"

}
for round in $(seq 1 "$rounds"); do run_round; done

python3 - "${tp_rates[*]}" "${vg_rates[*]}" "$work/vigil-counters.json" <<'PY'
import json, statistics, sys
tp = [float(x) for x in sys.argv[1].split()]
vg = [float(x) for x in sys.argv[2].split()]
try:
    c = json.load(open(sys.argv[3]))
    w = c["workers"][0]
    extra = (f"last vigil run: flows created {w['flows']['created']}, EVE records "
             f"{c['eve']['records']}, dropped {c['ports'][0]['dropped_total']}, "
             f"max chain {w['flows']['max_chain']}")
except Exception:
    extra = ""
ratios = []
for i, (a, b) in enumerate(zip(tp, vg), 1):
    r = b / a if a > 0 else 0
    ratios.append(r)
    print(f"round {i}: testpmd {a/1e6:5.2f} Mpps, vigil {b/1e6:5.2f} Mpps, ratio {r:6.1%}")
if extra:
    print(extra)
if ratios:
    print(f"testpmd io-forward : {statistics.median(tp)/1e6:6.2f} Mpps (median)")
    print(f"vigil bridge+flows : {statistics.median(vg)/1e6:6.2f} Mpps (median)")
    print(f"ratio vigil/testpmd: {statistics.median(ratios):6.1%} (median of {len(ratios)} rounds)")
PY
