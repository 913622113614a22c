#!/usr/bin/env bash
# Sets up (packages, build) and runs every test: unit, EAL (DPDK vdevs, no hugepages), capture
# replay and the network-namespace lab. Ends with one line: 'N passed, N failed, N skipped'
# counting individual test cases across all suites.
#   scripts/test.sh                 everything
#   scripts/test.sh unit eal        only these meson suites (unit, eal, replay, cli, lab,
#                                   fuzz-corpus, format); add 'sanitize' for the ASan/UBSan pass
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
suites=(); sanitize=0
[ $# -eq 0 ] && sanitize=1
for a in "$@"; do if [ "$a" = sanitize ]; then sanitize=1; else suites+=("$a"); fi; done
rm -f build/asan-*.log build/meson-logs/testlog.json
set +e
rc=0
if [ $# -eq 0 ] || [ ${#suites[@]} -gt 0 ]; then
  meson test -C build --print-errorlogs --num-processes 1 "${suites[@]}"
  rc=$?
fi
# The DPDK-free suites again under ASan/UBSan (STYLE.md): unit tests and the fuzz corpora.
if [ $sanitize = 1 ]; then
  if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan --buildtype=debugoptimized -Db_lto=false \
      -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || rc=1
  fi
  echo "== ASan/UBSan: unit tests and fuzz corpora"
  corpora=(decoder reassembly defrag dcerpc dns http krb5 ntlmssp smb spnego tls tsch rules query
           model channel)
  if ninja -C build-asan tests/vigil-unit-tests tests/vigil-rules-tests tests/vigil-capture-tests \
       dataplane/vigil-history \
       "${corpora[@]/#/tests/fuzz-corpus-}" >/dev/null; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    build-asan/tests/vigil-unit-tests --gtest_brief=1 >build/asan-unit.log 2>&1 || rc=1
    tail -3 build/asan-unit.log
    build-asan/tests/vigil-rules-tests --gtest_brief=1 >build/asan-rules.log 2>&1 || rc=1
    tail -3 build/asan-rules.log
    build-asan/tests/vigil-capture-tests --gtest_brief=1 >build/asan-capture.log 2>&1 || rc=1
    tail -3 build/asan-capture.log
    for c in "${corpora[@]}"; do
      build-asan/tests/fuzz-corpus-"$c" tests/fuzz/corpus/"$c" >build/asan-fuzz-"$c".log 2>&1 || rc=1
      echo "$c: $(tail -1 build/asan-fuzz-"$c".log)"
    done
  else
    echo "sanitizer build failed"; rc=1
  fi
fi
set -e
# Sum the cases each suite reported (gtest's PASSED/FAILED lines, our scripts' closing line).
python3 - build/meson-logs/testlog.json build/asan-unit.log build/asan-rules.log build/asan-capture.log build/asan-fuzz-*.log <<'PY'
import json, os, re, sys
p = f = s = 0
for extra in sys.argv[2:]:
    if not os.path.exists(extra):
        continue
    out = open(extra, errors="replace").read()
    g = re.search(r"\[  PASSED  \] (\d+) tests?", out)
    gf = re.search(r"\[  FAILED  \] (\d+) tests?, listed below", out)
    m = re.search(r"^(\d+) passed, (\d+) failed", out, re.M)
    if g or gf:
        p += int(g[1]) if g else 0; f += int(gf[1]) if gf else 0
    elif m:
        p += int(m[1]); f += int(m[2])
    else:
        f += 1  # a sanitizer report aborts the run before its summary
for line in (open(sys.argv[1]) if os.path.exists(sys.argv[1]) else []):
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
