#!/usr/bin/env bash
# The Python training tests (npm run test:python, part of npm test). They use Debian's PyTorch,
# ONNX and scikit-learn, since PyPI is not a registry every machine reaches: when one is missing
# and this runs as root with apt-get, they are installed first; otherwise it says what to install.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1

packages=(python3-torch python3-onnx python3-numpy python3-sklearn python3-matplotlib python3-pytest)
imports='import torch, onnx, numpy, sklearn, matplotlib, pytest, threadpoolctl'

if ! /usr/bin/python3 -c "$imports" 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test:python: installing Debian's ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  else
    echo "test:python: the training tests need Debian's ${packages[*]}." >&2
    echo "  Install them (sudo apt-get install ${packages[*]}) and run npm test again." >&2
    exit 1
  fi
fi
exec /usr/bin/python3 -m pytest -q training/tests
