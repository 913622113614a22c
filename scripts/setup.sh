#!/usr/bin/env bash
# Installs every system package vigil needs (Debian 12, apt, idempotent, non-interactive) and
# builds into build/. Both README commands run this first.
#   scripts/setup.sh            install what is missing, configure build/ if needed, compile
#   VIGIL_SKIP_APT=1 ...        skip the package step (packages managed elsewhere)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

packages=(
  # build
  build-essential g++ meson ninja-build pkg-config clang-format clang-tidy
  # libraries
  libdpdk-dev dpdk libhyperscan-dev libyaml-cpp-dev libjemalloc-dev libgtest-dev libgmock-dev
  libpcap-dev libnuma-dev libsqlite3-dev
  # lab, tests and benchmarks
  iproute2 ethtool iputils-ping netcat-openbsd tshark wireshark-common tcpreplay python3
  python3-scapy python3-yaml nlohmann-json3-dev sqlite3 prometheus curl
)

if [ "${VIGIL_SKIP_APT:-0}" != 1 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # wireshark-common asks whether non-root users may capture: answer no, without a prompt.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  # Suricata 7 (the reference for the signature engine's agreement report and benchmark,
  # docs/rules.md) is only in bookworm-backports: enable that suite once, install from it.
  if ! dpkg-query -W -f='${Status}' suricata 2>/dev/null | grep -q "install ok installed"; then
    list=/etc/apt/sources.list.d/vigil-backports.list
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "deb http://deb.debian.org/debian bookworm-backports main" | $sudo tee "$list" >/dev/null
    fi
    echo "setup: installing suricata from bookworm-backports"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends -t bookworm-backports suricata
    # The package enables a service on the default interface: vigil only runs it on captures.
    $sudo systemctl disable --now suricata >/dev/null 2>&1 || true
  fi
fi

buildtype=${VIGIL_BUILDTYPE:-release}
if [ ! -f build/build.ninja ]; then
  werror=false
  [ "${CI:-}" = true ] && werror=true
  meson setup build --buildtype="$buildtype" -Dwerror="$werror"
fi
ninja -C build
echo "setup: built build/dataplane/vigil-dataplane"
