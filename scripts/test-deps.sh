#!/usr/bin/env bash
# What `npm test` needs from Debian, checked first so a fresh machine learns it at once: the training
# tests' Python packages (not every machine reaches PyPI), and chromium and prometheus, without which
# their tests skip. As root it installs what is missing with apt-get; otherwise it names it.
set -euo pipefail

# better-sqlite3's native module: .npmrc's ignore-scripts=true leaves it unbuilt after `npm ci`, and
# every app test opens the store. Build it here (README's `npm run build:sqlite`).
if ! node -e "require('better-sqlite3')(':memory:')" 2>/dev/null; then
  echo "test: better-sqlite3's native module does not load (npm ci runs no install scripts): building it" >&2
  tools=()
  for tool in python3 make g++; do command -v "$tool" >/dev/null || tools+=("$tool"); done
  if [ ${#tools[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing Debian's ${tools[*]} to build it" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${tools[@]}" >/dev/null
  elif [ ${#tools[@]} -gt 0 ]; then
    echo "test: building it needs ${tools[*]}: install them (sudo apt-get install ${tools[*]}) and run npm test again." >&2
    exit 1
  fi
  npm run build:sqlite >&2
fi

python_packages=(python3-torch python3-onnx python3-numpy python3-sklearn python3-matplotlib python3-pytest python3-pyflakes)
python_imports='import torch, onnx, numpy, sklearn, matplotlib, pytest, threadpoolctl, pyflakes'

missing=()
/usr/bin/python3 -c "$python_imports" 2>/dev/null || missing+=("${python_packages[@]}")
command -v chromium >/dev/null || [ -x /usr/bin/chromium-browser ] || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "test: installing Debian's ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi

echo "test: these Debian packages are missing: ${missing[*]}" >&2
echo "  Install them (sudo apt-get install ${missing[*]}) and run npm test again." >&2
if [[ " ${missing[*]} " == *" python3-torch "* ]]; then exit 1; fi
# Without chromium or prometheus the suite still runs; the tests that need them say they skip.
echo "  Going on: the browser and Prometheus tests will be skipped." >&2
