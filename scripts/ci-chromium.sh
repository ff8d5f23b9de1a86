#!/usr/bin/env bash
# Makes Debian's Chromium ready for the lab's browser test (test/integration/lab-browser.test.ts,
# driven by playwright-core with executablePath /usr/bin/chromium): installs it with apt-get
# when it is missing. playwright-core downloads no browser of its own, so this is the only
# install step. Idempotent; run it as root (sudo scripts/ci-chromium.sh).
set -euo pipefail

CHROMIUM=/usr/bin/chromium
# apt-get waits this long for another apt-get's lock (other jobs may share the machine).
APT_LOCK_WAIT_S=300

say() { echo "ci-chromium: $*" >&2; }

if [ -x "$CHROMIUM" ]; then
  say "$("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") is installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  say "run this as root (it installs a package)"
  exit 1
fi
say "installing chromium with apt-get"
apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT_S" update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT_S" install -y -qq chromium >&2
[ -x "$CHROMIUM" ] || { say "$CHROMIUM is still missing after the install"; exit 1; }
say "$("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") is installed"
