#!/usr/bin/env bash
# Installs the Debian packages Collie needs to build, test and benchmark.
# Idempotent: asks apt only for what is missing, so a second run is instant.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libyajl-dev libssl-dev
  libvectorscan-dev libsqlite3-dev libpq-dev libcmocka-dev
  postgresql wrk nodejs
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# npm is needed only when node came without it (Debian splits them).
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
