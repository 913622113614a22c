#!/usr/bin/env bash
# Issue 6's configuration push, end to end: vigil-control and a replaying vigil-dataplane (paced,
# so the pushes land mid-capture), driven with `vigilctl config` and curl over the API socket.
#   refused, each checked for its answer and for the running state afterwards (still the file's
#   rules, version unchanged in both processes): YAML that does not parse; schema errors in both
#   sections (all listed, with line and field); an inline rule that does not compile; a model
#   filter on an unknown field; a setting only a restart can change; no token; a stale version.
#   accepted: version 1 (inline rules), the same version again (a no-op), version 2 (rules by
#   reference, and models inline), then a rollback to version 1.
#   On the wire: the alerts switch from the file's rule to version 1's, 2's and back to 1's in
#   that order with no interleaving, and every packet of the capture is forwarded (no loss).
#   A restarted dataplane (running its file again) gets the active version back from control.
set -uo pipefail
build=${1:?usage: config_push_test.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! /usr/bin/python3 -c "import scapy" 2>/dev/null; then echo "SKIP: scapy missing"; exit 77; fi
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
tmp=$(mktemp -d /tmp/vigil-config.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"  # check, pass, fail
/usr/bin/python3 "$root/tests/gen/respond.py" "$tmp/capture.pcap" >/dev/null

rule() {  # rule SID: an SMB2 request toward port 445
  echo "alert tcp any any -> any 445 (msg:\"config push test $1\"; flow:to_server; content:\"|fe|SMB\"; sid:$1; rev:1;)"
}
rule 9100001 >"$tmp/file.rules"
rule 9100003 >"$tmp/v2.rules"
# The dataplane's file. A pushed document repeats it, changing only what changes live.
dataplane_section() {  # dataplane_section RULES_YAML  (the detect block's contents, indented 4)
  cat <<EOF
  ports:
    - {name: a, device: net_null0}
    - {name: b, device: net_null1}
  bridges:
    - [a, b]
  eal:
    file_prefix: vcfg$$
  history:
    enabled: false
  detect:
    enabled: true
$1
EOF
}
{ dataplane_section "    rules: [file.rules]" | sed 's/^  //'; } >"$tmp/vigil.yaml"
cat >"$tmp/control.yaml" <<EOF
data_dir: $tmp/store
event_socket: $tmp/events.sock
models_dir: $root/rules/models
api: {listen: "", socket: $tmp/api.sock}
respond: {enabled: true, dataplane_socket: $tmp/commands.sock}
EOF

"$build/control/vigil-control" --config "$tmp/control.yaml" 2>"$tmp/control.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -S "$tmp/api.sock" ] && break; sleep 0.1; done
start_dataplane() {  # start_dataplane PPS SUFFIX: a paced replay of the capture, in background
  "$build/dataplane/vigil-dataplane" --config "$tmp/vigil.yaml" --pcap-in "$tmp/capture.pcap" \
    --replay-pps "$1" --eve "$tmp/eve$2.json" --control-socket "$tmp/events.sock" \
    --journal-dir "$tmp/journal" --command-socket "$tmp/commands.sock" \
    >"$tmp/counters$2.json" 2>"$tmp/dataplane$2.log" &
  dataplane=$!
}
start_dataplane 150 ""
pids+=("$dataplane")
for _ in $(seq 1 100); do [ -S "$tmp/commands.sock" ] && break; sleep 0.1; done
[ -S "$tmp/commands.sock" ] || { echo "FAIL dataplane did not start"; cat "$tmp/dataplane.log"; exit 1; }
started=$(date +%s.%N)

ctl() { "$build/control/vigilctl" --socket "$tmp/api.sock" --token-file "$tmp/store/api.token" "$@"; }
running() {  # running VERSION: both processes report it (VERSION "" = nothing pushed)
  ctl --json config get >"$tmp/get.json" 2>&1 &&
    /usr/bin/python3 - "$tmp/get.json" "$1" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
want = sys.argv[2]
ok = (g.get("version") or "") == want and g["dataplane"].get("version", "?") == want
if not ok:
    print(f"  running: control {g.get('version')!r}, dataplane {g['dataplane'].get('version')!r}")
sys.exit(0 if ok else 1)
PY
}
refused() {  # refused NAME FILE PATTERN...: the push fails, stderr has every PATTERN, and
  #            nothing changed (grep -E patterns; the running version is $version)
  local name=$1 file=$2
  shift 2
  if ctl config push "$file" >"$tmp/out" 2>"$tmp/err"; then
    echo "  accepted:"; cat "$tmp/out"; return 1
  fi
  sed 's/^/  | /' "$tmp/err"
  for p in "$@"; do grep -Eq -- "$p" "$tmp/err" || { echo "  missing: $p"; return 1; }; done
  running "$version"
}
version=""

# 1. YAML that does not parse.
printf 'version: "1"\ndataplane:\n  ports: [\n' >"$tmp/bad-yaml.yaml"
check "invalid YAML: refused with its line, nothing changed" \
  refused yaml "$tmp/bad-yaml.yaml" 'bad-yaml.yaml:[0-9]+:[0-9]+: ' 'HTTP 422'

# 2. Schema errors in both sections: every one listed, with its line and field.
{
  echo 'version: "1"'
  echo 'dataplane:'
  dataplane_section "    rules: [file.rules]" | sed 's/^  detect:/  flow: {capacity: lots}\n  detect:/'
  echo 'control:'
  echo "  data_dir: $tmp/store"
  echo "  retention: {days: forever}"
} >"$tmp/bad-schema.yaml"
check "invalid schema: both errors listed with line and field" \
  refused schema "$tmp/bad-schema.yaml" 'bad-schema.yaml:[0-9]+:[0-9]+: dataplane.flow.capacity: ' \
  'bad-schema.yaml:[0-9]+:[0-9]+: control.retention.days: '

# 3. Semantic errors: an inline rule that does not compile; a model filter on an unknown field.
{
  echo 'version: "1"'
  echo 'dataplane:'
  dataplane_section "    inline: |
      $(rule 9100002)
      alert tcp any any -> any any (msg:\"broken\"; content:\"x\"; within:-3; sid:9100009;)"
} >"$tmp/bad-rule.yaml"
bad_line=$(grep -n 'sid:9100009' "$tmp/bad-rule.yaml" | cut -d: -f1)
check "semantic: a rule that does not compile is named by its document line, nothing changed" \
  refused rule "$tmp/bad-rule.yaml" "bad-rule.yaml:$bad_line:0: dataplane.detect: .*sid 9100009"
cat >"$tmp/bad-model.yaml" <<EOF
version: "1"
control:
  data_dir: $tmp/store
  event_socket: $tmp/events.sock
  api: {listen: "", socket: $tmp/api.sock}
  respond: {enabled: true, dataplane_socket: $tmp/commands.sock}
  models_dir: ""
  models:
    - name: Test / Unknown field
      priority: 3
      components:
        - event_types: [smb]
          filter: 'smb.command:WRITE AND smbx.filename:*.exe'
          frequency: {count: 0, interval: 1h}
EOF
check "semantic: a model filter on an unknown field, at its line" \
  refused model "$tmp/bad-model.yaml" 'bad-model.yaml:13:[0-9]+: .*unknown field smbx.filename'

# 4. A setting only a restart can change.
{
  echo 'version: "1"'
  echo 'dataplane:'
  dataplane_section "    rules: [file.rules]" | sed 's/net_null1/net_null2/'
} >"$tmp/restart.yaml"
check "restart-only setting (ports): refused, named, nothing changed" \
  refused restart "$tmp/restart.yaml" 'restart.yaml:[0-9]+:[0-9]+: dataplane.ports: .*restart'

# 5. Without the token.
code=$(curl -s -o "$tmp/notoken" -w '%{http_code}' --unix-socket "$tmp/api.sock" -X PUT \
  --data-binary @"$tmp/restart.yaml" http://vigil/api/v1/config)
check "no token: 401, nothing changed" test "$code" = 401 -a -n "$(running "" && echo y)"

sleep 1
# 6. Version 1: rules inline.
{
  echo 'version: "1"'
  echo 'dataplane:'
  dataplane_section "    inline: |
      $(rule 9100002)"
} >"$tmp/v1.yaml"
check "version 1 (inline rules) applied in both processes" \
  bash -c "'$build/control/vigilctl' --socket '$tmp/api.sock' --token-file '$tmp/store/api.token' \
    config push '$tmp/v1.yaml' | tee '$tmp/v1.out' | grep -q 'applied version 1'"
sed 's/^/  /' "$tmp/v1.out"
version=1
check "version 1 runs" running 1
check "the same version again is a no-op" \
  bash -c "'$build/control/vigilctl' --socket '$tmp/api.sock' --token-file '$tmp/store/api.token' \
    config push '$tmp/v1.yaml' | grep -q 'unchanged version 1'"
cp "$tmp/v1.yaml" "$tmp/v1-changed.yaml"
echo "# another comment" >>"$tmp/v1-changed.yaml"
check "version 1 with a different document: refused" \
  refused changed "$tmp/v1-changed.yaml" 'different document' 'HTTP 409'
sleep 1.5
# 7. Version 2: rules by reference, models inline (control swaps its set).
{
  echo 'version: "2"'
  echo 'dataplane:'
  dataplane_section "    rules: [v2.rules]"
  echo 'control:'
  sed 's/^/  /' "$tmp/control.yaml"
  echo '  models:'
  echo '    - name: Test / Pushed model'
  echo '      priority: 1'
  echo '      components:'
  echo '        - event_types: [smb]'
  echo "          filter: 'smb.command:*'"
  echo '          frequency: {count: 100000, interval: 1h}'
} >"$tmp/v2.yaml"
check_push_offline() {  # version 2's control section validates offline; bad-schema's does not
  "$build/control/vigil-control" --config "$tmp/control.yaml" --check-push "$tmp/v2.yaml" ||
    return 1
  if "$build/control/vigil-control" --config "$tmp/control.yaml" \
    --check-push "$tmp/bad-schema.yaml" 2>"$tmp/check-push.err"; then
    return 1
  fi
  grep -q 'control.retention.days' "$tmp/check-push.err"
}
check "vigil-control --check-push validates a document's control section offline" \
  check_push_offline
check "version 2 (rules by reference, one more model inline) applied" \
  bash -c "'$build/control/vigilctl' --socket '$tmp/api.sock' --token-file '$tmp/store/api.token' \
    config push '$tmp/v2.yaml' | grep -q 'applied version 2'"
version=2
check "version 2 runs, control serves the pushed model" \
  bash -c "$(declare -f running ctl); build='$build' tmp='$tmp' running 2 &&
    '$build/control/vigilctl' --socket '$tmp/api.sock' models | grep -q 'Test / Pushed model'"
# 8. Stale versions.
sed 's/^version: "1"/version: "1.5"/' "$tmp/v1.yaml" >"$tmp/v1.5.yaml"
check "a version that sorts before the running one: refused" \
  refused stale "$tmp/v1.5.yaml" 'sorts before the running version 2' 'HTTP 409'
check "version 1 again (replaced by 2): refused unless forced" \
  refused stale1 "$tmp/v1.yaml" 'older than the running version 2'
sleep 1.5
# 9. Rollback.
check "rollback to version 1" \
  bash -c "'$build/control/vigilctl' --socket '$tmp/api.sock' --token-file '$tmp/store/api.token' \
    config rollback | grep -q 'applied version 1 (rolled back from 2)'"
version=1
check "version 1 runs again in both processes" running 1
elapsed=$(echo "$(date +%s.%N) - $started" | bc)
echo "  pushes done $elapsed s into the replay"

wait "$dataplane"
rc=$?
check "dataplane replay ended cleanly" test "$rc" = 0
check "history: 2 versions (1 active, 2 rolled back); audit has pushes, refusals, rollback" \
  bash -c "'$build/control/vigilctl' --socket '$tmp/api.sock' --token-file '$tmp/store/api.token' \
    config history | tee '$tmp/history' | grep -Eq '^[0-9]+ +active +1 ' &&
    grep -Eq '^[0-9]+ +rolled_back +2 ' '$tmp/history' &&
    '$build/control/vigilctl' --socket '$tmp/api.sock' respond audit --limit 100 >'$tmp/audit' &&
    grep -q config.push '$tmp/audit' && grep -q config.refuse '$tmp/audit' &&
    grep -q config.rollback '$tmp/audit'"
sed 's/^/  /' "$tmp/history"
check "alerts switch file -> 1 -> 2 -> 1 without interleaving; every packet forwarded" \
  /usr/bin/python3 - "$tmp/eve.json" "$tmp/counters.json" <<'PY'
import json, sys
sids = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event_type") == "alert":
        sids.append((e["pcap_cnt"], e["alert"]["signature_id"]))
sids.sort()
runs = []
for _, s in sids:
    if not runs or runs[-1][0] != s:
        runs.append([s, 0])
    runs[-1][1] += 1
print("  alert runs (sid, count): " + ", ".join(f"{s}x{n}" for s, n in runs))
c = json.load(open(sys.argv[2]))
rx = sum(p["rx_packets"] for p in c["ports"])
fwd = sum(p["forwarded"] for p in c["ports"])
drops = {k: v for p in c["ports"] for k, v in p["dropped"].items() if v}
drops.update({k: v for p in c["ports"] for k, v in p["device"].items()
              if k in ("imissed", "ierrors", "oerrors", "rx_nombuf") and v})
print(f"  packets: {rx} received, {fwd} forwarded, drops {drops or 'none'}; "
      f"rule sets published {c.get('detect', {}).get('rule_sets_published')}")
ok = [s for s, _ in runs] == [9100001, 9100002, 9100003, 9100002]
ok &= rx == 1908 and fwd == rx and not drops
sys.exit(0 if ok else 1)
PY
# 10. A restarted dataplane runs its file until control pushes the active version again.
start_dataplane 300 2
pids+=("$dataplane")
resynced=""
for _ in $(seq 1 50); do
  sleep 0.2
  if running 1 2>/dev/null; then resynced=yes; break; fi
done
check "a restarted dataplane gets version 1 again from control (resync)" test -n "$resynced"
wait "$dataplane"
check "after the restart: the file's rule first, version 1's after the resync" \
  /usr/bin/python3 - "$tmp/eve2.json" <<'PY'
import json, sys
runs = []
for _, s in sorted((e["pcap_cnt"], e["alert"]["signature_id"]) for e in map(json.loads, open(sys.argv[1]))
                   if e.get("event_type") == "alert"):
    if not runs or runs[-1][0] != s:
        runs.append([s, 0])
    runs[-1][1] += 1
print("  alert runs after the restart (sid, count): " + ", ".join(f"{s}x{n}" for s, n in runs))
sys.exit(0 if [s for s, _ in runs][-1:] == [9100002] and len(runs) <= 2 else 1)
PY
check "the resync is audited" \
  bash -c "'$build/control/vigilctl' --socket '$tmp/api.sock' respond audit --limit 100 |
    grep -q config.resync"

if [ "$fail" -ne 0 ]; then
  echo "--- dataplane log"; tail -20 "$tmp/dataplane.log"
  echo "--- control log"; tail -20 "$tmp/control.log"
fi
echo "config push: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
