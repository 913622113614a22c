#!/usr/bin/env bash
# House style checks: clang-format (Google base, 100 columns; .clang-format) on every C++ file,
# and with --tidy also clang-tidy (.clang-tidy) against build/compile_commands.json.
#   scripts/lint.sh            format check only (part of scripts/test.sh)
#   scripts/lint.sh --tidy     format + clang-tidy (slower)
#   scripts/lint.sh --fix      rewrite the files with clang-format
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mapfile -t files < <(git ls-files '*.cc' '*.h' 2>/dev/null || find dataplane control rules tests -name '*.cc' -o -name '*.h')
if [ "${1:-}" = --fix ]; then clang-format -i "${files[@]}"; exit 0; fi
fail=0; pass=0
bad=$(clang-format --dry-run "${files[@]}" 2>&1 | grep -oE '^[^:]+\.(cc|h)' | sort -u)
if [ -n "$bad" ]; then
  echo "FAIL clang-format: $(echo "$bad" | wc -l) file(s) differ (scripts/lint.sh --fix):"; echo "$bad" | sed 's/^/  /'
  fail=$((fail + 1))
else
  echo "PASS clang-format: ${#files[@]} files"; pass=$((pass + 1))
fi
if [ "${1:-}" = --tidy ]; then
  out=$(for f in "${files[@]}"; do [[ $f == *.cc ]] && clang-tidy -p build --quiet "$f" 2>/dev/null; done | grep -E "warning:|error:")
  if [ -n "$out" ]; then echo "FAIL clang-tidy:"; echo "$out" | sort -u | sed 's/^/  /'; fail=$((fail + 1))
  else echo "PASS clang-tidy"; pass=$((pass + 1)); fi
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
