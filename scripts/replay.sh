#!/usr/bin/env bash
# Replays captures through the whole appliance: starts vigil-control on DIR, runs the dataplane in
# replay mode over the captures in time order (their events go over the event channel), waits
# until every event is stored and evaluated by every model, then stops control cleanly.
#
#   scripts/replay.sh --data-dir DIR [--config FILE] [--control-config FILE] [--models-dir DIR]
#                     [--replay-pps N] [--pcap-out FILE] PCAP...
#
# The dataplane serves its command socket (run/commands.sock) and control pushes block tables to
# it, so a model with an autonomous response blocks on the replayed wire. --replay-pps paces the
# replay (packets per second) so that such a block can take effect before the capture ends.
# --pcap-out writes what the appliance forwarded (and the RSTs it sent) to FILE.
#
# Afterwards: build/control/vigilctl --data-dir DIR breaches | search QUERY | ...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data_dir="" config="$root/config/vigil.yaml" control_config="$root/config/control.yaml"
models_dir="$root/rules/models" build="${VIGIL_BUILD:-$root/build}" pps="" pcap_out=""
pcaps=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) data_dir=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --control-config) control_config=$2; shift 2 ;;
    --models-dir) models_dir=$2; shift 2 ;;
    --replay-pps) pps=$2; shift 2 ;;
    --pcap-out) pcap_out=$2; shift 2 ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    -*) echo "replay: unknown option $1" >&2; exit 2 ;;
    *) pcaps+=("$1"); shift ;;
  esac
done
[ -n "$data_dir" ] || { echo "replay: --data-dir DIR is required" >&2; exit 2; }
[ ${#pcaps[@]} -gt 0 ] || { echo "replay: no capture given" >&2; exit 2; }
for p in "${pcaps[@]}"; do [ -r "$p" ] || { echo "replay: cannot read $p" >&2; exit 2; }; done
for b in dataplane/vigil-dataplane control/vigil-control control/vigilctl; do
  [ -x "$build/$b" ] || { echo "replay: $build/$b missing: run scripts/setup.sh" >&2; exit 2; }
done
mkdir -p "$data_dir"
data_dir=$(cd "$data_dir" && pwd)
run="$data_dir/run"
mkdir -p "$run"
sock="$run/events.sock" api="$run/api.sock" commands="$run/commands.sock"

# One capture in time order: mergecap orders packets by timestamp across files.
merged="$run/replay.pcap"
if [ ${#pcaps[@]} -eq 1 ]; then
  editcap -F pcap "${pcaps[0]}" "$merged"
else
  mergecap -F pcap -w "$merged" "${pcaps[@]}"
fi

"$build/control/vigil-control" --config "$control_config" --data-dir "$data_dir" \
  --event-socket "$sock" --api-socket "$api" --api-listen "" --models-dir "$models_dir" \
  --dataplane-socket "$commands" 2>"$run/control.log" &
control=$!
stop_control() { kill -TERM "$control" 2>/dev/null || true; wait "$control" 2>/dev/null || true; }
trap stop_control EXIT
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "replay: vigil-control did not start:" >&2; cat "$run/control.log" >&2; exit 1; }

# The dataplane returns once control has acknowledged every event (stored and evaluated).
"$build/dataplane/vigil-dataplane" --config "$config" --pcap-in "$merged" --eve "$run/eve.json" \
  --control-socket "$sock" --journal-dir "$run/journal" --command-socket "$commands" \
  ${pps:+--replay-pps "$pps"} ${pcap_out:+--pcap-out "$pcap_out"} -- --file-prefix "vreplay$$" \
  >"$run/counters.json" 2>"$run/dataplane.log" || {
  echo "replay: vigil-dataplane failed:" >&2; tail -5 "$run/dataplane.log" >&2; exit 1; }
stop_control
trap - EXIT
python3 - "$run/counters.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
ch = c.get("control", {})
rx = sum(p["rx_packets"] for p in c["ports"])
print(f"replay: {rx} packets, {ch.get('submitted', 0)} events sent to control, "
      f"{ch.get('acked', 0)} acknowledged, {ch.get('lost', 0)} lost")
r = c.get("respond", {})
if r.get("blocked") or r.get("block_entries"):
    print(f"replay: blocked {r['blocked']} packets, {r['resets_sent']} RSTs sent "
          f"(block table generation {r['block_generation']}, {r['block_entries']} entries)")
PY
grep -E "breach #|respond:|stopped" "$run/control.log" | sed 's/^/  /' | tail -20
