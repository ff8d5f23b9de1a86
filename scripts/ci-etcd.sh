#!/usr/bin/env bash
# Makes the `etcd` binary available for twopc's HA tests, on this machine or a clean one:
# installs Debian's etcd-server with apt-get when `etcd` is missing. The tests start their own
# members (scenarios/etcd.ts: free loopback ports, temporary data directories); nothing runs here.
#
# Run it as root (idempotent): scripts/ci-etcd.sh. Prints the etcd version on stdout.
set -euo pipefail

say() { echo "ci-etcd: $*" >&2; }

if ! command -v etcd >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    say "etcd is missing and installing it needs root (apt-get install etcd-server)"
    exit 1
  fi
  say "etcd is not installed; installing etcd-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q etcd-server >&2
  # The package enables a system etcd on the default ports; the tests use their own members.
  if command -v systemctl >/dev/null; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
fi

etcd --version | head -1
