# Shared by the scenario scripts (sourced): the PASS/FAIL check and its counters.
#   . "$(dirname "$0")/lib.sh"
#   check NAME COMMAND...   runs COMMAND; prints "PASS NAME" or "FAIL NAME" and counts it
# Each script ends with its own "NAME: $pass passed, $fail failed" line (scripts/test.sh sums them).
pass=0 fail=0
check() {  # check NAME COMMAND...
  if "${@:2}"; then echo "PASS $1"; pass=$((pass + 1)); else echo "FAIL $1"; fail=$((fail + 1)); fi
}

# null_bridge_config NAME: the head of a vigil.yaml for a replay through two net_null ports
# bridged on one worker (EAL file prefix vigil-NAME-PID, 4,096 flows); the caller appends its
# detect/outputs sections.
null_bridge_config() {
  cat <<EOF2
sensor: {name: vigil}
eal: {file_prefix: "vigil-$1-$$"}
ports:
  - {name: a, device: "net_null0"}
  - {name: b, device: "net_null1"}
bridges: [[a, b]]
workers: {lcores: [1]}
flow: {capacity: 4096, hash_seed: 1}
EOF2
}
