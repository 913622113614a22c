#!/usr/bin/env bash
# Sets up (packages, build) and runs every test: unit, EAL (DPDK vdevs, no hugepages), capture
# replay and the network-namespace lab. Ends with one line: 'N passed, N failed, N skipped'
# counting individual test cases across all suites.
#   scripts/test.sh                 everything
#   scripts/test.sh unit eal        only these meson suites (unit, eal, replay, lab)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
set +e
meson test -C build --print-errorlogs --num-processes 1 "$@"
rc=$?
set -e
# Sum the cases each suite reported (gtest's PASSED/FAILED lines, our scripts' closing line).
python3 - build/meson-logs/testlog.json <<'PY'
import json, re, sys
p = f = s = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = t.get("stdout", "") or ""
    m = re.search(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$", out, re.M)
    if m:
        p += int(m[1]); f += int(m[2]); s += int(m[3] or 0)
        continue
    g = re.search(r"\[  PASSED  \] (\d+) tests?", out)
    gf = re.search(r"\[  FAILED  \] (\d+) tests?, listed below", out)
    gs = re.search(r"\[  SKIPPED \] (\d+) tests?", out)
    if g or gf:
        p += int(g[1]) if g else 0; f += int(gf[1]) if gf else 0; s += int(gs[1]) if gs else 0
    elif t.get("result") == "OK":
        p += 1
    elif t.get("result") == "SKIP":
        s += 1
    else:
        f += 1
print(f"vigil: {p} passed, {f} failed, {s} skipped")
PY
exit $rc
