#!/usr/bin/env bash
# Debian packages the production-shape tests start for real: PostgreSQL (instance storage) and
# Chromium (Dagit in a browser). Installs only what is missing; without root or apt it says
# which tests will be skipped instead of failing, so `make test` still works on a laptop.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: ${missing[*]} not installed and no root apt-get here;" \
         "the Postgres and browser tests will be skipped (sudo apt-get install ${missing[*]})"
    exit 0
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || echo "warning: apt-get update failed; trying the cached package lists"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
