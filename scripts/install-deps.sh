#!/usr/bin/env bash
# Installs the Debian packages Sluice needs (build, tests and benchmark peers) if any are missing.
# `make test` passes --test; `make run` does not (no browser for a quick start).
set -euo pipefail
# libcurl4 and libmemcached11 are opened with dlopen at run time (HTTP, memcached); their -dev packages give the headers.
packages=(pkg-config liblua5.4-dev libyaml-dev librdkafka-dev libcurl4-openssl-dev libcurl4 libmemcached-dev libmemcached11 libmemcached-tools lua5.4 lua-cjson jq kcat python3 memcached curl)
# --test: also what only the tests need (headless Chromium for the live page, tmux for `sluice top`).
[ "${1:-}" = "--test" ] && packages+=(chromium tmux)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "sluice: installing missing packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "sluice: Swift 6 is required (https://swift.org/install), then re-run." >&2; exit 1; }
