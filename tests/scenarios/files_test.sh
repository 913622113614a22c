#!/usr/bin/env bash
# Issue 5's file extraction end to end: the generated lateral-movement capture (10.0.0.9 reads
# Windows\Tasks\AV.job from \\10.0.0.5\C$ once a day) through scripts/replay.sh with
# outputs.files enabled, then checked with vigilctl on the stored data: a `fileinfo` event per
# read with state CLOSED, complete, and the SHA-256 of the generator's job body (recomputed from
# the capture by tshark's SMB export when tshark is there), the decoded task is searchable
# (`task.application:*avscan*`), one stored copy (same content every day), and `vigilctl file get`
# returns identical bytes, from a stopped store (--data-dir --files-dir) and through a running
# control's API (files_dir).
set -uo pipefail
build=${1:?usage: files_test.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! /usr/bin/python3 -c "import scapy" 2>/dev/null; then echo "SKIP: scapy missing"; exit 77; fi
tmp=$(mktemp -d /tmp/vigil-files.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"  # check, pass, fail
days=2
/usr/bin/python3 "$root/tests/gen/lateral.py" --days "$days" "$tmp/lateral.pcap" >/dev/null
# The config: the shipped one with outputs.files on, the store in the test's directory.
/usr/bin/python3 - "$root/config/vigil.yaml" "$tmp/vigil.yaml" "$tmp/files" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg.setdefault("outputs", {})["files"] = {"enabled": True, "dir": sys.argv[3],
                                          "max_file_mb": 16, "max_total_mb": 64}
cfg["outputs"]["eve"]["path"] = sys.argv[3] + "/../eve.json"
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
PY
VIGIL_BUILD="$build" "$root/scripts/replay.sh" --data-dir "$tmp/store" --config "$tmp/vigil.yaml" \
  "$tmp/lateral.pcap" >"$tmp/replay.log" 2>&1
check "replay through dataplane and control" grep -q " 0 lost" "$tmp/replay.log"
ctl() { "$build/control/vigilctl" --data-dir "$tmp/store" --json "$@"; }

# The expected content: the generator's job body for each day (lateral.av_job), and what
# tshark's SMB object export finds in the capture.
/usr/bin/python3 - "$root/tests/gen" "$tmp/lateral.pcap" "$days" >"$tmp/expected.txt" <<'PY'
import calendar, hashlib, sys, time
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import lateral
# As lateral.build() with its defaults: the job body is the first thing drawn from the seed.
t0 = calendar.timegm(time.strptime(lateral.DEFAULT_START, "%Y-%m-%dT%H:%M"))
cap = lateral.g.Capture(4)
print(hashlib.sha256(lateral.av_job(cap.rng, t0)).hexdigest())
PY
if command -v tshark >/dev/null; then
  echo "  (expected sha256 also from tshark --export-objects smb)" 
  mkdir -p "$tmp/export"
  tshark -r "$tmp/lateral.pcap" -q --export-objects "smb,$tmp/export" >/dev/null 2>&1
  for f in "$tmp"/export/*; do
    case "$f" in *[Aa][Vv].job*) sha256sum "$f" | cut -d' ' -f1 >>"$tmp/expected.txt" ;; esac
  done
fi
sort -u "$tmp/expected.txt" -o "$tmp/expected.txt"

ctl files --last 60d --limit 1000 >"$tmp/files.json"
check "a complete fileinfo event per daily AV.job read, with the expected sha256" \
  /usr/bin/python3 - "$tmp/files.json" "$tmp/expected.txt" "$days" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
expected = set(open(sys.argv[2]).read().split())
days = int(sys.argv[3])
ev = [e["event"] for e in r["events"]]
jobs = [e for e in ev if e["fileinfo"]["filename"].lower().endswith("av.job")]
for e in jobs:
    f = e["fileinfo"]
    print(f"  {e['timestamp']} {e['src_ip']} <- {e['dest_ip']} {f['state']} complete={f['complete']} "
          f"{f['size']} bytes {f['sha256'][:16]}... stored={f['stored']}")
print(f"  expected sha256 (generator/tshark): {sorted(x[:16] for x in expected)}")
ok = len(jobs) == days and all(
    e["fileinfo"]["state"] == "CLOSED" and e["fileinfo"]["complete"] and not e["fileinfo"]["gaps"]
    and e["fileinfo"]["stored"] and e["fileinfo"]["share"] == "\\\\10.0.0.5\\C$"
    and e["smb"]["command"] == "SMB2_COMMAND_READ" and e["dest_ip"] == "10.0.0.5"
    for e in jobs)
if expected:
    ok = ok and {e["fileinfo"]["sha256"] for e in jobs} <= expected
sys.exit(0 if ok else 1)
PY

app=$(/usr/bin/python3 -c "
import json,sys
ev=[e['event'] for e in json.load(open(sys.argv[1]))['events'] if 'task' in e['event']]
print(ev[0]['task']['application'] if ev else '')" "$tmp/files.json")
check "the .job is decoded into task fields (application $app)" test -n "$app"
ctl search 'task.application:*avscan*' --last 60d --limit 1000 >"$tmp/task.json"
check "task.application:*avscan* finds the fileinfo events" /usr/bin/python3 - "$tmp/task.json" \
  "$days" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
types = {e["event"]["event_type"] for e in r["events"]}
print(f"  {r['total']} events of types {sorted(types)}")
sys.exit(0 if r["total"] >= int(sys.argv[2]) and "fileinfo" in types else 1)
PY
ctl files --query 'fileinfo.filename:*AV.job' --last 60d >"$tmp/query.json"
check "vigilctl files --query narrows to the job reads" /usr/bin/python3 -c "
import json,sys
r=json.load(open(sys.argv[1])); print('  %d files' % r['total'])
sys.exit(0 if r['total'] == int(sys.argv[2]) else 1)" "$tmp/query.json" "$days"

sha=$(/usr/bin/python3 -c "
import json,sys
ev=[e['event'] for e in json.load(open(sys.argv[1]))['events']]
print(next(e['fileinfo']['sha256'] for e in ev if e['fileinfo']['filename'].lower().endswith('av.job')))
" "$tmp/files.json")
stored=$(find "$tmp/files" -type f -not -path "$tmp/files/tmp/*" | wc -l)
check "stored once per content ($stored file(s) in the store)" \
  test -f "$tmp/files/${sha:0:2}/$sha"
"$build/control/vigilctl" --data-dir "$tmp/store" --files-dir "$tmp/files" file get "$sha" \
  -o "$tmp/got.job" 2>/dev/null
check "vigilctl file get (stopped store) returns the same bytes" \
  bash -c '[ "$(sha256sum <"$0" | cut -d" " -f1)" = "$1" ]' "$tmp/got.job" "$sha"
check "file get refuses a bad sha256" \
  bash -c '! "$0" --data-dir "$1" --files-dir "$2" file get ../../etc/passwd -o /dev/null >/dev/null 2>&1' \
  "$build/control/vigilctl" "$tmp/store" "$tmp/files"

# Through a running control's API, with files_dir in its config.
run="$tmp/store/run"
printf 'files_dir: "%s"\n' "$tmp/files" >"$tmp/control.yaml"
"$build/control/vigil-control" --config "$tmp/control.yaml" --data-dir "$tmp/store" \
  --event-socket "$run/f-events.sock" --api-socket "$run/f-api.sock" --api-listen "" \
  --models-dir "$root/rules/models" 2>"$run/f-control.log" &
control=$!
for _ in $(seq 1 100); do [ -S "$run/f-api.sock" ] && break; sleep 0.05; done
"$build/control/vigilctl" --socket "$run/f-api.sock" file get "$sha" -o "$tmp/api.job" 2>/dev/null
"$build/control/vigilctl" --socket "$run/f-api.sock" files --last 60d >"$tmp/files.txt" 2>&1
kill -TERM "$control"; wait "$control"
check "GET /api/v1/files/{sha256} returns the same bytes" cmp -s "$tmp/got.job" "$tmp/api.job"
check "vigilctl files (API) lists them" grep -q "CLOSED.*Windows.Tasks.AV.job" "$tmp/files.txt"
sed 's/^/  /' "$tmp/files.txt"

echo "files: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
