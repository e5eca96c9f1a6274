#!/usr/bin/env bash
# Installs the Debian packages the testbed and its tests use, when they are missing.
# Needs root for apt-get; without root it says which packages are missing and goes on.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t wanted < <(grep -v '^\s*#' "$here/debian-packages.txt" | awk 'NF {print $1}')
missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "== Debian packages: all present (${wanted[*]})"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "== Debian packages missing: ${missing[*]} (run 'make' as root to install them)" >&2
  exit 0
fi
echo "== apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
