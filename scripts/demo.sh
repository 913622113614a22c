#!/usr/bin/env bash
# The README's first command: sets up vigil, builds the lab (two network namespaces joined
# through the appliance), runs vigil-dataplane as the bridge between them, sends real traffic
# across it (ping, IPv6 ping, a TCP transfer, HTTP), then shows what vigil saw: its counters and
# the EVE events (protocol events and flow records). Finally replays a capture (the AT-scheduled-task lateral movement from
# ../shared/data, when present) through the same pipeline, and 14 days of generated lateral movement
# through the dataplane and vigil-control: the breach, its event log, two searches, the .JOB file
# extracted from SMB with its task decoded, and the breach acknowledged. With the shared data
# present it also shows Emerging Threats Open alerts on a PsExec capture. Last, a block taking
# effect: a service created over SMB makes a model with an autonomous response fire, and the
# dataplane cuts the attacker's connection on the (paced) replayed wire. And a configuration push:
# new rules go live in the middle of a replay, without a restart and without losing a packet.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: the lab needs root (network namespaces): run with sudo" >&2
  exit 1
fi
out=/tmp/vigil-demo
rm -rf "$out"; mkdir -p "$out"
dp_pid=""
cleanup() {
  [ -n "$dp_pid" ] && kill "$dp_pid" 2>/dev/null && wait "$dp_pid" 2>/dev/null
  scripts/lab.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "lab topology"
scripts/lab.sh up
sed "s|path: /tmp/vigil/eve.json|path: $out/eve.json|; s|stats_interval_s: 0|stats_interval_s: 1|" \
  config/vigil.yaml >"$out/vigil.yaml"

say "vigil-dataplane bridging vg-a <-> vg-b (config/vigil.yaml)"
scripts/lab.sh exec br build/dataplane/vigil-dataplane --config "$out/vigil.yaml" \
  >"$out/counters.json" 2>"$out/dataplane.log" &
dp_pid=$!
for _ in $(seq 1 50); do
  scripts/lab.sh exec left ping -c 1 -W 0.2 10.77.0.2 >/dev/null 2>&1 && break
  kill -0 "$dp_pid" 2>/dev/null || { cat "$out/dataplane.log"; exit 1; }
done

say "traffic across the bridge"
scripts/lab.sh exec left ping -c 3 -i 0.2 10.77.0.2 | tail -2
scripts/lab.sh exec left ping -6 -c 3 -i 0.2 fd77::2 | tail -2
head -c $((8 * 1024 * 1024)) /dev/urandom >"$out/send.bin"
scripts/lab.sh exec right timeout 20 nc -l -p 9000 >"$out/recv.bin" &
nc_pid=$!; sleep 0.3
scripts/lab.sh exec left timeout 20 nc -N 10.77.0.2 9000 <"$out/send.bin"; wait "$nc_pid"
echo "TCP 8 MiB: sent $(sha256sum <"$out/send.bin" | cut -c1-16)…, received $(sha256sum <"$out/recv.bin" | cut -c1-16)…"
(cd "$out" && exec "$root/scripts/lab.sh" exec right timeout 10 python3 -m http.server 8080 --bind 10.77.0.2 >/dev/null 2>&1) &
http_pid=$!; sleep 0.8
scripts/lab.sh exec left python3 -c "import urllib.request as u; r=u.urlopen('http://10.77.0.2:8080/vigil.yaml', timeout=5); print('HTTP', r.status, len(r.read()), 'bytes')"
kill "$http_pid" 2>/dev/null || true; wait "$http_pid" 2>/dev/null || true
sleep 1.2

say "stopping the dataplane: flows are ended and exported"
kill -TERM "$dp_pid"; wait "$dp_pid" || true; dp_pid=""
grep '^stats' "$out/counters.json" | tail -2
tail -1 "$out/counters.json" >"$out/final.json"
python3 - "$out/final.json" "$out/eve.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
for p in c["ports"]:
    print(f"port {p['name']}: rx {p['rx_packets']} = forwarded {p['forwarded']} + dropped "
          f"{p['dropped_total']} + in flight {p['in_flight']}")
w = c["workers"][0]
print(f"worker lcore {w['lcore']}: decode {w['decode']}, flows created {w['flows']['created']}")
print("\nEVE events (" + sys.argv[2] + "): protocol events, then each flow's record")
for line in open(sys.argv[2]):
    r = json.loads(line)
    print(f"  {r['event_type']:<7} {r['message']}")
PY

if [ -f ../shared/data/pcaps/401trg/20171220_smb_at_schedule.pcap ]; then
  say "replay: an AT scheduled task created over SMB (401trg capture)"
  build/dataplane/vigil-dataplane --config config/vigil.yaml \
    --pcap-in ../shared/data/pcaps/401trg/20171220_smb_at_schedule.pcap \
    --pcap-out "$out/replay-out.pcap" --eve "$out/replay-eve.json" 2>/dev/null >"$out/replay.json"
  # The analyst's view: NTLM logon, tree connect to IPC$, the atsvc pipe, the DCE-RPC bind and
  # the NetrJobAdd call that created the job, each a one-line event.
  python3 -c "import json; r=[json.loads(l) for l in open('$out/replay-eve.json')]; [print(f\"  {x['timestamp'][:19]} {x['event_type']:<7} {x['message']}\") for x in r]"
  cmp -s <(tshark -r ../shared/data/pcaps/401trg/20171220_smb_at_schedule.pcap -o frame.generate_md5_hash:TRUE -T fields -e frame.md5_hash 2>/dev/null) \
         <(tshark -r "$out/replay-out.pcap" -o frame.generate_md5_hash:TRUE -T fields -e frame.md5_hash 2>/dev/null) && echo "  output pcap: every frame identical to the input (MD5 per frame)"
fi
et=$root/../shared/data/rules/et-open-2019
psexec=$root/../shared/data/pcaps/401trg/20171220_smb_psexec_add_user.pcap
if [ -d "$et" ] && [ -f "$psexec" ]; then
  say "signatures: Emerging Threats Open 2019 on a PsExec capture (401trg)"
  # The shipped config with detect on; compiled databases are cached across demo runs.
  /usr/bin/python3 - config/vigil.yaml "$out/detect.yaml" "$et" <<'PY'
import glob, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
et = sys.argv[3]
cfg["detect"] = {"enabled": True, "rules": sorted(glob.glob(et + "/*.rules")),
                 "classification": et + "/classification.config",
                 "cache_dir": "/tmp/vigil-detect-cache"}
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
PY
  mkdir -p /tmp/vigil-detect-cache
  build/dataplane/vigil-dataplane --config "$out/detect.yaml" --pcap-in "$psexec" \
    --eve "$out/detect-eve.json" 2>"$out/detect.log" >/dev/null
  grep -E "loaded|compiled|cache" "$out/detect.log" | sed 's/^/  /' | head -3 || true
  python3 - "$out/detect-eve.json" <<'PY'
import collections, json, sys
alerts = [json.loads(l) for l in open(sys.argv[1]) if '"event_type":"alert"' in l]
seen = collections.Counter((a["alert"]["signature_id"], a["alert"]["signature"], a["src_ip"],
                            a["dest_ip"]) for a in alerts)
for (sid, msg, src, dst), n in sorted(seen.items()):
    print(f"  {n:3d} x sid {sid} {msg}: {src} -> {dst}")
PY
fi
say "control plane: 14 days of lateral movement (generated capture) through dataplane and vigil-control"
/usr/bin/python3 tests/gen/lateral.py --days 14 "$out/lateral.pcap"
# The shipped config with SMB file extraction on, the files next to the store.
/usr/bin/python3 - config/vigil.yaml "$out/replay.yaml" "$out/files" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg.setdefault("outputs", {})["files"] = {"enabled": True, "dir": sys.argv[3]}
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
PY
scripts/replay.sh --data-dir "$out/store" --config "$out/replay.yaml" "$out/lateral.pcap" | sed -n 1,3p
ctl() { build/control/vigilctl --data-dir "$out/store" "$@"; }
echo; echo "\$ vigilctl breaches --model 'Device / AT Service Scheduled Task' --limit 3"
ctl breaches --model "Device / AT Service Scheduled Task" --limit 3
first=$(ctl --json breaches --model "Device / AT Service Scheduled Task" --limit 100 |
  python3 -c "import json,sys; print(min(b['id'] for b in json.load(sys.stdin)['breaches']))")
echo; echo "\$ vigilctl breach $first"
ctl breach "$first"
echo; echo "\$ vigilctl search '*.JOB AND SMB' --limit 3"
ctl search '*.JOB AND SMB' --limit 3
echo; echo "\$ vigilctl search 'AV.job AND SMB' --last 60d --count-by day"
ctl search 'AV.job AND SMB' --last 60d --count-by day
echo; echo "\$ vigilctl files --query 'fileinfo.filename:*.job' --limit 3   (extracted from the SMB reads)"
ctl files --query 'fileinfo.filename:*.job' --last 60d --limit 3
sha=$(ctl --json files --query 'fileinfo.filename:*.job' --last 60d --limit 1 |
  python3 -c "import json,sys; print(json.load(sys.stdin)['events'][0]['event']['fileinfo']['sha256'])")
echo; echo "\$ vigilctl file get ${sha:0:16}… -o AV.job   (the task inside, decoded from MS-TSCH .JOB)"
ctl --files-dir "$out/files" file get "$sha" -o "$out/AV.job" >/dev/null
ctl --json search 'task.application:*' --last 60d --limit 1 | python3 -c "
import json, sys
t = json.load(sys.stdin)['events'][0]['event']['task']
for k in ('application', 'parameters', 'working_directory', 'author', 'comment'):
    print(f'  task.{k}: {t.get(k, \"\")}')
print('  task.triggers: ' + ', '.join(f\"{x['type']} from {x.get('start', '?')}\" for x in t.get('triggers', [])))"
echo "  $(wc -c <"$out/AV.job") bytes, sha256 $(sha256sum "$out/AV.job" | cut -c1-16)…"
echo; echo "\$ vigilctl ack $first --comment 'AV scanner job, known'"
ctl ack "$first" --comment "AV scanner job, known" | tail -1

say "respond: a block taking effect (generated capture, model response block_connection, autonomous)"
mkdir -p "$out/respond-models"
sed "s/^response:.*/response: {action: block_connection, duration: 1h, mode: autonomous}/" \
  rules/models/remote_service_creation.yaml >"$out/respond-models/remote_service_creation.yaml"
/usr/bin/python3 tests/gen/respond.py "$out/respond.pcap" >/dev/null
scripts/replay.sh --data-dir "$out/respond-store" --models-dir "$out/respond-models" \
  --replay-pps 300 --pcap-out "$out/respond-out.pcap" "$out/respond.pcap" |
  grep -E "^replay|respond: (action|pushed generation 1)|breach #" | sed 's/^ *//'
rctl() { build/control/vigilctl --data-dir "$out/respond-store" "$@"; }
echo; echo "\$ vigilctl respond list"
rctl respond list
echo; echo "\$ vigilctl respond audit"
rctl respond audit
python3 - "$out/respond.pcap" "$out/respond-out.pcap" <<'PY'
import subprocess, sys
def count(path, flt):
    out = subprocess.run(["tshark", "-r", path, "-Y", flt], capture_output=True, text=True).stdout
    return len(out.splitlines())
conn = "ip.addr==10.0.0.66 && tcp.port==445"
print(f"\n  on the wire: the attacker's SMB connection had {count(sys.argv[1], conn)} packets in the "
      f"capture, {count(sys.argv[2], conn + ' && !tcp.flags.reset')} were forwarded, "
      f"{count(sys.argv[2], conn + ' && tcp.flags.reset')} RSTs sent; other hosts' packets: "
      f"{count(sys.argv[1], '!(' + conn + ')')} in, {count(sys.argv[2], '!(' + conn + ')')} out")
PY
say "configuration push: new rules mid-replay, no restart (vigilctl config push)"
cp="$out/push"
mkdir -p "$cp"
rule() { echo "alert tcp any any -> any 445 (msg:\"demo rule $1\"; flow:to_server; content:\"|fe|SMB\"; sid:$1;)"; }
rule 9000001 >"$cp/local.rules"
dp_section() {  # the dataplane's settings as its file has them, detect given as $1
  printf '%s\n' "ports:" "  - {name: a, device: net_null0}" "  - {name: b, device: net_null1}" \
    "bridges:" "  - [a, b]" "eal: {file_prefix: vpush$$}" "history: {enabled: false}" \
    "detect:" "  enabled: true" "$1"
}
dp_section "  rules: [local.rules]" >"$cp/vigil.yaml"
printf '%s\n' "data_dir: $cp/store" "event_socket: $cp/events.sock" "models_dir: $PWD/rules/models" \
  "api: {listen: \"\", socket: $cp/api.sock}" \
  "respond: {enabled: true, dataplane_socket: $cp/commands.sock}" >"$cp/control.yaml"
build/control/vigil-control --config "$cp/control.yaml" 2>"$cp/control.log" &
push_control=$!
for _ in $(seq 1 50); do [ -S "$cp/api.sock" ] && break; sleep 0.1; done
build/dataplane/vigil-dataplane --config "$cp/vigil.yaml" --pcap-in "$out/respond.pcap" \
  --replay-pps 300 --eve "$cp/eve.json" --control-socket "$cp/events.sock" \
  --journal-dir "$cp/journal" --command-socket "$cp/commands.sock" >"$cp/counters.json" \
  2>"$cp/dataplane.log" &
push_dp=$!
for _ in $(seq 1 50); do [ -S "$cp/commands.sock" ] && break; sleep 0.1; done
sleep 2
{ echo 'version: "demo-1"'; echo 'dataplane:'; dp_section "  inline: |
    $(rule 9000002)" | sed 's/^/  /'; } >"$cp/site.yaml"
pctl() { build/control/vigilctl --socket "$cp/api.sock" --token-file "$cp/store/api.token" "$@"; }
echo "\$ vigilctl config push site.yaml   (2 s into a paced replay)"
pctl config push "$cp/site.yaml"
echo; echo "\$ vigilctl config history"
pctl config history
wait "$push_dp"
kill -TERM "$push_control" 2>/dev/null; wait "$push_control" 2>/dev/null || true
python3 - "$cp/eve.json" "$cp/counters.json" <<'PY'
import json, sys
runs = []
for _, sid in sorted((e["pcap_cnt"], e["alert"]["signature_id"])
                     for e in map(json.loads, open(sys.argv[1])) if e.get("event_type") == "alert"):
    if not runs or runs[-1][0] != sid:
        runs.append([sid, 0])
    runs[-1][1] += 1
p = json.load(open(sys.argv[2]))["ports"][0]
print("\n  alerts in capture order: " + " then ".join(f"{n} x sid {s}" for s, n in runs) +
      f"; {p['rx_packets']} packets in, {p['forwarded']} forwarded")
PY
say "done: outputs in $out"
