#!/usr/bin/env bash
# Issue 5's replay scenario for autonomous response: tests/gen/respond.py's capture (WS066 creates
# a service on SRV05 over svcctl, then keeps writing an executable to ADMIN$ on the same SMB
# connection, while WS021 reads a file and resolves names) replayed through scripts/replay.sh at a
# bounded packet rate, once with a copy of "Device / Remote Service Creation" whose response is
# block_connection in autonomous mode, once in confirm mode. Checked on the output capture and the
# counters:
#   autonomous: the connection's packets after the breach are missing from the output, in one
#   contiguous tail; one RST toward each end is in it; every bystander packet passes; the
#   dataplane's blocked counter equals the missing packets; control lists the action as active
#   with the same drops.
#   confirm: nothing is blocked, the action is pending; `vigilctl respond confirm` (through a
#   running control) activates it and the audit log names who and why.
set -uo pipefail
build=${1:?usage: respond_test.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! /usr/bin/python3 -c "import scapy" 2>/dev/null; then echo "SKIP: scapy missing"; exit 77; fi
tmp=$(mktemp -d /tmp/vigil-respond.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"  # check, pass, fail
/usr/bin/python3 "$root/tests/gen/respond.py" "$tmp/respond.pcap" >"$tmp/info.json"
for mode in autonomous confirm; do
  mkdir -p "$tmp/models-$mode"
  sed "s/^response:.*/response: {action: block_connection, duration: 1h, mode: $mode}/" \
    "$root/rules/models/remote_service_creation.yaml" >"$tmp/models-$mode/model.yaml"
  VIGIL_BUILD="$build" "$root/scripts/replay.sh" --data-dir "$tmp/store-$mode" \
    --models-dir "$tmp/models-$mode" --replay-pps 300 --pcap-out "$tmp/out-$mode.pcap" \
    "$tmp/respond.pcap" >"$tmp/replay-$mode.log" 2>&1
  check "$mode: replay through dataplane and control, 0 events lost" grep -q " 0 lost" \
    "$tmp/replay-$mode.log"
  "$build/control/vigilctl" --data-dir "$tmp/store-$mode" --json respond list \
    >"$tmp/actions-$mode.json" 2>"$tmp/vigilctl-$mode.err"
done
sed 's/^/  /' "$tmp/replay-autonomous.log"

check "autonomous: the connection is cut after the breach, RSTs both ways, bystanders pass" \
  /usr/bin/python3 - "$tmp/respond.pcap" "$tmp/out-autonomous.pcap" "$tmp/info.json" \
  "$tmp/store-autonomous/run/counters.json" "$tmp/actions-autonomous.json" <<'PY'
import json, sys
from scapy.all import IP, TCP, rdpcap
inp, out = rdpcap(sys.argv[1]), rdpcap(sys.argv[2])
info = json.load(open(sys.argv[3]))
counters = json.load(open(sys.argv[4]))
actions = json.load(open(sys.argv[5]))["actions"]
ends = {(info["attacker"], info["attacker_port"]), (info["server"], 445)}
def conn(p):
    return IP in p and TCP in p and {(p[IP].src, p[TCP].sport), (p[IP].dst, p[TCP].dport)} == ends
cin = [bytes(p) for p in inp if conn(p)]
cout = [p for p in out if conn(p)]
rsts = [p for p in cout if p[TCP].flags & 0x04]
kept = [bytes(p) for p in cout if not p[TCP].flags & 0x04]
others_in = [bytes(p) for p in inp if not conn(p)]
others_out = [bytes(p) for p in out if not conn(p)]
missing = len(cin) - len(kept)
trigger = next(i for i, p in enumerate(inp) if p.time >= info["trigger_time"])
print(f"  connection: {len(cin)} packets in, {len(kept)} forwarded, {missing} dropped; "
      f"trigger at packet {trigger + 1} of {len(inp)}; {len(rsts)} RSTs")
print(f"  bystanders: {len(others_in)} packets in, {len(others_out)} out")
r = counters["respond"]
print(f"  dataplane: blocked {r['blocked']}, resets sent {r['resets_sent']}, "
      f"table generation {r['block_generation']}")
for a in actions:
    print(f"  action #{a['id']}: {a['kind']} {a['state']} drops {a.get('drops')} "
          f"resets {a.get('resets')} breach {a.get('breach_id')}")
ok = True
def need(cond, what):
    global ok
    if not cond:
        print("  not so: " + what)
        ok = False
need(kept == cin[:len(kept)], "the forwarded packets are the connection's first ones, in order")
need(missing > len(cin) // 2, "most of the write after the breach is dropped")
need(len(kept) > 20, "the connection carried the service creation before the block")
need(len(rsts) == 2, "one RST toward each end")
need({p[IP].src for p in rsts} == {info["attacker"], info["server"]}, "RSTs go both ways")
need(others_out == others_in, "every bystander packet is forwarded, in order")
need(r["blocked"] == missing, "the dataplane's blocked counter equals the missing packets")
need(r["resets_sent"] == 2, "two RSTs counted")
act = [a for a in actions if a["kind"] == "block_connection"]
need(len(act) == 1 and act[0]["state"] == "active", "one active block_connection action")
# Control reads the counters back every 2 s: its last read may precede the last drops.
need(act and 0 < act[0].get("drops", 0) <= missing, "control read the entry's drops back")
sys.exit(0 if ok else 1)
PY

check "confirm: nothing blocked, the action waits for confirmation" \
  /usr/bin/python3 - "$tmp/respond.pcap" "$tmp/out-confirm.pcap" \
  "$tmp/store-confirm/run/counters.json" "$tmp/actions-confirm.json" <<'PY'
import json, sys
from scapy.all import rdpcap
inp, out = rdpcap(sys.argv[1]), rdpcap(sys.argv[2])
r = json.load(open(sys.argv[3])).get("respond", {})
actions = json.load(open(sys.argv[4]))["actions"]
print(f"  {len(inp)} packets in, {len(out)} out; blocked {r.get('blocked')}; actions "
      + ", ".join(f"#{a['id']} {a['kind']} {a['state']}" for a in actions))
ok = [bytes(p) for p in inp] == [bytes(p) for p in out] and r.get("blocked") == 0 and \
    len(actions) == 1 and actions[0]["state"] == "pending"
sys.exit(0 if ok else 1)
PY
id=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['actions'][0]['id'])" \
  "$tmp/actions-confirm.json" 2>/dev/null)
# Confirming needs a running control (it pushes the table): start one on the confirm store.
run="$tmp/store-confirm/run"
"$build/control/vigil-control" --config "$root/config/control.yaml" \
  --data-dir "$tmp/store-confirm" --event-socket "$run/events2.sock" --api-socket "$run/api2.sock" \
  --api-listen "" --models-dir "$tmp/models-confirm" --dataplane-socket "$run/none.sock" \
  2>"$run/control2.log" &
control=$!
for _ in $(seq 1 100); do [ -S "$run/api2.sock" ] && break; sleep 0.1; done
vctl() { "$build/control/vigilctl" --socket "$run/api2.sock" --token-file "$tmp/store-confirm/api.token" "$@"; }
USER=respond-test vctl respond confirm "${id:-0}" --reason "checked by respond_test" >"$tmp/confirm.out" 2>&1
vctl --json respond show "${id:-0}" >"$tmp/show.json" 2>&1
vctl --json respond audit >"$tmp/audit.json" 2>&1
kill -TERM "$control"; wait "$control"
check "confirm: vigilctl respond confirm activates it and the audit log says who and why" \
  /usr/bin/python3 - "$tmp/audit.json" "$tmp/show.json" "${id:-0}" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["audit"]
show = json.load(open(sys.argv[2]))
a = show.get("action", show)
for r in rows:
    print(f"  {r.get('time')} {r.get('who')} {r.get('op')} #{r.get('action_id')} {r.get('detail')}")
print(f"  action #{a.get('id')}: {a.get('state')}")
conf = [r for r in rows if str(r.get("action_id")) == sys.argv[3] and r["op"] == "confirm"]
ok = a.get("state") == "active" and conf and "respond-test" in conf[0]["who"] and \
    "checked by respond_test" in conf[0]["detail"]
sys.exit(0 if ok else 1)
PY
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
