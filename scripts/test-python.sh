#!/usr/bin/env bash
# The Python training tests (npm run test:python, the second half of npm test), on Debian's
# PyTorch, ONNX and scikit-learn; scripts/test-deps.sh installs or names them first.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
if ! /usr/bin/python3 -c 'import torch, onnx, numpy, sklearn, matplotlib, pytest' 2>/dev/null; then
  bash scripts/test-deps.sh
fi
exec /usr/bin/python3 -m pytest -q training/tests
