#!/usr/bin/env bash
# The vigil-dataplane command line: bad configs and bad arguments are refused with precise
# messages and exit status 2 before EAL starts; --check shows the EAL arguments a config makes.
# usage: cli_test.sh BUILD_DIR
set -uo pipefail
dp="$(cd "$1" && pwd)/dataplane/vigil-dataplane"
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/vigil-cli-test.XXXXXX); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
# expect NAME WANT_RC PATTERN CMD...: runs CMD, checks its exit status and that its output matches
expect() {
  local name=$1 want=$2 pattern=$3; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" = "$want" ] && grep -qE -- "$pattern" <<<"$out"; then
    echo "PASS $name"; pass=$((pass + 1))
  else
    echo "FAIL $name: exit $rc (want $want), output:"; sed 's/^/    /' <<<"$out" | head -8
    fail=$((fail + 1))
  fi
}

cat >"$tmp/bad.yaml" <<'YAML'
ports:
  - {name: a, device: "net_null0"}
  - {name: b, device: "net_null1"}
bridges: [[a, b]]
flow:
  capacity: 12
  timeouts:
    tcp: {neww: 5}
YAML
expect "invalid config: every error with file:line:column: field" 2 \
  "bad.yaml:6:13: flow.capacity: .*12" "$dp" --config "$tmp/bad.yaml"
expect "invalid config: the second error too" 2 "bad.yaml:8:11: flow.timeouts.tcp.neww: unknown key" \
  "$dp" --config "$tmp/bad.yaml"
expect "invalid config: a count of errors" 2 "2 error\(s\) in" "$dp" --config "$tmp/bad.yaml"
expect "missing config file" 2 "no-such.yaml" "$dp" --config "$tmp/no-such.yaml"
expect "--check prints the derived EAL arguments" 0 \
  "eal: .* -l 0,1 .*--no-huge -m 1024 .*--vdev net_af_packet0,iface=vg-a,qpairs=1" \
  "$dp" --config "$root/config/vigil.yaml" --check
expect "-- passes extra EAL arguments through" 0 "--huge-dir /mnt/x$" \
  "$dp" --config "$root/config/vigil.yaml" --check -- --huge-dir /mnt/x
expect "unknown argument" 2 "unknown argument '--bogus'" "$dp" --config "$root/config/vigil.yaml" --bogus
expect "--pcap-out without --pcap-in" 2 "--pcap-out needs --pcap-in" \
  "$dp" --config "$root/config/vigil.yaml" --pcap-out "$tmp/x.pcap"
expect "--pcap-in that does not exist" 2 "No such file" \
  "$dp" --config "$root/config/vigil.yaml" --pcap-in "$tmp/none.pcap"
printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\x71\x00\x00\x00' >"$tmp/sll.pcap"
expect "--pcap-in that is not Ethernet" 2 "link type 113 \(LINUX_SLL\) is not Ethernet" \
  "$dp" --config "$root/config/vigil.yaml" --pcap-in "$tmp/sll.pcap"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
