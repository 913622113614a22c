#!/usr/bin/env bash
# Opt-in coverage-guided fuzzing with libFuzzer + ASan/UBSan (clang from Debian's clang package,
# installed here if missing). Each target starts from its seed corpus in tests/fuzz/corpus/ and
# writes new inputs to build-fuzz/corpus/<target>; a crash leaves crash-* files in build-fuzz/.
#   scripts/fuzz.sh [SECONDS=300] [TARGET...]
# targets: decoder reassembly defrag smb dcerpc ntlmssp spnego krb5 dns http tls tsch rules query
#          model channel (default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-300}; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decoder reassembly defrag smb dcerpc ntlmssp spnego krb5 dns http tls tsch rules
  query model channel)
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
# The parsers share the event plumbing and the auth decoders.
proto="dataplane/proto/json_writer.cc dataplane/proto/event.cc dataplane/proto/bytes.cc"
auth="dataplane/proto/ntlmssp.cc dataplane/proto/spnego.cc dataplane/proto/krb5.cc"
for p in dcerpc dns http tls; do
  sources[$p]="$proto $auth dataplane/proto/hash.cc dataplane/proto/$p.cc tests/fuzz/${p}_fuzz.cc"
done
sources[ntlmssp]="$proto $auth tests/fuzz/ntlmssp_fuzz.cc"
sources[spnego]="$proto $auth tests/fuzz/spnego_fuzz.cc"
sources[krb5]="$proto $auth tests/fuzz/krb5_fuzz.cc"
# The rule language links Hyperscan (pcre validation) and yaml-cpp (variables).
sources[rules]="rules/lang/address.cc rules/lang/classification.cc rules/lang/loader.cc \
  rules/lang/rule.cc rules/lang/rule_parser.cc rules/engine/detect.cc tests/fuzz/rules_fuzz.cc"
declare -A libs=([rules]="-lhs -lyaml-cpp")
sources[tsch]="$proto dataplane/proto/tsch.cc tests/fuzz/tsch_fuzz.cc"
sources[smb]="$proto $auth dataplane/proto/dcerpc.cc dataplane/proto/smb.cc dataplane/proto/smb1.cc \
  dataplane/proto/smb2.cc tests/fuzz/smb_fuzz.cc"
# The control plane's inputs: the query language, model files, and the event channel's frames.
query="control/query/query.cc control/query/query_eval.cc control/query/query_prefilter.cc"
sources[query]="$query tests/fuzz/query_fuzz.cc"
sources[model]="$query control/model/model.cc control/model/engine.cc tests/fuzz/model_fuzz.cc"
sources[channel]="control/channel/channel_server.cc tests/fuzz/channel_fuzz.cc"
libs[model]="-lhs -lyaml-cpp"
for t in "${targets[@]}"; do
  [ -n "${sources[$t]:-}" ] || { echo "fuzz: unknown target $t" >&2; exit 2; }
  # shellcheck disable=SC2086
  clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
    ${sources[$t]} ${libs[$t]:-} -o "$out/$t-fuzz"
  mkdir -p "$out/corpus/$t"
  echo "fuzz: $t for ${secs}s"
  (cd "$out" && "./$t-fuzz" -max_total_time="$secs" -print_final_stats=1 "corpus/$t" \
     "$root/tests/fuzz/corpus/$t")
done
