#!/usr/bin/env bash
# Lab topology: two hosts joined through the appliance, each in its own network namespace.
#
#   vigil-left (eth0 10.77.0.1/24, fd77::1/64)
#        │ veth
#   vigil-br: vg-a ── vigil-dataplane (net_af_packet) ── vg-b
#        │ veth
#   vigil-right (eth0 10.77.0.2/24, fd77::2/64)
#
# The appliance's namespace has no addresses: it is a wire. Checksum and segmentation offloads
# are off on every veth end so af_packet sees and sends complete, correctly summed frames.
#
# usage: scripts/lab.sh up|down|status
#        scripts/lab.sh exec left|right|br CMD...   run CMD in a namespace
# VIGIL_LAB_PREFIX (default "vigil") names the namespaces, so tests can run their own lab.
set -euo pipefail
p=${VIGIL_LAB_PREFIX:-vigil}
left=$p-left; right=$p-right; br=$p-br
# Interface names in the bridge namespace (see config/vigil.yaml).
ifa=${VIGIL_LAB_IF_A:-vg-a}; ifb=${VIGIL_LAB_IF_B:-vg-b}

need_root() { [ "$(id -u)" -eq 0 ] || { echo "lab.sh: needs root (network namespaces)" >&2; exit 1; }; }

offloads_off() {  # ns ifname
  ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || \
    ip netns exec "$1" ethtool -K "$2" tx off >/dev/null
}

up() {
  need_root
  down >/dev/null 2>&1 || true
  for ns in "$left" "$right" "$br"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip link add "$p-l0" type veth peer name "$p-l1"
  ip link add "$p-r0" type veth peer name "$p-r1"
  ip link set "$p-l0" netns "$left"; ip -n "$left" link set "$p-l0" name eth0
  ip link set "$p-r0" netns "$right"; ip -n "$right" link set "$p-r0" name eth0
  ip link set "$p-l1" netns "$br"; ip -n "$br" link set "$p-l1" name "$ifa"
  ip link set "$p-r1" netns "$br"; ip -n "$br" link set "$p-r1" name "$ifb"
  for i in "$ifa" "$ifb"; do
    ip netns exec "$br" sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1"
    ip -n "$br" link set "$i" up
    offloads_off "$br" "$i"
  done
  ip -n "$left" addr add 10.77.0.1/24 dev eth0
  ip -n "$right" addr add 10.77.0.2/24 dev eth0
  ip -n "$left" addr add fd77::1/64 dev eth0 nodad
  ip -n "$right" addr add fd77::2/64 dev eth0 nodad
  for ns in "$left" "$right"; do
    ip -n "$ns" link set eth0 up
    offloads_off "$ns" eth0
  done
  echo "lab: $left (10.77.0.1) <-> [$br: $ifa | vigil | $ifb] <-> $right (10.77.0.2)"
}

down() {
  for ns in "$left" "$right" "$br"; do ip netns del "$ns" 2>/dev/null || true; done
  echo "lab: removed"
}

status() {
  for ns in "$left" "$br" "$right"; do
    if ip netns list | grep -qw "$ns"; then
      echo "== $ns"; ip -n "$ns" -brief addr
    else
      echo "== $ns: absent"
    fi
  done
}

cmd=${1:-}
case "$cmd" in
  up) up ;;
  down) need_root; down ;;
  status) status ;;
  exec)
    where=${2:?left|right|br}; shift 2
    exec ip netns exec "$p-$where" "$@" ;;
  *) echo "usage: $0 up|down|status|exec left|right|br CMD..." >&2; exit 2 ;;
esac
