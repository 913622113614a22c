#!/usr/bin/env bash
# The TRex lab's loss measurement (scripts/trex/vigil-loss.py) against a real dataplane, with
# tcpreplay standing in for TRex: three network namespaces wired as the TRex box would be,
#
#   <p>-gen (eth0, "TRex port 0") ── vg-a │ vigil-dataplane │ vg-b ── (eth0, "TRex port 1") <p>-sink
#
# with no addresses and IPv6 off, so that nothing but the replayed frames crosses the bridge.
# vigil-control serves /metrics on loopback and a manual block (`vigilctl respond block`) of the
# lateral scenario's SMB connection 10.0.0.9 -> 10.0.0.5:445 makes vigil drop packets on purpose.
#
#   1. Snapshots from the command socket and from /metrics, tcpreplay of tests/gen/lateral.py's
#      capture into gen, snapshots again; `vigil-loss.py diff --sent N` on each pair.
#   2. `vigil-loss.py run -- tcpreplay ...` (snapshot, command, settle, snapshot) on /metrics.
#   Then the dataplane is stopped and its final counters (the JSON it prints) are compared.
#
# Checks: both reports agree number for number; received on port a = frames tcpreplay sent;
# forwarded + dropped = received on every port; the only loss reason is `blocked`, equal to the
# blocked connection's packets counted in the capture with scapy; end-to-end loss = sent -
# forwarded; what the sink's and the generator's veths received (kernel counters) equals what
# the report says port b and port a transmitted; and the reports of both runs add up to the
# dataplane's own final counters.
# usage: trex_loss_test.sh BUILD_DIR   (needs root for network namespaces, tcpreplay and scapy;
#                                       skips otherwise)
set -euo pipefail
build=$(cd "${1:?usage: trex_loss_test.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
command -v tcpreplay >/dev/null || { echo "SKIP: tcpreplay missing"; exit 77; }
/usr/bin/python3 -c "import scapy" 2>/dev/null || { echo "SKIP: scapy missing"; exit 77; }
p=vl$$
gen=$p-gen br=$p-br sink=$p-sink
tmp=$(mktemp -d /tmp/vigil-trex-loss.XXXXXX)
dp_pid="" ctl_pid=""
cleanup() {
  if [ -n "$dp_pid" ]; then kill "$dp_pid" 2>/dev/null || true; wait "$dp_pid" 2>/dev/null || true; fi
  if [ -n "$ctl_pid" ]; then kill "$ctl_pid" 2>/dev/null || true; wait "$ctl_pid" 2>/dev/null || true; fi
  for ns in "$gen" "$br" "$sink"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"  # check, pass, fail
loss() { /usr/bin/python3 "$root/scripts/trex/vigil-loss.py" "$@"; }
free_port() { /usr/bin/python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
rx_count() { ip netns exec "$1" cat /sys/class/net/eth0/statistics/rx_packets; }

# The wiring: a veth pair per side, the vigil ends in the bridge namespace. No addresses, IPv6
# off before any link comes up, offloads off (af_packet must see complete frames).
for ns in "$gen" "$br" "$sink"; do
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
offloads_off() {  # offloads_off NS IFNAME
  ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 ||
    ip netns exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1
}
wire() {  # wire NS BRIDGE-IFNAME: NS's eth0 <-> BRIDGE-IFNAME in the bridge namespace
  local ns=$1 ifb=$2
  ip link add "$p-x" type veth peer name "$p-y" || return 1
  ip link set "$p-x" netns "$ns" && ip -n "$ns" link set "$p-x" name eth0 || return 1
  ip link set "$p-y" netns "$br" && ip -n "$br" link set "$p-y" name "$ifb" || return 1
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
  ip netns exec "$br" sysctl -qw "net.ipv6.conf.$ifb.disable_ipv6=1"
  offloads_off "$ns" eth0
  offloads_off "$br" "$ifb"
  ip -n "$ns" link set eth0 up && ip -n "$br" link set "$ifb" up
}
wire "$gen" vg-a && wire "$sink" vg-b || { echo "FAIL network namespaces"; exit 1; }

/usr/bin/python3 "$root/tests/gen/lateral.py" "$tmp/lateral.pcap" >/dev/null
expected_blocked=$(/usr/bin/python3 - "$tmp/lateral.pcap" <<'PY'
import sys
from scapy.all import IP, TCP, PcapReader
ends = {"10.0.0.9", "10.0.0.5"}
n = 0
for p in PcapReader(sys.argv[1]):
    if IP in p and TCP in p and {p[IP].src, p[IP].dst} == ends and 445 in (p[TCP].sport, p[TCP].dport):
        n += 1
print(n)
PY
)

api_port=$(free_port)
url="http://127.0.0.1:$api_port/metrics"
cat >"$tmp/vigil.yaml" <<YAML
sensor: {name: trex-loss}
eal: {file_prefix: $p}
ports:
  - {name: a, device: "net_af_packet0,iface=vg-a,qpairs=1"}
  - {name: b, device: "net_af_packet1,iface=vg-b,qpairs=1"}
bridges: [[a, b]]
workers: {lcores: [1]}
outputs: {eve: {enabled: true, path: $tmp/eve.json}}
commands: {enabled: true, socket: $tmp/commands.sock}
history: {enabled: false}
YAML
mkdir -p "$tmp/models" "$tmp/data"
"$build/control/vigil-control" --config "$root/config/control.yaml" --data-dir "$tmp/data" \
  --event-socket "$tmp/events.sock" --api-socket "$tmp/api.sock" \
  --api-listen "127.0.0.1:$api_port" --models-dir "$tmp/models" \
  --dataplane-socket "$tmp/commands.sock" 2>"$tmp/control.log" &
ctl_pid=$!
ip netns exec "$br" "$build/dataplane/vigil-dataplane" --config "$tmp/vigil.yaml" \
  >"$tmp/counters.json" 2>"$tmp/dataplane.err" &
dp_pid=$!
for _ in $(seq 1 100); do
  grep -q "capabilities dropped" "$tmp/dataplane.err" 2>/dev/null && [ -S "$tmp/api.sock" ] && break
  kill -0 "$dp_pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q "capabilities dropped" "$tmp/dataplane.err" || ! [ -S "$tmp/api.sock" ]; then
  echo "FAIL dataplane and control did not start:"
  tail -n 5 "$tmp/dataplane.err" "$tmp/control.log"
  exit 1
fi
check "dataplane forwarding with its command socket, control serving /metrics" true

"$build/control/vigilctl" --socket "$tmp/api.sock" --token-file "$tmp/data/api.token" respond block \
  --client 10.0.0.9 --server 10.0.0.5 --port 445 --duration 10m --reason "trex-loss test" \
  >"$tmp/block.txt" 2>&1 || true
entries=0
for _ in $(seq 1 50); do
  entries=$(/usr/bin/python3 - "$tmp/commands.sock" <<'PY' 2>/dev/null
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b'{"v":1,"id":1,"op":"hello"}\n')
print(json.loads(s.makefile().readline())["block_entries"])
PY
) || entries=0
  [ "$entries" = 1 ] && break
  sleep 0.1
done
check "control pushed the manual block to the dataplane ($(head -1 "$tmp/block.txt" | tr -s ' '))" \
  test "$entries" = 1

# 1. Snapshots from both sources around a replay.
gen_rx0=$(rx_count "$gen") sink_rx0=$(rx_count "$sink")
loss --command-socket "$tmp/commands.sock" snapshot "$tmp/s0.json"
loss --metrics-url "$url" snapshot "$tmp/m0.json"
ip netns exec "$gen" tcpreplay -i eth0 --pps 1000 "$tmp/lateral.pcap" >"$tmp/tcpreplay1.txt" 2>&1
sent=$(sed -n 's/^[[:space:]]*Actual: \([0-9]*\) packets.*/\1/p' "$tmp/tcpreplay1.txt")
loss --command-socket "$tmp/commands.sock" snapshot --settle 5 "$tmp/s1.json"
loss --metrics-url "$url" snapshot "$tmp/m1.json"
gen_rx1=$(rx_count "$gen") sink_rx1=$(rx_count "$sink")
loss diff "$tmp/s0.json" "$tmp/s1.json" --sent "$sent" --json-out "$tmp/r_socket.json" | sed 's/^/  /'
loss diff "$tmp/m0.json" "$tmp/m1.json" --sent "$sent" --json-out "$tmp/r_metrics.json" >/dev/null

# 2. The run mode, on /metrics.
loss --metrics-url "$url" run --settle 10 --sent "$sent" --json-out "$tmp/r_run.json" \
  -- ip netns exec "$gen" tcpreplay -i eth0 --pps 1000 "$tmp/lateral.pcap" >"$tmp/run.txt" 2>&1
check "vigil-loss.py run: snapshot, tcpreplay, settle, snapshot, report" test -s "$tmp/r_run.json"

rc=0
kill -TERM "$dp_pid"
wait "$dp_pid" || rc=$?
dp_pid=""
check "dataplane stopped cleanly (exit $rc)" test "$rc" = 0

py=0
/usr/bin/python3 - "$tmp" "$sent" "$expected_blocked" "$((gen_rx1 - gen_rx0))" \
  "$((sink_rx1 - sink_rx0))" <<'PY' || py=$?
import json, sys
tmp, sent, blocked = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gen_rx, sink_rx = int(sys.argv[4]), int(sys.argv[5])
load = lambda n: json.load(open(f"{tmp}/{n}"))
rs, rm, rr, s0 = load("r_socket.json"), load("r_metrics.json"), load("r_run.json"), load("s0.json")
final = json.loads(open(f"{tmp}/counters.json").read().strip().splitlines()[-1])
ok = fail = 0
def check(name, cond, detail=""):
    global ok, fail
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))
    ok, fail = ok + bool(cond), fail + (not cond)
a, b = rs["ports"]["a"], rs["ports"]["b"]
strip = lambda r: {n: {k: v for k, v in p.items() if k != "peer"} for n, p in r["ports"].items()}
check("the reports from the command socket and from /metrics agree number for number",
      strip(rs) == strip(rm) and rs["total"] == rm["total"] and
      rs["end_to_end"] == rm["end_to_end"], (strip(rs), strip(rm)))
check(f"port a received what tcpreplay sent ({sent}), port b nothing",
      a["received"] == sent and b["received"] == 0, (a["received"], b["received"]))
check("forwarded + dropped = received on every port, nothing left in flight",
      all(p["closes"] and p["forwarded"] + p["dropped"] == p["received"]
          and p["in_flight_change"] == 0 for p in rs["ports"].values()))
reasons = {k: v for k, v in rs["total"]["reasons"].items() if v}
check(f"the only loss is reason blocked: {blocked} packets, the blocked connection's count in "
      "the capture", reasons == {"dropped_blocked": blocked}, reasons)
e = rs["end_to_end"]
check(f"end to end: lost {e['lost']} = sent - forwarded, {e['loss_pct']:.2f} %",
      e["lost"] == sent - a["forwarded"] == blocked and e["never_seen_by_vigil"] == 0 and
      abs(e["loss_pct"] - 100.0 * blocked / sent) < 1e-9, e)
check(f"the sink's veth received what port b transmitted ({sink_rx}: forwarded + RSTs), the "
      f"generator's what port a transmitted ({gen_rx}: RSTs)",
      sink_rx == b["nic"]["opackets"] and gen_rx == a["nic"]["opackets"] and
      sink_rx == a["forwarded"] + rs["total"]["resets_sent"] // 2,
      (sink_rx, b["nic"], gen_rx, a["nic"], rs["total"]["resets_sent"]))
# The second replay repeats the same connections: the same packets are received, forwarded and
# blocked, but no RST is sent again (one RST pair per flow and block entry, docs/respond.md).
same = lambda r: {n: {k: p[k] for k in ("received", "received_bytes", "forwarded",
                                         "forwarded_bytes", "dropped", "reasons", "closes")}
                  for n, p in r["ports"].items()}
check("the run mode's report (second replay, /metrics) counts the same packets, losses and "
      "reasons", same(rr) == same(rs) and rr["end_to_end"] == rs["end_to_end"],
      (same(rr), same(rs)))
for p in final["ports"]:
    n = p["name"]
    first = s0["ports"][n]
    runs = [r["ports"][n] for r in (rs, rr)]
    drops = {k: v - first["dropped"].get(k, 0) for k, v in p["dropped"].items()}
    want_drops = {k: sum(r["reasons"].get(f"dropped_{k}", 0) for r in runs) for k in drops}
    check(f"port {n}: the two reports add up to the dataplane's final counters "
          f"(rx {p['rx_packets']}, forwarded {p['forwarded']}, dropped {p['dropped_total']})",
          p["rx_packets"] - first["rx_packets"] == sum(r["received"] for r in runs) and
          p["forwarded"] - first["forwarded"] == sum(r["forwarded"] for r in runs) and
          drops == want_drops and
          p["rx_packets"] == p["forwarded"] + p["dropped_total"] + p["in_flight"],
          (p, runs))
print(f"{ok} passed, {fail} failed")
sys.exit(1 if fail else 0)
PY
[ $py -eq 0 ] || { echo "  logs:"; tail -n 5 "$tmp/control.log" "$tmp/dataplane.err"; }
echo "$pass passed, $fail failed (shell checks)"
[ $fail -eq 0 ] && [ $py -eq 0 ]
