#!/usr/bin/env bash
# Rule reload by SIGHUP (docs/rules.md, "Reload"): the rule files are read again and the new set
# replaces the running one while traffic flows, and a reload that fails keeps the running rules.
#
# vigil-dataplane replays 1,000 UDP datagrams (each a new flow, each carrying both RELOAD-A and
# RELOAD-B) paced at 100 packets/s, starting with a rule on RELOAD-A (sid 1). About 2 s in, the
# file is rewritten to a rule on RELOAD-B (sid 2) and the process gets SIGHUP; about 2 s later the
# file is removed and it gets SIGHUP again. Checks:
#   - the process survives both signals and the replay ends normally (exit 0);
#   - stderr says the rules were reloaded once, and that the second reload failed, naming the
#     missing file, with the running rules kept;
#   - counters: rule_reloads 1, rule_reloads_failed 1, rule_sets_published 2;
#   - every datagram alerted exactly once (one set or the other, never both, never none), sid 1
#     only before sid 2, and sid 2 on the last datagrams (after the failed reload).
# Takes about 11 s.
#
#   tests/scenarios/rule_reload_test.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: rule_reload_test.sh BUILD_DIR}
if ! /usr/bin/python3 -c "import scapy" 2>/dev/null; then echo "SKIP: scapy missing"; exit 77; fi
tmp=$(mktemp -d /tmp/vigil-rule-reload.XXXXXX)
dp=""
cleanup() {
  [ -n "$dp" ] && kill -TERM "$dp" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM
. "$(dirname "$0")/lib.sh"  # check, pass, fail
packets=1000 pps=100

/usr/bin/python3 - "$tmp/reload.pcap" "$packets" <<'PY'
import sys
from scapy.all import Ether, IP, UDP, Raw, wrpcap
pkts = []
for i in range(int(sys.argv[2])):
    p = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
         / IP(src="10.9.%d.%d" % (i // 250, i % 250 + 1), dst="10.9.9.9")
         / UDP(sport=20000 + i, dport=7000) / Raw(b"hello RELOAD-A RELOAD-B %d" % i))
    p.time = 1700000000 + i / 100.0
    pkts.append(p)
wrpcap(sys.argv[1], pkts)
PY

echo 'alert udp any any -> any any (msg:"reload A"; content:"RELOAD-A"; sid:1; rev:1;)' \
  >"$tmp/test.rules"
{ null_bridge_config rule-reload; cat <<EOF
detect:
  enabled: true
  rules: [$tmp/test.rules]
outputs:
  eve: {enabled: true, path: /dev/null}
EOF
} >"$tmp/vigil.yaml"

"$build/dataplane/vigil-dataplane" --config "$tmp/vigil.yaml" --pcap-in "$tmp/reload.pcap" \
  --replay-pps "$pps" --eve "$tmp/eve.json" --command-socket "$tmp/commands.sock" \
  >"$tmp/counters.json" 2>"$tmp/stderr.log" &
dp=$!
for _ in $(seq 1 300); do [ -S "$tmp/commands.sock" ] && break; sleep 0.1; done
[ -S "$tmp/commands.sock" ] || { echo "FAIL dataplane did not start"; cat "$tmp/stderr.log"; exit 1; }

wait_log() {  # wait_log PATTERN: up to 10 s for a stderr line
  for _ in $(seq 1 100); do grep -q "$1" "$tmp/stderr.log" && return 0; sleep 0.1; done
  return 1
}
sleep 2
echo 'alert udp any any -> any any (msg:"reload B"; content:"RELOAD-B"; sid:2; rev:1;)' \
  >"$tmp/test.rules"
kill -HUP "$dp"
check "the first SIGHUP reloads the rules" wait_log "rules reloaded (SIGHUP)"
sleep 2
rm -f "$tmp/test.rules"
kill -HUP "$dp"
check "the second SIGHUP fails and keeps the running rules" \
  wait_log "rule reload (SIGHUP) failed, the running rules stay"
wait "$dp"
rc=$?
dp=""
check "the replay ends normally after both signals (exit $rc)" test "$rc" -eq 0
check "the failure names the missing file" grep -q "failed.*test.rules" "$tmp/stderr.log"
[ $fail -eq 0 ] || cat "$tmp/stderr.log"

check "counters and alerts" /usr/bin/python3 - "$tmp/eve.json" "$tmp/counters.json" "$packets" <<'PY'
import json, sys
alerts = [e for e in map(json.loads, open(sys.argv[1])) if e["event_type"] == "alert"]
det = json.load(open(sys.argv[2]))["detect"]
n = int(sys.argv[3])
ok = True
def expect(what, cond):
    global ok
    print(f"  {'ok ' if cond else 'BAD'} {what}")
    ok &= bool(cond)
expect(f"rule_reloads 1, rule_reloads_failed 1, rule_sets_published 2: {det}",
       det.get("rule_reloads") == 1 and det.get("rule_reloads_failed") == 1
       and det.get("rule_sets_published") == 2)
by_sid = {}
for a in alerts:
    by_sid.setdefault(a["alert"]["signature_id"], []).append(a["pcap_cnt"])
a, b = sorted(by_sid.get(1, [])), sorted(by_sid.get(2, []))
print(f"  sid 1: {len(a)} alerts (packets {a[:1]}..{a[-1:]}), "
      f"sid 2: {len(b)} (packets {b[:1]}..{b[-1:]})")
expect("only sids 1 and 2", set(by_sid) <= {1, 2})
expect(f"every datagram alerted exactly once ({len(a) + len(b)} of {n})",
       sorted(a + b) == list(range(1, n + 1)))
expect("both rule sets alerted, sid 1 only before sid 2", a and b and a[-1] < b[0])
expect("the reloaded set still alerts after the failed reload (last packets)", b and b[-1] == n)
sys.exit(0 if ok else 1)
PY

echo "rule-reload: $pass passed, $fail failed"
[ $fail -eq 0 ]
