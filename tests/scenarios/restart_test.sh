#!/usr/bin/env bash
# Issue 4's restart test with the real binaries: vigil-control is killed with SIGKILL twice in the
# middle of a replay (while the dataplane is sending events) and restarted on the same store.
# Against a run of the same capture without kills (scripts/replay.sh):
#   - every event is stored exactly once: the same count, sequence numbers 1..N without gap or
#     duplicate, and the event stored under each sequence number is the same;
#   - the dataplane loses nothing more: its counters (packets, drops, events, channel lost) match;
#   - the breaches are the same (model, device, time): a restarted control carries the models'
#     windows and throttles over (warm-up), and events and their breaches commit together.
#
#   tests/scenarios/restart_test.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: restart_test.sh BUILD_DIR}
build=$(cd "$build" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
if ! $py -c "import scapy" 2>/dev/null; then echo "SKIP: scapy missing (python3-scapy)"; exit 77; fi
tmp=$(mktemp -d /tmp/vigil-restart.XXXXXX)
control_pid=""
cleanup() {
  [ -n "$control_pid" ] && kill -KILL "$control_pid" 2>/dev/null
  [ -n "${dp_pid:-}" ] && kill -KILL "$dp_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"  # check, pass, fail

# Two scenario captures of 60 days with different seeds (about 6,000 events): long enough for
# control to be killed while events are still arriving.
$py "$root/tests/gen/lateral.py" --days 60 --seed 4 "$tmp/a.pcap" >/dev/null
$py "$root/tests/gen/lateral.py" --days 60 --seed 9 --start 2024-03-04T09:40 "$tmp/b.pcap" \
  >/dev/null
mergecap -F pcap -w "$tmp/capture.pcap" "$tmp/a.pcap" "$tmp/b.pcap"

# The baseline: the same capture through scripts/replay.sh, nothing killed.
VIGIL_BUILD="$build" "$root/scripts/replay.sh" --data-dir "$tmp/base" "$tmp/capture.pcap" \
  >"$tmp/base.log" 2>&1 || { echo "FAIL baseline replay"; cat "$tmp/base.log"; exit 1; }

# The run with kills: control and the dataplane started as scripts/replay.sh starts them.
data="$tmp/kill" run="$tmp/kill/run"
mkdir -p "$run"
sock="$run/events.sock" api="$run/api.sock"
start_control() {
  "$build/control/vigil-control" --config "$root/config/control.yaml" --data-dir "$data" \
    --event-socket "$sock" --api-socket "$api" --api-listen "" --models-dir "$root/rules/models" \
    2>>"$run/control.log" &
  control_pid=$!
  for _ in $(seq 1 100); do [ -S "$api" ] && [ -S "$sock" ] && return 0; sleep 0.05; done
  echo "control did not start"; cat "$run/control.log"; return 1
}
stored() {  # events stored so far, from the running control's API
  "$build/control/vigilctl" --socket "$api" --json status 2>/dev/null |
    $py -c "import json,sys; print(json.load(sys.stdin)['store']['events'])" 2>/dev/null || echo 0
}
start_control || exit 1
"$build/dataplane/vigil-dataplane" --config "$root/config/vigil.yaml" --pcap-in "$tmp/capture.pcap" \
  --eve "$run/eve.json" --control-socket "$sock" --journal-dir "$run/journal" \
  -- --file-prefix "vrestart$$" >"$run/counters.json" 2>"$run/dataplane.log" &
dp_pid=$!
total=$(wc -l <"$tmp/base/run/eve.json")
kills=()
for at in 1 $((total / 2)); do
  # Kill as soon as at least `at` events are stored (polling every 20 ms, for at most 60 s).
  for _ in $(seq 1 3000); do
    n=$(stored)
    [ "$n" -ge "$at" ] && break
    kill -0 "$dp_pid" 2>/dev/null || break
    sleep 0.02
  done
  kill -KILL "$control_pid"
  wait "$control_pid" 2>/dev/null
  # What the killed process had committed (read from the stopped store).
  n=$("$build/control/vigilctl" --data-dir "$data" --json status |
      $py -c "import json,sys; print(json.load(sys.stdin)['store']['events'])")
  kills+=("$n")
  rm -f "$api"  # the stale socket of the killed process
  sleep 0.3     # the dataplane notices, keeps journaling and retries
  start_control || exit 1
done
wait "$dp_pid"
dp_rc=$?
dp_pid=""
kill -TERM "$control_pid"
wait "$control_pid" 2>/dev/null
control_pid=""
echo "  $total events; control killed with $(IFS=/; echo "${kills[*]}") of them stored"

check "dataplane finished" [ "$dp_rc" -eq 0 ]
check "a kill happened while events were still arriving" $py - "$total" "${kills[@]}" <<'PY'
import sys
total, kills = int(sys.argv[1]), [int(x) for x in sys.argv[2:]]
sys.exit(0 if any(0 < k < total for k in kills) else 1)
PY
check "every event stored exactly once, in sequence, the same as without kills" \
  $py - "$tmp/base/vigil.db" "$data/vigil.db" <<'PY'
import sqlite3, sys
def rows(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    return db.execute("SELECT seq, ts_ns, event_type, message FROM events ORDER BY seq").fetchall()
base, kill = rows(sys.argv[1]), rows(sys.argv[2])
seqs = [r[0] for r in kill]
print(f"  baseline {len(base)} events, killed run {len(kill)}, seq {seqs[0]}..{seqs[-1]}"
      if kill else "  no events stored")
ok = len(kill) == len(base) and seqs == list(range(1, len(kill) + 1)) and kill == base
if not ok:
    diff = next((i for i, (a, b) in enumerate(zip(base, kill)) if a != b), None)
    print(f"  first difference at index {diff}")
sys.exit(0 if ok else 1)
PY
check "dataplane counters: no extra loss" $py - "$tmp/base/run/counters.json" "$run/counters.json" \
  <<'PY'
import json, sys
def pick(path):
    c = json.load(open(path))
    ports = [{k: p.get(k) for k in ("rx_packets", "forwarded", "dropped_total", "in_flight")}
             for p in c["ports"]]
    ch = c.get("control", {})
    return ports, ch.get("submitted"), ch.get("acked"), ch.get("lost")
a, b = pick(sys.argv[1]), pick(sys.argv[2])
print(f"  baseline {a[1]} events sent, {a[2]} acked, {a[3]} lost; killed run {b[1]} sent, "
      f"{b[2]} acked, {b[3]} lost")
sys.exit(0 if a == b and b[3] == 0 and b[1] == b[2] else 1)
PY
check "the same breaches as without kills" $py - "$tmp/base/vigil.db" "$data/vigil.db" <<'PY'
import sqlite3, sys
def rows(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    return db.execute("SELECT model, device, ts_ns FROM breaches ORDER BY ts_ns, model").fetchall()
base, kill = rows(sys.argv[1]), rows(sys.argv[2])
print(f"  baseline {len(base)} breaches, killed run {len(kill)}")
for r in sorted(set(base) ^ set(kill))[:5]:
    print(f"  only in {'baseline' if r in base else 'killed run'}: {r}")
sys.exit(0 if base == kill and base else 1)
PY
check "control logged its warm-up after each restart" \
  test "$(grep -c 'models warmed up with' "$run/control.log")" -ge 2
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
