# Shared by the scenario scripts (sourced): the PASS/FAIL check and its counters.
#   . "$(dirname "$0")/lib.sh"
#   check NAME COMMAND...   runs COMMAND; prints "PASS NAME" or "FAIL NAME" and counts it
# Each script ends with its own "NAME: $pass passed, $fail failed" line (scripts/test.sh sums them).
pass=0 fail=0
check() {  # check NAME COMMAND...
  if "${@:2}"; then echo "PASS $1"; pass=$((pass + 1)); else echo "FAIL $1"; fail=$((fail + 1)); fi
}
