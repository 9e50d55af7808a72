#!/usr/bin/env bash
# Installs the Debian packages Funnel needs, if missing. Idempotent; needs root or sudo.
set -euo pipefail
packages=(librdkafka-dev libpq-dev libssl-dev libphonenumber-dev postgresql protobuf-compiler kcat pkg-config chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing: ${missing[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
