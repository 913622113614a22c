#!/usr/bin/env bash
# The systemd units in config/systemd/ pass `systemd-analyze verify` (syntax, directives, the
# executables they start: pointed at this build) and keep the hardening the operations guide
# promises. usage: units_test.sh BUILD_DIR     (skips without systemd-analyze)
set -uo pipefail
build=$(cd "${1:?usage: units_test.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed"; exit 77; }
tmp=$(mktemp -d /tmp/vigil-units.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"  # check, pass, fail
for u in vigil-dataplane vigil-control; do
  sed "s|/usr/bin/vigil-dataplane|$build/dataplane/vigil-dataplane|g; s|/usr/bin/vigil-control|$build/control/vigil-control|g" \
    "$root/config/systemd/$u.service" >"$tmp/$u.service"
done
(cd "$tmp" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify vigil-dataplane.service \
  vigil-control.service) >"$tmp/verify.log" 2>&1
check "systemd-analyze verify: both units" bash -c '[ ! -s "$0" ]' "$tmp/verify.log"
cat "$tmp/verify.log"
u="$root/config/systemd"
check "control runs as user vigil with no capability" \
  bash -c 'grep -qx "User=vigil" "$0" && grep -qx "CapabilityBoundingSet=" "$0"' "$u/vigil-control.service"
check "both: NoNewPrivileges, ProtectSystem=strict, restart policy" bash -c '
  for f in "$@"; do grep -qx "NoNewPrivileges=true" "$f" && grep -qx "ProtectSystem=strict" "$f" &&
    grep -qx "Restart=always" "$f" || exit 1; done' _ "$u"/*.service
check "control starts after the dataplane" grep -qx "After=vigil-dataplane.service" "$u/vigil-control.service"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
