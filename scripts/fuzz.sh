#!/usr/bin/env bash
# Opt-in coverage-guided fuzzing with libFuzzer + ASan/UBSan (clang from Debian's clang package,
# installed here if missing). Each target starts from its seed corpus in tests/fuzz/corpus/ and
# writes new inputs to build-fuzz/corpus/<target>; a crash leaves crash-* files in build-fuzz/.
#   scripts/fuzz.sh [SECONDS=300] [TARGET...]     targets: decoder reassembly defrag
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-300}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(decoder reassembly defrag)
if ! command -v clang++ >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang libclang-rt-14-dev
fi
out=build-fuzz; mkdir -p "$out"
declare -A sources=(
  [decoder]="dataplane/packet/decoder.cc tests/fuzz/decoder_fuzz.cc"
  [reassembly]="dataplane/stream/reassembly.cc tests/fuzz/reassembly_fuzz.cc"
  [defrag]="dataplane/stream/defrag.cc tests/fuzz/defrag_fuzz.cc"
)
for t in "${targets[@]}"; do
  [ -n "${sources[$t]:-}" ] || { echo "fuzz: unknown target $t" >&2; exit 2; }
  # shellcheck disable=SC2086
  clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
    ${sources[$t]} -o "$out/$t-fuzz"
  mkdir -p "$out/corpus/$t"
  echo "fuzz: $t for ${secs}s"
  (cd "$out" && "./$t-fuzz" -max_total_time="$secs" -print_final_stats=1 "corpus/$t" \
     "$root/tests/fuzz/corpus/$t")
done
