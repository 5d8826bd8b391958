#!/usr/bin/env bash
# Debian/Ubuntu packages the project needs: PortAudio for sounddevice, and the PulseAudio / JACK
# servers that the audio tests run as loopback devices (no sound card needed). Idempotent: exits
# at once when everything is installed.
set -euo pipefail
PKGS=(libportaudio2 libsndfile1 pulseaudio pulseaudio-utils alsa-utils libasound2-plugins
      jackd2 python3-venv)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=''
[ "$(id -u)" -ne 0 ] && SUDO='sudo'
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages: done"
