#!/usr/bin/env bash
# Inline actions of the signature engine (docs/rules.md "Inline actions") end to end: a generated
# capture replayed with --pcap-out through `drop` and `reject` rules. A drop rule drops the
# matching packet and every later packet of its flow in both directions, and nothing before it;
# a reject rule also sends a TCP RST to each end (at the sequence numbers each expects), or an
# ICMP port unreachable back to a UDP sender; other flows pass untouched; alerts say "blocked";
# the counters charge the first packet to `rule` and the rest to `flow_action`. With
# detect.inline_actions: false (IDS mode) the same replay forwards every packet and the alerts
# say "allowed". About 2 s.
set -uo pipefail
build=${1:?usage: inline_actions_test.sh BUILD_DIR}
if ! /usr/bin/python3 -c "import scapy" 2>/dev/null; then echo "SKIP: scapy missing"; exit 77; fi
tmp=$(mktemp -d /tmp/vigil-inline.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"  # check, pass, fail

SCENARIOS=$(dirname "$0") /usr/bin/python3 - "$tmp/in.pcap" <<'PY'
import os, sys
sys.path.insert(0, os.environ["SCENARIOS"])
from scapy.all import IP, UDP, Raw
from flowgen import Capture
cap = Capture()
tcp_flow, add, E = cap.tcp_flow, cap.add, cap.eth
# D: dropped at its 5th packet ("DROPME"); 3 + 1 + 1 + 1 + 3 = 9 packets.
tcp_flow("10.2.0.1", "10.2.0.2", 41001, 9999,
         [(True, b"hello"), (True, b"please DROPME now"), (False, b"late reply")])
# E: rejected at its 4th packet.
tcp_flow("10.2.0.3", "10.2.0.2", 41002, 9999, [(True, b"REJECTME"), (False, b"never seen")])
# G: benign, every packet passes.
tcp_flow("10.2.0.4", "10.2.0.2", 41003, 9999, [(True, b"just fine"), (False, b"ok")])
# F: UDP rejected: an ICMP port unreachable goes back to 10.2.0.5, the answer is dropped.
add(E()/IP(src="10.2.0.5", dst="10.2.0.6")/UDP(sport=5555, dport=6666)/Raw(b"UDPREJECT ask"))
add(E()/IP(src="10.2.0.6", dst="10.2.0.5")/UDP(sport=6666, dport=5555)/Raw(b"answer"))
cap.write(sys.argv[1])
PY

cat >"$tmp/test.rules" <<'EOF'
drop tcp any any -> any 9999 (msg:"VIGIL drop"; flow:to_server,established; content:"DROPME"; sid:3000001; rev:1;)
reject tcp any any -> any 9999 (msg:"VIGIL reject tcp"; flow:to_server,established; content:"REJECTME"; sid:3000002; rev:1;)
reject udp any any -> any 6666 (msg:"VIGIL reject udp"; content:"UDPREJECT"; sid:3000003; rev:1;)
alert tcp any any -> any 9999 (msg:"VIGIL alert only"; content:"just fine"; sid:3000004; rev:1;)
EOF
write_config() {  # $1 = true | false (detect.inline_actions)
  { null_bridge_config inline; cat <<EOF
detect:
  enabled: true
  rules: [test.rules]
  inline_actions: $1
outputs:
  eve: {enabled: true, path: /dev/null}
EOF
  } >"$tmp/vigil.yaml"
}

verify() {  # verify MODE EVE COUNTERS OUT.pcap
  /usr/bin/python3 - "$@" "$tmp/in.pcap" <<'PY'
import json, sys
from scapy.all import rdpcap, IP, TCP, UDP, ICMP
mode, eve, counters, out, inp = sys.argv[1:6]
ips = mode == "ips"
events = [json.loads(l) for l in open(eve)]
alerts = {e["alert"]["signature_id"]: e for e in events if e["event_type"] == "alert"}
c = json.load(open(counters))
sent, fwd = rdpcap(inp), rdpcap(out)
ok = True
def expect(what, cond):
    global ok
    print(f"  {'ok ' if cond else 'BAD'} {what}")
    ok &= bool(cond)
def key(p):
    return bytes(p)
forwarded = {key(p) for p in fwd}
def port_of(p):
    l4 = p[TCP] if TCP in p else p[UDP]
    return {l4.sport, l4.dport}
def flow(sport):
    return [p for p in sent if (TCP in p or UDP in p) and sport in port_of(p)]
def passed(pkts):
    return [key(p) in forwarded for p in pkts]
d, e, g, f = flow(41001), flow(41002), flow(41003), flow(5555)
expect(f"all {len(sent)} packets decoded into 4 flows", len(d) + len(e) + len(g) + len(f) == len(sent))
if ips:
    expect("D: the 4 packets before DROPME pass, it and the 4 after are dropped",
           passed(d) == [True] * 4 + [False] * 5)
    expect("E: the 3 handshake packets pass, REJECTME and the rest are dropped",
           passed(e) == [True] * 3 + [False] * 5)
    expect("F: the request and the answer are dropped", passed(f) == [False, False])
else:
    expect("IDS: every packet of D, E and F passes", all(passed(d + e + f)))
expect("G: every packet passes", all(passed(g)))
sent_keys = {key(p) for p in sent}
extra = [p for p in fwd if key(p) not in sent_keys]
rsts = [p for p in extra if TCP in p and p[TCP].flags & 0x04]
icmps = [p for p in extra if ICMP in p]
if ips:
    rej = e[3]  # the REJECTME segment
    to_server = [p for p in rsts if p[IP].src == "10.2.0.3" and p[TCP].dport == 9999]
    to_client = [p for p in rsts if p[IP].src == "10.2.0.2" and p[TCP].dport == 41002]
    expect("E: one RST toward the server, at the dropped segment's sequence number",
           len(to_server) == 1 and to_server[0][TCP].seq == rej[TCP].seq)
    expect("E: one RST toward the client, at the sequence number it expects",
           len(to_client) == 1 and to_client[0][TCP].seq == rej[TCP].ack
           and to_client[0][TCP].ack == rej[TCP].seq + len(rej[TCP].payload))
    expect("F: one ICMP port unreachable from 10.2.0.6 to 10.2.0.5 quoting the request",
           len(icmps) == 1 and icmps[0][IP].src == "10.2.0.6" and icmps[0][IP].dst == "10.2.0.5"
           and icmps[0][ICMP].type == 3 and icmps[0][ICMP].code == 3
           and bytes(icmps[0][ICMP].payload)[:28] == bytes(f[0][IP])[:28])
    expect(f"nothing else was sent ({len(extra)} extra frames)", len(extra) == 3)
else:
    expect("IDS: nothing was sent", not extra)
acted = "blocked" if ips else "allowed"
for sid in (3000001, 3000002, 3000003):
    expect(f"alert {sid} action {acted}", alerts.get(sid, {}).get("alert", {}).get("action") == acted)
expect("alert 3000004 (an alert rule) allowed",
       alerts.get(3000004, {}).get("alert", {}).get("action") == "allowed")
port = c["ports"][0]
dr = port["dropped"]
det = c.get("detect", {})
if ips:
    expect(f"counters: dropped.rule 3, flow_action 9, detect drops 3 rejects 2 ({dr}, {det})",
           dr.get("rule") == 3 and dr.get("flow_action") == 9 and det.get("drops") == 3
           and det.get("rejects") == 2)
else:
    expect(f"counters: nothing dropped ({dr}, {det})",
           port["dropped_total"] == 0 and det.get("drops") == 0)
sys.exit(0 if ok else 1)
PY
}

for mode in ips ids; do
  write_config "$([ $mode = ips ] && echo true || echo false)"
  "$build/dataplane/vigil-dataplane" --config "$tmp/vigil.yaml" --pcap-in "$tmp/in.pcap" \
    --pcap-out "$tmp/out-$mode.pcap" --eve "$tmp/eve-$mode.json" \
    >"$tmp/counters-$mode.json" 2>"$tmp/stderr-$mode.log"
  check "$mode: replay exits 0" test $? -eq 0 || cat "$tmp/stderr-$mode.log"
  check "$mode: verdicts, replies, alerts and counters" \
    verify "$mode" "$tmp/eve-$mode.json" "$tmp/counters-$mode.json" "$tmp/out-$mode.pcap"
done

echo "inline-actions: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
