#!/usr/bin/env bash
# Issue 7 part 3 (IDS mode) end to end: a generated capture and a rules file written here, replayed
# with detect enabled; the EVE alert events have the right sids, counts and packet-oriented
# addresses, flowbits carry within a flow and not across flows, rules for another port or
# protocol stay silent, rules on the HTTP and DNS parsers' buffers alert once on their message
# with its metadata (a rule on the request's URI and the response's status, once on the response), a pattern split over two TCP segments alerts once (the stream seam), the flow
# events say alerted, and --check reports the rule count.
set -uo pipefail
build=${1:?usage: alerts_test.sh BUILD_DIR}
if ! /usr/bin/python3 -c "import scapy" 2>/dev/null; then echo "SKIP: scapy missing"; exit 77; fi
tmp=$(mktemp -d /tmp/vigil-alerts.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"  # check, pass, fail

SCENARIOS=$(dirname "$0") /usr/bin/python3 - "$tmp/alerts.pcap" <<'PY'
import os, sys
sys.path.insert(0, os.environ["SCENARIOS"])
from scapy.all import IP, UDP, Raw
from flowgen import Capture
cap = Capture()
tcp_flow, add, E = cap.tcp_flow, cap.add, cap.eth
# Flow A: the pattern twice to the server (2 alerts, sets the flowbit), a reply checked by it.
tcp_flow("10.1.0.1", "10.1.0.2", 40001, 9999,
         [(True, b"hello VIGILTEST one"), (False, b"reply SECRETREPLY"), (True, b"VIGILTEST two")])
# Flow B: the same reply without the pattern first: the flowbit is flow A's only.
tcp_flow("10.1.0.3", "10.1.0.2", 40002, 9999, [(False, b"reply SECRETREPLY")])
# Flow C: the pattern to another port.
tcp_flow("10.1.0.4", "10.1.0.2", 40003, 7777, [(True, b"hello VIGILTEST three")])
# UDP, both ways: the request alerts; the answer is established.
add(E()/IP(src="10.1.0.5", dst="10.1.0.6")/UDP(sport=5555, dport=6666)/Raw(b"UDPMAGIC ask"))
add(E()/IP(src="10.1.0.6", dst="10.1.0.5")/UDP(sport=6666, dport=5555)/Raw(b"UDPMAGIC answer"))
# Flow D, HTTP: rules on the parser's buffers (URI, host, status, body), not on the packets.
tcp_flow("10.1.0.7", "10.1.0.8", 40004, 80,
         [(True, b"GET /vigil-%61dmin?x=1 HTTP/1.1\r\nHost: WWW.Example.COM:80\r\n"
                 b"User-Agent: vt/1.0\r\n\r\n"),
          (False, b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")])
# Flow E, DNS: a query for a name a rule watches.
from scapy.all import DNS, DNSQR
add(E()/IP(src="10.1.0.9", dst="10.1.0.10")/UDP(sport=5353, dport=53)
    / DNS(id=7, rd=1, qd=DNSQR(qname="Evil.Example.com")))
# Flow F: a pattern split over two in-order segments to the server.
tcp_flow("10.1.0.11", "10.1.0.12", 40005, 8888,
         [(True, b"xx SPLIT-PAT"), (True, b"TERN-VIGIL yy")])
cap.write(sys.argv[1])
PY

cat >"$tmp/test.rules" <<'EOF'
# Relative to the config file: loaded from the test's directory.
alert tcp any any -> any 9999 (msg:"VIGIL pattern to 9999"; flow:to_server,established; content:"VIGILTEST"; flowbits:set,vt.seen; classtype:trojan-activity; sid:1000001; rev:2;)
alert tcp any 9999 -> any any (msg:"VIGIL reply after pattern"; flow:to_client; content:"SECRETREPLY"; flowbits:isset,vt.seen; sid:1000002; rev:1;)
alert udp any any -> any 6666 (msg:"VIGIL udp request"; content:"UDPMAGIC"; sid:1000003; rev:1;)
alert udp any any -> any any (msg:"VIGIL udp established"; flow:established; content:"UDPMAGIC"; sid:1000004; rev:1;)
alert udp any any -> any any (msg:"VIGIL wrong protocol"; content:"VIGILTEST"; sid:1000005; rev:1;)
alert tcp any any -> any 80 (msg:"VIGIL wrong port"; content:"VIGILTEST"; sid:1000006; rev:1;)
alert http any any -> any any (msg:"VIGIL http uri and host"; flow:established,to_server; http.uri; content:"/vigil-admin"; http.host; content:"www.example.com"; sid:1000010; rev:1;)
alert http any any -> any any (msg:"VIGIL http status and body"; flow:to_client; http.stat_code; content:"200"; file_data; content:"secret"; sid:1000011; rev:1;)
alert http any any -> any any (msg:"VIGIL http uri and status"; http.uri; content:"/vigil-admin"; http.stat_code; content:"200"; sid:1000014; rev:1;)
alert dns any any -> any any (msg:"VIGIL dns query"; dns.query; content:"evil.example"; nocase; sid:1000012; rev:1;)
alert tcp any any -> any 8888 (msg:"VIGIL split pattern"; flow:to_server,established; content:"SPLIT-PATTERN-VIGIL"; sid:1000013; rev:1;)
alert tcp any any -> any any (msg:"VIGIL bad rule"; content:"x"; byte_math:bytes 1,offset 0,oper +,rvalue 1,result y; sid:1000007;)
EOF
{ null_bridge_config alerts; cat <<EOF
detect:
  enabled: true
  rules: [test.rules]
outputs:
  eve: {enabled: true, path: /dev/null}
EOF
} >"$tmp/vigil.yaml"

"$build/dataplane/vigil-dataplane" --config "$tmp/vigil.yaml" --check >"$tmp/check.out" 2>&1
check "--check reports the rules loaded and rejected" \
  grep -q "^detect: 11 loaded, 1 rejected" "$tmp/check.out" || cat "$tmp/check.out"

"$build/dataplane/vigil-dataplane" --config "$tmp/vigil.yaml" --pcap-in "$tmp/alerts.pcap" \
  --eve "$tmp/eve.json" >"$tmp/counters.json" 2>"$tmp/stderr.log"
check "replay exits 0" test $? -eq 0
check "start-up prints the summary" grep -q "detect: 11 loaded, 1 rejected" "$tmp/stderr.log"

check "alert events" /usr/bin/python3 - "$tmp/eve.json" "$tmp/counters.json" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
alerts = [e for e in events if e["event_type"] == "alert"]
counters = json.load(open(sys.argv[2]))
ok = True
def expect(what, cond):
    global ok
    print(f"  {'ok ' if cond else 'BAD'} {what}")
    ok &= bool(cond)
by_sid = {}
for a in alerts:
    by_sid.setdefault(a["alert"]["signature_id"], []).append(a)
print("  alerts by sid:", {k: len(v) for k, v in sorted(by_sid.items())})
expect("1000001 twice, both from 10.1.0.1:40001 to 10.1.0.2:9999",
       len(by_sid.get(1000001, [])) == 2 and all(
           (a["src_ip"], a["src_port"], a["dest_ip"], a["dest_port"]) ==
           ("10.1.0.1", 40001, "10.1.0.2", 9999) for a in by_sid.get(1000001, [])))
a1 = by_sid.get(1000001, [{}])[0]
expect("1000001 alert members", a1.get("alert") == {
    "action": "allowed", "gid": 1, "signature_id": 1000001, "rev": 2,
    "signature": "VIGIL pattern to 9999", "category": "", "severity": 3}
    and a1.get("proto") == "TCP" and a1.get("direction") == "to_server"
    and a1.get("pcap_cnt") == 4 and "flow_id" in a1)
expect("1000001 message", a1.get("message") ==
       "ALERT [1:1000001:2] VIGIL pattern to 9999 (trojan-activity)")
r = by_sid.get(1000002, [])
expect("1000002 once (flowbit of flow A), oriented server -> client",
       len(r) == 1 and (r[0]["src_ip"], r[0]["src_port"], r[0]["dest_ip"], r[0]["dest_port"]) ==
       ("10.1.0.2", 9999, "10.1.0.1", 40001) and r[0]["direction"] == "to_client"
       and r[0]["flow_id"] == a1.get("flow_id"))
expect("1000003 once (the request to 6666)", len(by_sid.get(1000003, [])) == 1)
u = by_sid.get(1000004, [])
expect("1000004 once, on the UDP answer (established)", len(u) == 1 and u[0]["src_port"] == 6666)
expect("no alert for the other protocol, the other port or the rejected rule",
       not ({1000005, 1000006, 1000007} & set(by_sid)))
flows = {e["flow_id"]: e for e in events if e["event_type"] == "flow"}
alerted = sorted(f["src_port"] for f in flows.values() if f["flow"]["alerted"])
expect(f"flows alerted: {alerted}", alerted == [5353, 5555, 40001, 40004, 40005])
# App-layer messages: each rule once, on its message, with the message's metadata.
h = by_sid.get(1000010, [])
expect("1000010 once, to the server, with the request's http metadata",
       len(h) == 1 and h[0]["direction"] == "to_server" and h[0]["dest_port"] == 80
       and h[0].get("http", {}).get("hostname") == "www.example.com"
       and h[0]["http"].get("url") == "/vigil-%61dmin?x=1"
       and h[0]["http"].get("http_method") == "GET"
       and h[0]["http"].get("http_user_agent") == "vt/1.0")
r = by_sid.get(1000011, [])
expect("1000011 once, to the client, with status 200",
       len(r) == 1 and r[0]["direction"] == "to_client" and r[0]["src_port"] == 80
       and r[0].get("http", {}).get("status") == 200)
us = by_sid.get(1000014, [])
expect("1000014 (request URI and response status) once, on the response, with the request's url",
       len(us) == 1 and us[0]["direction"] == "to_client"
       and us[0].get("http", {}).get("url") == "/vigil-%61dmin?x=1"
       and us[0]["http"].get("status") == 200)
q = by_sid.get(1000012, [])
expect("1000012 once, with the query name",
       len(q) == 1 and q[0].get("dns", {}).get("query", [{}])[0].get("rrname") ==
       "Evil.Example.com")
expect("packet alerts carry no message metadata", "http" not in a1 and "dns" not in a1)
sp = by_sid.get(1000013, [])
expect("1000013 once, on the segment that completes the split pattern",
       len(sp) == 1 and sp[0]["src_port"] == 40005 and sp[0]["direction"] == "to_server"
       and sp[0].get("pcap_cnt") == 39)  # flow F's second data segment (34 packets before F)
d = counters.get("detect", {})
# stream_continued: flow A's second request and flow F's second segment continue their stream.
expect(f"counters {d}", d.get("rules_loaded") == 11 and d.get("alerts") == 10
       and d.get("alerts_lost") == 0 and d.get("inspected") == 12
       and d.get("stream_continued") == 2 and d.get("transactions") == 3)
sys.exit(0 if ok else 1)
PY

# detect off (the default): the same replay raises nothing.
sed -i 's/^  enabled: true/  enabled: false/' "$tmp/vigil.yaml"
"$build/dataplane/vigil-dataplane" --config "$tmp/vigil.yaml" --pcap-in "$tmp/alerts.pcap" \
  --eve "$tmp/eve-off.json" >"$tmp/counters-off.json" 2>/dev/null
check "detect disabled: no alerts, no detect counters" /usr/bin/python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
c = json.load(open(sys.argv[2]))
sys.exit(0 if not any(e["event_type"] == "alert" for e in ev) and "detect" not in c else 1)
' "$tmp/eve-off.json" "$tmp/counters-off.json"

echo "alerts: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
