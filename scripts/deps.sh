#!/bin/sh
# SPDX-License-Identifier: MIT
# deps.sh - make sure the Debian packages mailvault needs are installed.
#   scripts/deps.sh build     what `make` needs
#   scripts/deps.sh check     plus what the tests need
#   scripts/deps.sh fuzz      plus clang for libFuzzer
# As root, missing packages are installed with apt-get; otherwise the exact
# apt-get line is printed and the script fails.
set -eu

what=${1:-build}
pkgs="build-essential pkg-config librocksdb-dev libssl-dev libgmime-3.0-dev libzstd-dev libglib2.0-dev librnp-dev libxapian-dev libpoppler-glib-dev libarchive-dev libjemalloc-dev"
case "$what" in
build) ;;
check) pkgs="$pkgs libcmocka-dev python3 openssl swaks postfix gnupg notmuch libarchive-tools p7zip-full libxml2-utils unzip rocksdb-tools" ;;
demo) pkgs="$pkgs libcmocka-dev python3" ;;
fuzz) pkgs="$pkgs libcmocka-dev python3 clang libclang-rt-14-dev" ;;
*) echo "usage: $0 build|check|demo|fuzz" >&2; exit 64 ;;
esac

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "mailvault needs these Debian packages:$missing" >&2
    echo "install them with:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix is a test peer only (the tests run private instances): keep the
# system's own instance unconfigured, so installing it starts nothing.
case "$missing" in
*postfix*) echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections ;;
esac
# A fresh machine has no package lists yet; refresh them once if the install fails.
apt-get install -y -q $missing >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get install -y -q $missing
}
