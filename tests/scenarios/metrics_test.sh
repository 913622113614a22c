#!/usr/bin/env bash
# Issue 6's metrics check with a real Prometheus server: vigil-control serves /metrics on
# loopback (its own counters and, read over the command socket, the dataplane's), a paced replay
# of a generated capture runs through the dataplane, and a Prometheus started by this test scrapes
# control every second. PromQL queries then must return the dataplane's received packets per
# port, control's received events, and vigil_dataplane_up.
# usage: metrics_test.sh BUILD_DIR      (skips without /usr/bin/prometheus or scapy)
set -uo pipefail
build=$(cd "${1:?usage: metrics_test.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
[ -x /usr/bin/prometheus ] || { echo "SKIP: prometheus not installed (scripts/setup.sh installs it)"; exit 77; }
/usr/bin/python3 -c "import scapy" 2>/dev/null || { echo "SKIP: scapy missing"; exit 77; }
tmp=$(mktemp -d /tmp/vigil-metrics.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"  # check, pass, fail
free_port() { /usr/bin/python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
api_port=$(free_port) prom_port=$(free_port)

/usr/bin/python3 "$root/tests/gen/respond.py" "$tmp/traffic.pcap" >/dev/null
"$build/control/vigil-control" --config "$root/config/control.yaml" --data-dir "$tmp/data" \
  --event-socket "$tmp/events.sock" --api-socket "$tmp/api.sock" \
  --api-listen "127.0.0.1:$api_port" --models-dir "$root/rules/models" \
  --dataplane-socket "$tmp/commands.sock" 2>"$tmp/control.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -S "$tmp/events.sock" ] && break; sleep 0.1; done
# About 9 s of traffic at 200 packets/s: Prometheus scrapes it while it runs.
"$build/dataplane/vigil-dataplane" --config "$root/config/vigil.yaml" --pcap-in "$tmp/traffic.pcap" \
  --eve "$tmp/eve.json" --control-socket "$tmp/events.sock" --journal-dir "$tmp/journal" \
  --command-socket "$tmp/commands.sock" --replay-pps 200 -- --file-prefix "vmetrics$$" \
  >"$tmp/counters.json" 2>"$tmp/dataplane.log" &
dp=$!
pids+=($dp)
cat >"$tmp/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: vigil
    static_configs: [{targets: ["127.0.0.1:$api_port"]}]
YAML
/usr/bin/prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
pids+=($!)

query() {  # query PROMQL: prints the first value, or nothing
  curl -s --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    /usr/bin/python3 -c "import json,sys; r=json.load(sys.stdin)['data']['result']; print(r[0]['value'][1] if r else '')" 2>/dev/null
}
rx="" up="" events=""
for _ in $(seq 1 40); do
  rx=$(query 'sum(vigil_dataplane_port_rx_packets_total)')
  up=$(query 'max_over_time(vigil_dataplane_up[1m])')
  events=$(query 'max(vigil_control_events_received_total)')
  [ -n "$rx" ] && [ "${rx%.*}" -gt 100 ] 2>/dev/null && [ "$up" = 1 ] && [ -n "$events" ] && [ "${events%.*}" -gt 0 ] && break
  sleep 0.5
done
echo "  prometheus: sum(vigil_dataplane_port_rx_packets_total) = $rx, max_over_time(vigil_dataplane_up[1m]) = $up, vigil_control_events_received_total = $events"
check "Prometheus scraped the dataplane's packet counters through control" \
  test -n "$rx" -a "${rx%.*}" -gt 100 2>/dev/null
check "vigil_dataplane_up was 1 while the dataplane ran" test "$up" = 1
check "control's own counters are scraped too" test -n "$events" -a "${events%.*}" -gt 0 2>/dev/null
curl -s "http://127.0.0.1:$api_port/metrics" >"$tmp/metrics.txt"
check "the whole /metrics text passes promtool check metrics ($(grep -c '^# TYPE' "$tmp/metrics.txt") families)" \
  bash -c 'promtool check metrics <"$0" && [ -z "$(promtool check metrics <"$0" 2>&1)" ]' "$tmp/metrics.txt"
wait "$dp"
targets=$(curl -s "http://127.0.0.1:$prom_port/api/v1/targets" | /usr/bin/python3 -c "import json,sys; t=json.load(sys.stdin)['data']['activeTargets']; print(t[0]['health'], t[0].get('lastError',''))" 2>/dev/null)
echo "  scrape target: $targets"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
