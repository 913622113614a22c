#!/usr/bin/env bash
# Lab test: two network namespaces joined through vigil-dataplane (net_af_packet on veth, see
# scripts/lab.sh). Checks ping (IPv4 and IPv6) and a 4 MiB TCP transfer (SHA-256 compared) across
# the bridge, then that the dataplane's counters close and its EVE file holds those flows.
# usage: lab_test.sh BUILD_DIR        needs root (network namespaces); skips otherwise
set -uo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the lab test needs root for network namespaces"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
export VIGIL_LAB_PREFIX=vt$$
lab() { "$root/scripts/lab.sh" "$@"; }
tmp=$(mktemp -d /tmp/vigil-lab-test.XXXXXX)
dp_pid=""
cleanup() {
  [ -n "$dp_pid" ] && kill "$dp_pid" 2>/dev/null && wait "$dp_pid" 2>/dev/null
  lab down >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0; fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }

lab up >/dev/null || { echo "FAIL lab up"; echo "0 passed, 1 failed"; exit 1; }
cat > "$tmp/vigil.yaml" <<YAML
sensor: {name: lab-test}
eal: {file_prefix: $VIGIL_LAB_PREFIX}
ports:
  - {name: a, device: "net_af_packet0,iface=vg-a,qpairs=1"}
  - {name: b, device: "net_af_packet1,iface=vg-b,qpairs=1"}
bridges: [[a, b]]
workers: {lcores: [1]}
outputs: {eve: {enabled: true, path: $tmp/eve.json}}
YAML
"$root/scripts/lab.sh" exec br "$build/dataplane/vigil-dataplane" --config "$tmp/vigil.yaml" \
  >"$tmp/counters.json" 2>"$tmp/dataplane.err" &
dp_pid=$!

# Wait for the bridge to carry traffic (EAL start-up takes a moment).
up=0
for _ in $(seq 1 50); do
  if lab exec left ping -c 1 -W 0.2 10.77.0.2 >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$dp_pid" 2>/dev/null || break
done
if [ $up = 1 ]; then ok "bridge up: first ping crossed"; else ko "bridge never carried a ping: $(tail -5 "$tmp/dataplane.err")"; fi

# Least privilege: after start-up the main thread and the worker hold no capability (EAL's
# interrupt thread keeps its own; DPDK telemetry is off).
pid=$(pgrep -f "vigil-dataplane --config $tmp/vigil.yaml" | head -1)
caps=$(for t in /proc/"$pid"/task/*; do
  c=$(cat "$t/comm"); case "$c" in vigil-dataplane|rte-worker-*|lcore-worker-*) echo "$c:$(awk '/^CapEff/ {print $2}' "$t/status")" ;; esac
done | sort -u | tr '\n' ' ')
if [ -n "$pid" ] && grep -q "capabilities dropped" "$tmp/dataplane.err" && \
   ! echo "$caps" | grep -qv ':0000000000000000 *$' && echo "$caps" | grep -q worker; then
  ok "capabilities dropped after start-up: $caps"
else
  ko "capabilities after start-up: ${caps:-no threads found} $(grep -i capab "$tmp/dataplane.err")"
fi

if lab exec left ping -c 5 -i 0.05 -W 1 10.77.0.2 >"$tmp/ping.txt" 2>&1 && grep -q " 0% packet loss" "$tmp/ping.txt"; then
  ok "IPv4 ping: 5/5"
else
  ko "IPv4 ping: $(grep -E 'packet loss' "$tmp/ping.txt")"
fi
if lab exec left ping -6 -c 5 -i 0.05 -W 1 fd77::2 >"$tmp/ping6.txt" 2>&1 && grep -q " 0% packet loss" "$tmp/ping6.txt"; then
  ok "IPv6 ping: 5/5"
else
  ko "IPv6 ping: $(grep -E 'packet loss' "$tmp/ping6.txt")"
fi

head -c $((4 * 1024 * 1024)) /dev/urandom >"$tmp/send.bin"
lab exec right timeout 30 nc -l -p 9000 >"$tmp/recv.bin" &
nc_pid=$!
sleep 0.3
lab exec left timeout 30 nc -N 10.77.0.2 9000 <"$tmp/send.bin"
wait "$nc_pid"
sent=$(sha256sum <"$tmp/send.bin" | cut -d' ' -f1); got=$(sha256sum <"$tmp/recv.bin" | cut -d' ' -f1)
if [ "$sent" = "$got" ]; then
  ok "TCP transfer: 4 MiB, SHA-256 equal ($sent)"
else
  ko "TCP transfer: SHA-256 differ ($(stat -c %s "$tmp/recv.bin") bytes received)"
fi

kill -TERM "$dp_pid"; wait "$dp_pid"; rc=$?; dp_pid=""
[ $rc -eq 0 ] && ok "dataplane exited cleanly on SIGTERM" || ko "dataplane exit code $rc: $(tail -5 "$tmp/dataplane.err")"

/usr/bin/env python3 - "$tmp/counters.json" "$tmp/eve.json" <<'PY' && ok "counters close and EVE holds the ICMP, ICMPv6 and TCP flows" || ko "counters/EVE check"
import json, sys
c = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
for p in c["ports"]:
    assert p["rx_packets"] == p["forwarded"] + p["dropped_total"] + p["in_flight"], p
    assert p["in_flight"] == 0 and p["dropped_total"] == 0, p
recs = [json.loads(l) for l in open(sys.argv[2])]
tcp = [r for r in recs if r["proto"] == "TCP" and r.get("dest_port") == 9000]
assert len(tcp) == 1, tcp
f = tcp[0]["flow"]
assert f["bytes_toserver"] > 4 * 1024 * 1024, f
assert tcp[0]["src_ip"] == "10.77.0.1" and tcp[0]["dest_ip"] == "10.77.0.2", tcp[0]
assert tcp[0]["tcp"]["syn"] and tcp[0]["tcp"]["fin"], tcp[0]
assert any(r["proto"] == "ICMP" and r["flow"]["pkts_toclient"] >= 5 for r in recs), recs
assert any(r["proto"] == "IPv6-ICMP" for r in recs), recs
print(f"  {len(recs)} flow records; TCP flow {f['pkts_toserver']}/{f['pkts_toclient']} pkts, "
      f"{f['bytes_toserver']} bytes to server, state {f['state']}")
PY
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
