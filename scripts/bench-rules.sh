#!/usr/bin/env bash
# Signature-engine benchmark: vigil (the whole pipeline: vigil-dataplane in replay mode with every
# parser and the ET Open 2019 rule set) against Suricata 7 (`suricata -r MIX -S et.rules -k none
# --runmode single`, Hyperscan MPM, the same rules) over the shared benchmark mix
# (../shared/tools/make-bench-mix.sh), on one core each, alternating in one invocation. Prints for
# each engine packets/s, Gbit/s, start-up (rule load and compile) and peak memory (max RSS), the
# ratio vigil/Suricata, and both alert counts (a sanity line, not a comparison). Never fails on
# timing: exit 0 whenever both engines ran; non-zero only on a real error; skipped (exit 0, with a
# message) without suricata or the shared data.
#   scripts/bench-rules.sh
#   BENCH_MIX=PATH        the capture (default: $BENCH_DIR/mix.pcap, built once with
#                         ../shared/tools/make-bench-mix.sh; delete it to rebuild)
#   BENCH_ROUNDS=5        rounds (default 3); each runs both engines on MIX and on a 10-packet
#                         capture cut from it, the engines' order alternating between rounds
#   BENCH_BUILD=DIR       build directory whose dataplane/vigil-dataplane runs (default build/);
#                         the binary is copied first, so a rebuild during the run changes nothing
#   BENCH_DIR=DIR         work directory (default /tmp/vigil-bench-rules)
#   BENCH_RULES=DIR       rule directory (default ../shared/data/rules/et-open-2019): every
#                         DIR/emerging-*.rules concatenated into et.rules, with DIR/classification.config
#   BENCH_CORE=N          Suricata's core and vigil's worker lcore (default 1; vigil's main thread,
#                         the EVE writer, runs on lcore 0 as in production)
#   BENCH_SURICATA_YAML=F Suricata's configuration (default /etc/suricata/suricata.yaml); the script
#                         overrides the classification file, the log dir and the unix socket (off)
#   BENCH_HUGE=1          vigil with hugepages (reserved and mounted beforehand)
# Method (../shared/tools/README.md): processing time with start-up subtracted, both engines measured
# in the same invocation. Suricata: wall time of the run on MIX minus the wall time of the same
# command on the 10-packet capture, both in the same round (its own "time elapsed" line is printed
# as a cross-check). vigil: the counters' elapsed_s, which is processing time only (workers
# launched to workers done, end-of-capture flow flush included; start-up, rule compile and the
# final EVE drain are outside it); wall(MIX) - wall(10 packets) is printed as a cross-check.
# A third cross-check for a busy host: user + system CPU time of the MIX run minus that of the
# 10-packet run (time spent waiting for the CPU is not in it; for vigil both threads, the main one
# on lcore 0).
# packets/s = capture packets / processing time; Gbit/s = frame bytes x 8 / processing time.
# Start-up = wall time of the 10-packet run. vigil's compile time is reported cold (empty cache
# dir, once: the "compiled in N ms" line) and warm (from its cache, every round); Suricata has no
# cache and compiles at every start. Peak memory: max RSS from /usr/bin/time -v (VmHWM from /proc
# when /usr/bin/time is absent).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/vigil-bench-rules}
rounds=${BENCH_ROUNDS:-3}
build=${BENCH_BUILD:-$root/build}
core=${BENCH_CORE:-1}
shared=$(cd "$root/.." && pwd)/shared
rules_dir=${BENCH_RULES:-$shared/data/rules/et-open-2019}
suri_yaml=${BENCH_SURICATA_YAML:-/etc/suricata/suricata.yaml}

skip() { echo "bench: skipped: $*"; exit 0; }
die() { echo "bench: error: $*" >&2; exit 1; }

case $rounds in '' | *[!0-9]* | 0) die "BENCH_ROUNDS must be a positive number, got '$rounds'" ;; esac
case $core in '' | *[!0-9]*) die "BENCH_CORE must be a core number, got '$core'" ;; esac
[ "$core" != 0 ] || die "BENCH_CORE cannot be 0: vigil's main thread runs on lcore 0"

# --- what is needed -----------------------------------------------------------------------------
command -v suricata >/dev/null || skip "no suricata (Debian: suricata from bookworm-backports)"
suri_info=$(suricata --build-info 2>/dev/null || true)
grep -Eq 'Hyperscan support: +yes' <<<"$suri_info" ||
  skip "this suricata is built without Hyperscan: no like-for-like comparison"
[ -f "$suri_yaml" ] || skip "no $suri_yaml (set BENCH_SURICATA_YAML)"
compgen -G "$rules_dir/emerging-*.rules" >/dev/null || skip "no $rules_dir/emerging-*.rules (../shared/data absent?)"
[ -f "$rules_dir/classification.config" ] || skip "no $rules_dir/classification.config"
for t in editcap capinfos taskset python3; do
  command -v "$t" >/dev/null || die "$t is needed (Debian: wireshark-common, util-linux, python3)"
done
[ "$(nproc)" -gt "$core" ] || die "core $core does not exist here ($(nproc) cores)"
src_bin="$build/dataplane/vigil-dataplane"
[ -x "$src_bin" ] || die "no $src_bin: build vigil first (scripts/setup.sh), or set BENCH_BUILD"
timev=""
if [ -x /usr/bin/time ] && grep -q 'Maximum resident' <<<"$(/usr/bin/time -v true 2>&1)"; then
  timev=/usr/bin/time
fi

mkdir -p "$work"
# A copy of the binary, so that a rebuild during the benchmark changes nothing under it.
bin="$work/vigil-dataplane"
cp "$src_bin" "$bin.tmp" && mv "$bin.tmp" "$bin"

mix=${BENCH_MIX:-$work/mix.pcap}
if [ ! -f "$mix" ]; then
  [ -n "${BENCH_MIX:-}" ] && die "BENCH_MIX=$mix does not exist"
  if [ ! -f "$shared/tools/make-bench-mix.sh" ] || [ ! -d "$shared/data/pcaps" ]; then
    skip "no $mix and no ../shared/tools/make-bench-mix.sh or ../shared/data/pcaps to build it"
  fi
  echo "bench: building $mix (once, a few minutes)"
  bash "$shared/tools/make-bench-mix.sh" "$mix.part" 30 || die "make-bench-mix.sh failed"
  mv "$mix.part" "$mix"
fi
ten="$work/ten.pcap"  # the first 10 packets of MIX: the start-up run
editcap -r "$mix" "$ten" 1-10 || die "editcap could not cut 10 packets from $mix"
read -r pkts bytes < <(capinfos -M -T -r -c -d "$mix" | awk -F'\t' 'NR==1 {print $2, $3}')
ten_pkts=$(capinfos -M -T -r -c "$ten" | awk -F'\t' 'NR==1 {print $2}')
if [ "${pkts:-0}" -le 0 ] || [ "${ten_pkts:-0}" != 10 ]; then
  die "cannot read $mix (${pkts:-?} packets) or $ten (${ten_pkts:-?} packets)"
fi

# The rules: every emerging-*.rules in one file, loaded by both engines.
rule_files=("$rules_dir"/emerging-*.rules)
cat "${rule_files[@]}" >"$work/et.rules"
rule_lines=$(grep -Ec '^[[:space:]]*(alert|drop|pass|reject)[[:space:]]' "$work/et.rules" || true)
cls="$rules_dir/classification.config"

# --- vigil's configuration, as bench-parse.sh write_config detect ---------------------------------
mem="hugepages: false, size_mb: 4096"
[ "${BENCH_HUGE:-0}" = 1 ] && mem="hugepages: true, size_mb: 4096"
cat >"$work/vigil.yaml" <<YAML
sensor: {name: bench-rules}
eal: {file_prefix: vbench-rules, log_level: err, memory: {$mem}}
ports:
  - {name: a, device: "net_null0"}
  - {name: b, device: "net_null1"}
bridges: [[a, b]]
workers: {lcores: [$core]}
outputs: {eve: {enabled: true, path: $work/vigil-eve.json}, event_ring_mb: 256}
stream: {sessions: 262144}
app_layer: {parsers: {smb: 8192, dcerpc: 8192, krb5: 8192, dns: 32768, http: 4096, tls: 4096}}
detect: {enabled: true, rules: ["$work/et.rules"], classification: "$cls", cache_dir: "$work/detect-cache", invalid_rules: skip}
YAML
# Replay (--pcap-in) replaces the ports by one net_pcap port and keeps one worker, on lcore $core.
# The pools are sized as in bench-parse.sh (replay lingers tens of thousands of flows), and the
# 256 MiB event ring keeps the EVE writer's hiccups on core 0 from losing events.

# --- one measured run ---------------------------------------------------------------------------
# run_measured TAG CMD...: stdout/stderr to $work/TAG.out/.err; prints "wall_s maxrss_kb rc cpu_s"
# (cpu_s: user + system time of the process, "-" without /usr/bin/time).
run_measured() {
  local tag=$1 t0 t1 rc=0 rss=0 cpu=- pid v
  shift
  t0=$EPOCHREALTIME
  if [ -n "$timev" ]; then
    "$timev" -v -o "$work/$tag.time" "$@" >"$work/$tag.out" 2>"$work/$tag.err" || rc=$?
    t1=$EPOCHREALTIME
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$tag.time")
    cpu=$(awk -F': ' '/(User|System) time \(seconds\)/ {s += $2} END {printf "%.2f", s}' "$work/$tag.time")
  else
    # VmHWM only grows; the last value read before the exit is the peak to within 50 ms of work.
    "$@" >"$work/$tag.out" 2>"$work/$tag.err" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$v" ] && [ "$v" -gt "$rss" ] && rss=$v
      sleep 0.05
    done
    wait "$pid" || rc=$?
    t1=$EPOCHREALTIME
  fi
  echo "$(python3 -c "print(f'{$t1 - $t0:.3f}')") ${rss:-0} $rc ${cpu:--}"
}

run_vigil() {  # $1 = tag, $2 = capture; appends a JSON line to $work/results
  local tag=$1 cap=$2 wall rss rc cpu
  rm -f "$work/vigil-eve.json" "$work/$tag.counters.json"
  read -r wall rss rc cpu < <(run_measured "$tag" "$bin" --config "$work/vigil.yaml" --pcap-in "$cap" \
    --counters "$work/$tag.counters.json")
  if [ "$rc" != 0 ] || [ ! -s "$work/$tag.counters.json" ]; then
    die "vigil-dataplane failed on $cap (exit $rc): $(tail -3 "$work/$tag.err")"
  fi
  python3 - "$tag" "$work" "$wall" "$rss" "$cpu" <<'PY' >>"$work/results"
import json, re, sys
tag, work, wall, rss = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
cpu = None if sys.argv[5] == "-" else float(sys.argv[5])
c = json.loads(open(f"{work}/{tag}.counters.json").read().strip().splitlines()[-1])
err = open(f"{work}/{tag}.err", errors="replace").read()
m = re.search(r"(compiled|loaded from cache) in (\d+) ms", err)
p, w = c["ports"][0], c["workers"][0]
al, st = w["app_layer"], w["stream"]
limits = {"sessions_exhausted": st["sessions_exhausted"], "parser_exhausted": al["parser_exhausted"],
          "events_lost": al["events_lost"], "event_ring_full": w["events"]["ring_full"],
          "flow_table_full": w["flows"]["table_full"], "alerts_lost": c["detect"]["alerts_lost"],
          "dropped": p["dropped_total"]}
print(json.dumps({"engine": "vigil", "tag": tag, "wall": wall, "rss_kb": rss, "cpu": cpu,
                  "elapsed": c["elapsed_s"], "rx": p["rx_packets"], "rx_bytes": p["rx_bytes"],
                  "alerts": c["detect"]["alerts"], "inspected": c["detect"]["inspected"],
                  "rules": c["detect"]["rules_loaded"], "eve": c["eve"]["records"],
                  "compile": m.group(1) if m else None, "compile_ms": int(m.group(2)) if m else None,
                  "limits": {k: v for k, v in limits.items() if v}}))
PY
}

run_suricata() {  # $1 = tag, $2 = capture; appends a JSON line to $work/results
  local tag=$1 cap=$2 wall rss rc cpu
  rm -rf "$work/suricata-log" && mkdir -p "$work/suricata-log"
  # -vvv: the Config-level line naming the pattern matchers ("MPM: hs") reaches the console.
  read -r wall rss rc cpu < <(run_measured "$tag" taskset -c "$core" suricata -c "$suri_yaml" \
    -r "$cap" -S "$work/et.rules" -k none --runmode single -l "$work/suricata-log" \
    --set "classification-file=$cls" --set unix-command.enabled=no -vvv)
  [ "$rc" = 0 ] || die "suricata failed on $cap (exit $rc): $(grep -E 'Error|E:' "$work/$tag.out" "$work/$tag.err" | tail -3)"
  python3 - "$tag" "$work" "$wall" "$rss" "$cpu" <<'PY' >>"$work/results"
import json, re, sys
tag, work, wall, rss = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
cpu = None if sys.argv[5] == "-" else float(sys.argv[5])
log = open(f"{work}/{tag}.out", errors="replace").read() + open(f"{work}/{tag}.err", errors="replace").read()
def find(rx, conv=int, default=None):
    m = re.search(rx, log)
    return conv(m.group(1)) if m else default
r = {"engine": "suricata", "tag": tag, "wall": wall, "rss_kb": rss, "cpu": cpu,
     "own_elapsed": find(r"time elapsed ([\d.]+)s", float),
     "rx": find(r"read \d+ files?, (\d+) packets"), "rx_bytes": find(r"packets, (\d+) bytes"),
     "alerts": find(r"Alerts: (\d+)"), "rules": find(r"(\d+) rules successfully loaded"),
     "failed": find(r"(\d+) rules failed"), "mpm": find(r"MPM: (\w+)", str),
     "load_line": find(r"(\d+ rule files? processed\..*)", str),
     "sigs_line": find(r"(?m)(\d+ signatures processed\..*?)(?: \[.*)?$", str)}
print(json.dumps(r))
PY
}

# --- header -------------------------------------------------------------------------------------
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ] && commit+=" + uncommitted changes"
echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at start, $(date '+%F %H:%M')"
echo "bench: vigil $commit; binary $src_bin ($(date -r "$src_bin" '+%F %H:%M'), sha256 $(sha256sum "$bin" | cut -c1-12))"
echo "bench: Suricata $(grep -o -m1 'version [^ ]*' <<<"$suri_info" | cut -d' ' -f2); libhs $(pkg-config --modversion libhs 2>/dev/null || echo '?')"
echo "bench: capture $mix: $pkts packets, $bytes bytes of frames ($((bytes / 1000000)) MB); 10-packet capture $ten"
echo "bench: rules $work/et.rules: $rule_lines rules in ${#rule_files[@]} files of $rules_dir, $cls"
echo "bench: cores: Suricata pinned with taskset -c $core (all its threads: worker, flow manager, recycler, and its EVE output inline);"
echo "bench:        vigil's worker on lcore $core, its main thread (EVE writer, counters) on lcore 0, as in production"
echo "bench: $rounds rounds, each: both engines on the 10-packet capture and on MIX, order alternating"
if [ -n "$timev" ]; then echo "bench: max RSS from /usr/bin/time -v"; else echo "bench: max RSS: VmHWM polled from /proc (no /usr/bin/time)"; fi

cat "$mix" >/dev/null  # into the page cache before the first run
: >"$work/results"

# vigil, cold: empty cache dir, so the databases are compiled ("compiled in N ms").
# vigil does not create cache_dir: a missing one is like an unwritable one (it compiles every start).
rm -rf "$work/detect-cache" && mkdir -p "$work/detect-cache"
echo "bench: vigil cold start (empty cache dir $work/detect-cache) on the 10-packet capture ..."
run_vigil vigil-cold "$ten"
grep -E 'vigil-dataplane: detect:' "$work/vigil-cold.err" | sed 's/^/bench:   /' || true

for round in $(seq 1 "$rounds"); do
  order="vigil suricata"
  [ $((round % 2)) = 0 ] && order="suricata vigil"
  for eng in $order; do
    "run_$eng" "$eng-ten-$round" "$ten"
    "run_$eng" "$eng-mix-$round" "$mix"
  done
  python3 - "$work/results" "$round" "$pkts" <<'PY'
import json, sys
rs = {r["tag"]: r for r in map(json.loads, open(sys.argv[1]))}
n, pkts = sys.argv[2], int(sys.argv[3])
v, vt, s, st = (rs[f"{e}-{k}-{n}"] for e in ("vigil", "suricata") for k in ("mix", "ten"))
vp, sp = v["elapsed"], s["wall"] - st["wall"]
suri = f"({pkts / sp / 1e3:.0f} kpps), ratio {sp / vp:.1%}" if sp > 0 else "(start-up noise larger than the processing: round not counted)"
print(f"bench: round {n}: vigil {v['elapsed']:.3f} s processing ({pkts / vp / 1e3:.0f} kpps; wall {v['wall']:.2f} s, "
      f"10 packets {vt['wall']:.2f} s), Suricata {s['wall']:.2f} - {st['wall']:.2f} = {sp:.3f} s {suri}")
PY
done
echo "bench: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"

# --- summary ------------------------------------------------------------------------------------
python3 - "$work/results" "$rounds" "$pkts" "$bytes" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rounds, pkts, byts = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
by = {r["tag"]: r for r in rs}
med = statistics.median
N = range(1, rounds + 1)
vm, vt = [by[f"vigil-mix-{n}"] for n in N], [by[f"vigil-ten-{n}"] for n in N]
sm, st = [by[f"suricata-mix-{n}"] for n in N], [by[f"suricata-ten-{n}"] for n in N]
cold = by["vigil-cold"]
vproc = [v["elapsed"] for v in vm]
sproc = [s["wall"] - t["wall"] for s, t in zip(sm, st)]
# A round whose Suricata MIX run took less wall time than its 10-packet run (start-up noise larger
# than the processing, on a very busy host) gives no figure; the cross-checks below still do.
ok = [sp > 0 for sp in sproc]
ratios = [s / v for v, s, k in zip(vproc, sproc, ok) if k]
def mib(kb): return f"{kb / 1024:.0f} MiB"
def opt(x): return f"{x:.2f}" if x is not None else "?"

print()
def cpu(m, t):
    return m["cpu"] - t["cpu"] if m["cpu"] is not None and t["cpu"] is not None else None
vcpu = [cpu(m, t) for m, t in zip(vm, vt)]
scpu = [cpu(m, t) for m, t in zip(sm, st)]
print("seconds; d = MIX run minus 10-packet run; start = 10-packet run's wall time; ratio = Suricata wall d"
      " / vigil elapsed_s")
print("round | vigil: elapsed_s  wall d   CPU d  start | Suricata: wall d  own elapsed   CPU d  start | ratio")
for n, v, t, s, u, vp, sp, vc, sc in zip(N, vm, vt, sm, st, vproc, sproc, vcpu, scpu):
    print(f"{n:5} | {vp:16.3f} {v['wall'] - t['wall']:7.2f} {opt(vc):>7} {t['wall']:6.2f} |"
          f" {sp:16.3f} {opt(s['own_elapsed']):>12} {opt(sc):>7} {u['wall']:6.2f} |"
          f" {f'{sp / vp:5.1%}' if sp > 0 else 'n/a'}")
vp = med(vproc)
sp = med([x for x, k in zip(sproc, ok) if k]) if any(ok) else None
warm = [r["compile_ms"] for r in vm + vt if r["compile"] == "loaded from cache"]
own = [s["own_elapsed"] for s in sm if s["own_elapsed"] is not None]
print()
print(f"{'median of ' + str(rounds):14} {'packets/s':>10} {'Gbit/s':>7} {'processing':>11} "
      f"{'start-up':>9} {'peak RSS':>9}")
print(f"{'vigil':14} {pkts / vp:10,.0f} {byts * 8 / vp / 1e9:7.3f} {vp:9.3f} s "
      f"{med([t['wall'] for t in vt]):7.2f} s {mib(max(v['rss_kb'] for v in vm)):>9}"
      f"   (start-up with the rule databases from the cache)")
if sp is not None:
    print(f"{'Suricata':14} {pkts / sp:10,.0f} {byts * 8 / sp / 1e9:7.3f} {sp:9.3f} s "
          f"{med([t['wall'] for t in st]):7.2f} s {mib(max(s['rss_kb'] for s in sm)):>9}"
          f"   (compiles its rules at every start)")
    print(f"ratio vigil/Suricata, packets/s: {med(ratios):.1%} (median of the rounds: "
          f"{', '.join(f'{x:.1%}' for x in ratios)}; ratio of the medians {sp / vp:.1%})")
else:
    print(f"{'Suricata':14} no round gave a processing time (start-up noise): see the cross-checks")
if own:
    o = med(own)
    note = ""
    if sp is None or abs(o - sp) > 0.25 * o:
        note = " - differs by more than 25 %: start-up times varied (a busy host)"
    print(f"cross-check: Suricata's own 'time elapsed' (engine start to stop), median {o:.3f} s ="
          f" {pkts / o:,.0f} packets/s, ratio {o / vp:.1%}{note}")
if None not in vcpu + scpu:
    vc, sc = med(vcpu), med(scpu)
    print(f"cross-check: CPU time of the processing (user + system, MIX run minus 10-packet run), median:"
          f" vigil {vc:.2f} s (worker and main thread), Suricata {sc:.2f} s, ratio {sc / vc:.1%}"
          f" (time waiting for the CPU not counted)")
print(f"vigil compile: cold {cold['compile_ms']} ms (empty cache dir: '{cold['compile']}'; the whole cold"
      f" start {cold['wall']:.2f} s, peak RSS {mib(cold['rss_kb'])}); warm "
      f"{(med(warm) if warm else float('nan')):.0f} ms loading from the cache (median of {len(warm)} starts)")
print(f"Suricata start-up (10-packet run: rule load, Hyperscan compile, exit): median "
      f"{med([t['wall'] for t in st]):.2f} s, peak RSS {mib(max(t['rss_kb'] for t in st))}")
s0 = sm[-1]
print(f"rules: vigil {vm[-1]['rules']} in the engine; Suricata {s0['rules']} loaded, {s0['failed']} failed,"
      f" MPM {s0['mpm']}")
print(f"  Suricata: {s0['load_line']}")
print(f"  Suricata: {s0['sigs_line']}")
print(f"alerts (sanity, not a comparison: the engines implement different keywords): vigil "
      f"{', '.join(str(v['alerts']) for v in vm)} ({vm[-1]['inspected']} packets inspected), Suricata "
      f"{', '.join(str(s['alerts']) for s in sm)}")
warn = []
for r in vm + sm:
    if r["rx"] != pkts:
        warn.append(f"{r['tag']}: {r['rx']} packets read, the capture has {pkts}")
for r in vm + vt + [cold]:
    if r.get("limits"):
        warn.append(f"{r['tag']} hit limits: {r['limits']}")
if cold["compile"] != "compiled":
    warn.append(f"the cold start did not compile ({cold['compile']})")
for r in sm + st:
    if r["mpm"] != "hs":
        warn.append(f"{r['tag']}: Suricata's MPM is {r['mpm']}, not hs")
for w in warn:
    print(f"warning: {w}")
PY
