#!/usr/bin/env bash
# The signature engine's reload test (docs/rules.md, "In the dataplane", Reload): 100 reloads
# while a capture replays in a loop, no packet lost that would not be lost without reloads, and
# memory at most 2x one rule set.
#
# vigil-dataplane replays a shared capture concatenated 150 times (60,000 packets, each copy
# shifted in time so its flows are new ones), paced at 1,000 packets/s, while vigilctl pushes 100
# configurations through vigil-control that alternate between two subsets of ET Open 2019 (A:
# policy + current_events, ~2,800 rules in the engine; B: policy, netbios, exploit, malware, info,
# mobile_malware, ~3,100): each push parses its files, loads the Hyperscan databases from
# detect.cache_dir (warmed by --check first), allocates the scratches and publishes a new set.
# The dataplane's file starts with a one-rule set. Checks:
#   - every push is accepted ("applied version N"), all while the replay runs;
#   - final counters: rule_sets_published 101 (the start-up set and 100 pushes),
#     rule_sets_retired_pending 0;
#   - loss: every packet read is forwarded (rx = forwarded, dropped_total 0, device imissed,
#     ierrors, oerrors, rx_nombuf 0), and a run of the same capture, configuration and pacing
#     without pushes reads and forwards exactly as many packets;
#   - alerts continue: both runs alert, and the pushed sets' ET rules alert in the reload run
#     (no exact count across runs: flowbits and thresholds restart with each set);
#   - memory: RSS after every push <= base + 2 x one set + 2 MiB, and the peak while a set is
#     built (VmHWM, reset before each push and read after it) <= base + 2.5 x one set.
# The baseline. The dataplane's resident memory is mostly not rules (EAL memory, mbufs, flow
# table, parser pools: ~210 MiB here), and it grows with traffic as pooled objects are touched for
# the first time (~0.12 MiB/s at this rate), so neither the start-up RSS nor the run without
# pushes alone is the base. base(t) = this process's RSS just before its first push (2 s into the
# replay, the one-rule set in force) plus the growth the run without pushes shows between the same
# two times into the replay (sampled every 0.5 s). The dataplane hands a retired set's pages back
# to the kernel once its grace period is over (a jemalloc purge), so 0.5 s after a push only the
# set in force is resident: "one set" = the larger of A = RSS 0.5 s after the first push - base
# and B = the same after the second. While set N+1 is built, set N is in use, so right after a
# push two sets can be resident: "2 x one set" is the claim, and 2 MiB of slack covers sampling
# and the two runs' timing; the build's own transient allocations (rule text, parse trees, each
# database's bytes while it is deserialized) come on top of two sets at the peak, hence the
# separate, looser peak check.
# Takes about 2 minutes 10 s: two 60 s replays and ~5 s of cache warm-up; the 100 pushes, ~0.2 s
# each, are done ~25 s into the second replay, which must outlast them. Skips (77) without the
# shared captures and rules (../shared/data).
#
#   tests/scenarios/detect_reload_test.sh [BUILD_DIR]   (default: $VIGIL_BUILD, else build/)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-${VIGIL_BUILD:-$root/build}}" && pwd)
shared=$(dirname "$root")/shared/data
source_pcap=$shared/pcaps/401trg/20171220_smb_psexec_add_user.pcap
et=$shared/rules/et-open-2019
py=/usr/bin/python3
pushes=100 copies=150 pps=1000
if [ ! -r "$source_pcap" ] || [ ! -r "$et/emerging-policy.rules" ]; then
  echo "SKIP: the shared capture or ET Open 2019 rules are absent ($source_pcap, $et)"
  exit 77
fi
[ -x "$py" ] || { echo "SKIP: $py missing"; exit 77; }
dataplane_bin=$build/dataplane/vigil-dataplane
control_bin=$build/control/vigil-control
vigilctl_bin=$build/control/vigilctl

tmp=$(mktemp -d /tmp/vigil-reload.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
  # EAL's runtime directory for the file prefix (left behind, empty, even with --no-shconf).
  rmdir "/var/run/dpdk/vreload$$" "${XDG_RUNTIME_DIR:-/nonexistent}/dpdk/vreload$$" \
    2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 143' TERM  # so that a timeout (SIGTERM) still stops the processes
trap 'exit 130' INT

# The capture: the source concatenated $copies times, each copy 700 s after the previous one
# ended (past every flow timeout, so each copy's flows are new).
packets=$($py - "$source_pcap" "$tmp/loop.pcap" "$copies" 700 <<'PY'
import struct, sys
src, dst, copies, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = open(src, "rb").read()
assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4, "expected a little-endian usec pcap"
recs, off = [], 24
while off < len(data):
    s, us, incl, orig = struct.unpack("<IIII", data[off:off + 16])
    recs.append((s * 1000000 + us, incl, orig, data[off + 16:off + 16 + incl]))
    off += 16 + incl
span = recs[-1][0] - recs[0][0] + gap * 1000000
with open(dst, "wb") as f:
    f.write(data[:24])
    for k in range(copies):
        for t, incl, orig, pkt in recs:
            t += k * span
            f.write(struct.pack("<IIII", t // 1000000, t % 1000000, incl, orig) + pkt)
print(len(recs) * copies)
PY
)

# The one-rule start-up set (sid 2025701's conditions under a local sid), and the two pushed sets.
cat >"$tmp/startup.rules" <<'EOF'
alert tcp any any -> any 445 (msg:"detect-reload start-up rule"; flow:established,to_server; content:"SMB"; depth:8; content:"|05 00|"; distance:8; within:2; content:"|00 2E 00|e|00|x|00|e|00|"; nocase; distance:0; sid:9200001; rev:1;)
EOF
list() { local IFS=,; echo "[$*]"; }
rules_startup=$(list "$tmp/startup.rules")
rules_a=$(list "$et/emerging-policy.rules" "$et/emerging-current_events.rules")
rules_b=$(list "$et/emerging-policy.rules" "$et/emerging-netbios.rules" \
  "$et/emerging-exploit.rules" "$et/emerging-malware.rules" "$et/emerging-info.rules" \
  "$et/emerging-mobile_malware.rules")
dataplane_config() {  # dataplane_config RULES: vigil.yaml with these rule files
  cat <<EOF
ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1}
bridges:
  - [a, b]
eal:
  file_prefix: vreload$$
history:
  enabled: false
detect:
  enabled: true
  rules: $1
  classification: $et/classification.config
  cache_dir: $tmp/cache
  invalid_rules: skip
EOF
}
dataplane_config "$rules_startup" >"$tmp/vigil.yaml"
dataplane_config "$rules_a" >"$tmp/a.yaml"
dataplane_config "$rules_b" >"$tmp/b.yaml"
# A pushed document is the file with the other rules (everything else must stay as it is).
for s in a b; do
  { echo 'version: "@VERSION@"'; echo 'dataplane:'; sed 's/^/  /' "$tmp/$s.yaml"; } >"$tmp/$s.doc"
done
cat >"$tmp/control.yaml" <<EOF
data_dir: $tmp/store
event_socket: $tmp/events.sock
models_dir: ""
api: {listen: "", socket: $tmp/api.sock}
respond: {enabled: false, dataplane_socket: $tmp/commands.sock}
EOF

# Warm the Hyperscan cache, so that every push does the same work (no compile on the first ones).
for s in a b; do
  "$dataplane_bin" --config "$tmp/$s.yaml" --check >"$tmp/check-$s.out" 2>&1 ||
    { echo "FAIL --check of rule set $s"; cat "$tmp/check-$s.out"; exit 1; }
  sed -n 's/^detect: \(.* in the engine.*\)/  set '"$s"': \1/p' "$tmp/check-$s.out"
done

now() { echo "${EPOCHREALTIME/./}"; }  # microseconds
rss() {  # rss PID FIELD: VmRSS or VmHWM in kB; fails once PID has exited (a zombie has neither)
  # One read() of the whole file: bash's `read` seeks back after each line, and /proc regenerates
  # the text on each read, so a line can come out shifted when the process changed state meanwhile.
  awk -v f="$2:" '$1 == f { print $2; found = 1 } END { exit !found }' "/proc/$1/status"
}
sampler() {  # sampler PID T0 OUT: "µs-since-T0 VmRSS" every 0.5 s while PID lives
  local r
  while r=$(rss "$1" VmRSS 2>/dev/null); do
    echo "$(($(now) - $2)) $r" >>"$3"
    sleep 0.5
  done
}
start_dataplane() {  # start_dataplane NAME: paced replay in background; sets dp, t0
  rm -f "$tmp/commands.sock"
  "$dataplane_bin" --config "$tmp/vigil.yaml" --pcap-in "$tmp/loop.pcap" --replay-pps "$pps" \
    --eve "$tmp/eve-$1.json" --command-socket "$tmp/commands.sock" \
    >"$tmp/counters-$1.json" 2>"$tmp/dataplane-$1.log" &
  dp=$!
  pids+=("$dp")
  for _ in $(seq 1 300); do [ -S "$tmp/commands.sock" ] && break; sleep 0.1; done
  [ -S "$tmp/commands.sock" ] ||
    { echo "FAIL dataplane ($1) did not start"; tail "$tmp/dataplane-$1.log"; exit 1; }
  t0=$(now)  # the replay starts now (the socket is made just before the workers are launched)
  sampler "$dp" "$t0" "$tmp/rss-$1" &
  pids+=($!)
}

# 1. The run without reloads.
echo "run without reloads ($packets packets at $pps/s)"
start_dataplane plain
rc=0
wait "$dp" || rc=$?
[ "$rc" = 0 ] ||
  { echo "FAIL the run without reloads ended with $rc"; tail "$tmp/dataplane-plain.log"; exit 1; }

# 2. The same with 100 pushes through control.
"$control_bin" --config "$tmp/control.yaml" 2>"$tmp/control.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -S "$tmp/api.sock" ] && break; sleep 0.1; done
[ -S "$tmp/api.sock" ] || { echo "FAIL control did not start"; tail "$tmp/control.log"; exit 1; }
echo "run with $pushes reloads"
start_dataplane reload
sleep 2
pushed=0
: >"$tmp/pushes"
before=$(rss "$dp" VmRSS) || { echo "FAIL the dataplane ended early"; exit 1; }
echo "$(($(now) - t0)) $before" >"$tmp/before"
echo 5 >"/proc/$dp/clear_refs"  # VmHWM := VmRSS
for k in $(seq 1 "$pushes"); do
  s=$([ $((k % 2)) = 1 ] && echo a || echo b)
  sed "s/@VERSION@/$k/" "$tmp/$s.doc" >"$tmp/push.yaml"
  t=$(now)
  if ! "$vigilctl_bin" --socket "$tmp/api.sock" --token-file "$tmp/store/api.token" \
    config push "$tmp/push.yaml" >"$tmp/push.out" 2>&1; then
    echo "FAIL push $k refused:"; cat "$tmp/push.out"; break
  fi
  t_end=$(now)
  grep -q "^applied version $k\$" "$tmp/push.out" ||
    { echo "FAIL push $k: unexpected answer:"; cat "$tmp/push.out"; break; }
  # The first two pushes measure one set each: give the retired set's grace period and purge time.
  [ "$k" -le 2 ] && sleep 0.5
  if ! hwm=$(rss "$dp" VmHWM 2>/dev/null) || ! cur=$(rss "$dp" VmRSS 2>/dev/null); then
    echo "FAIL the replay ($packets packets at $pps/s) ended before push $k was done"
    break
  fi
  echo 5 >"/proc/$dp/clear_refs"
  build_ms=$(sed -n 's/.*built in \([0-9]*\) ms.*/\1/p' "$tmp/push.out")
  echo "$k $s $((t_end - t0)) $(((t_end - t) / 1000)) ${build_ms:-0} $cur $hwm" >>"$tmp/pushes"
  pushed=$k
done
left=$(($(now) - t0))
if [ "$pushed" != "$pushes" ]; then
  tail -5 "$tmp/dataplane-reload.log"; tail -5 "$tmp/control.log"; exit 1
fi
rc=0
wait "$dp" || rc=$?
echo "  $pushed pushes done $((left / 1000000)) s into the replay; the replay ended with $rc"
[ "$rc" = 0 ] || { tail "$tmp/dataplane-reload.log"; exit 1; }

$py - "$tmp" "$pushes" <<'PY'
import bisect, json, statistics, sys
tmp, pushes = sys.argv[1], int(sys.argv[2])
fails = []
def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + (f": {detail}" if detail else ""))
    if not ok:
        fails.append(name)

runs = {}
for run in ("plain", "reload"):
    c = json.load(open(f"{tmp}/counters-{run}.json"))
    p = c["ports"]
    dev = {k: sum(x["device"][k] for x in p)
           for k in ("imissed", "ierrors", "oerrors", "rx_nombuf")}
    sids = {}
    for line in open(f"{tmp}/eve-{run}.json"):
        if '"alert"' in line:
            e = json.loads(line)
            if e.get("event_type") == "alert":
                sid = e["alert"]["signature_id"]
                sids[sid] = sids.get(sid, 0) + 1
    runs[run] = dict(rx=sum(x["rx_packets"] for x in p), fwd=sum(x["forwarded"] for x in p),
                     dropped=sum(x["dropped_total"] for x in p), dev=dev, detect=c["detect"],
                     switches=sum(w.get("detect", {}).get("rule_set_switches", 0)
                                  for w in c["workers"]), sids=sids)
plain, rel = runs["plain"], runs["reload"]
for name, r in runs.items():
    check(f"{name}: every packet read is forwarded",
          r["rx"] > 0 and r["rx"] == r["fwd"] and r["dropped"] == 0 and not any(r["dev"].values()),
          f"rx {r['rx']}, forwarded {r['fwd']}, dropped {r['dropped']}, device {r['dev']}")
check("reloads lose nothing more: the same packets read and forwarded as without reloads",
      (rel["rx"], rel["fwd"]) == (plain["rx"], plain["fwd"]),
      f"{rel['rx']}/{rel['fwd']} vs {plain['rx']}/{plain['fwd']}")
d = rel["detect"]
check(f"rule sets published: {pushes + 1} (start-up + {pushes}), none pending retirement",
      d["rule_sets_published"] == pushes + 1 and d["rule_sets_retired_pending"] == 0,
      f"published {d['rule_sets_published']}, retired pending {d['rule_sets_retired_pending']}, "
      f"worker switches {rel['switches']}")
et = sum(n for sid, n in rel["sids"].items() if 2000000 <= sid < 3000000)
check("alerts continue: both runs alert, the pushed sets' ET rules alert",
      plain["detect"]["alerts"] > 0 and rel["detect"]["alerts"] > 0 and et > 0
      and plain["detect"]["alerts_lost"] == 0 and rel["detect"]["alerts_lost"] == 0,
      f"without reloads {plain['detect']['alerts']} {dict(sorted(plain['sids'].items()))}; "
      f"with {rel['detect']['alerts']} {dict(sorted(rel['sids'].items()))}")

# Memory. base(t): this process before its first push, plus the growth the run without reloads
# shows between the same two times into the replay (interpolated between its samples).
samples = sorted(tuple(map(int, l.split())) for l in open(f"{tmp}/rss-plain"))
top = max(r for _, r in samples)  # the last samples can catch the exit's teardown: cut them
samples = samples[:max(i for i, (_, r) in enumerate(samples) if r >= top - 1024) + 1]
ts = [t for t, _ in samples]
def plain_rss(t):
    i = bisect.bisect_left(ts, t)
    if i == 0:
        return samples[0][1]
    if i == len(samples):
        return samples[-1][1]
    (t1, r1), (t2, r2) = samples[i - 1], samples[i]
    return r1 + (r2 - r1) * (t - t1) / (t2 - t1)
t_before, rss_before = map(int, open(f"{tmp}/before").read().split())
base = lambda t: rss_before + plain_rss(t) - plain_rss(t_before)
p = [dict(k=int(r[0]), set=r[1], t=int(r[2]), ms=int(r[3]), build=int(r[4]), rss=int(r[5]),
          hwm=int(r[6])) for r in map(str.split, open(f"{tmp}/pushes"))]
# One set: the larger of A (in force 0.5 s after push 1, the one-rule set freed) and B (in force
# 0.5 s after push 2, A freed and its pages returned). Which one is larger depends on what the
# engine loads of each subset.
one_a = p[0]["rss"] - base(p[0]["t"])
one_b = p[1]["rss"] - base(p[1]["t"])
one = max(one_a, one_b)
after = max(p, key=lambda x: x["rss"] - base(x["t"]))
peak = max(p, key=lambda x: x["hwm"] - base(x["t"]))
after_x, peak_x = after["rss"] - base(after["t"]), peak["hwm"] - base(peak["t"])
mib = lambda kb: f"{kb / 1024:.1f} MiB"
print(f"  base: {mib(rss_before)} before the first push, {mib(base(p[-1]['t']))} at the last "
      f"(traffic: the run without reloads went from {mib(samples[0][1])} to {mib(samples[-1][1])})")
print(f"  set A (after push 1): {mib(one_a)}; set B (after push 2, A freed): {mib(one_b)}; one set "
      f"(the larger) {mib(one)}; after the last push {mib(p[-1]['rss'] - base(p[-1]['t']))}")
print(f"  after a push: at most {mib(after['rss'])} (push {after['k']}), {mib(after_x)} above the "
      f"base = {after_x / one:.2f} x one set; peak while building: {mib(peak['hwm'])} (push "
      f"{peak['k']}), {mib(peak_x)} = {peak_x / one:.2f} x one set")
check("memory: RSS after every push <= base + 2 x one set + 2 MiB",
      one > 0 and after_x <= 2 * one + 2048)
check("memory: peak RSS while building (VmHWM) <= base + 2.5 x one set", peak_x <= 2.5 * one)
ms = [x["ms"] for x in p]
builds = [x["build"] for x in p]
print(f"detect-reload: {len(p)} pushes, {min(ms)}/{statistics.median(ms):.0f}/{max(ms)} ms "
      f"per push "
      f"(min/median/max; the dataplane's build {min(builds)}/{statistics.median(builds):.0f}/"
      f"{max(builds)} ms); packets read {rel['rx']}, forwarded {rel['fwd']}, dropped "
      f"{rel['dropped']} (without reloads: {plain['rx']}/{plain['fwd']}/{plain['dropped']}); "
      f"RSS base {mib(rss_before)}, one set {mib(one)}, max {mib(after['rss'])} after a push "
      f"({after_x / one:.2f} x one set above the base), {mib(peak['hwm'])} peak while building "
      f"({peak_x / one:.2f} x)")
sys.exit(1 if fails else 0)
PY
