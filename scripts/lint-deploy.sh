#!/usr/bin/env bash
# Lints the container and deployment files without a Docker engine or a cluster.
#
#   bash scripts/lint-deploy.sh            run every linter that is installed, skip the rest
#   bash scripts/lint-deploy.sh --strict   fail when a linter is missing (CI installs them:
#                                          apt-get install prometheus yamllint shellcheck docker-compose)
#   --linters-only                         skip test/deploy (when `npm test` runs it anyway)
#
# What runs:
#   dockerfile-utils  Dockerfile syntax/semantics (npm devDependency, always present)
#   hadolint          Dockerfile best practices, if on PATH (not packaged in Debian or npm)
#   yamllint          every YAML file under deploy/ and docker-compose.yml
#   docker-compose    `config` validates docker-compose.yml with Compose's own schema
#                     (Debian's docker-compose 1.29, or the `docker compose` plugin)
#   promtool          `check config`, `check rules`, and the rules' unit tests
#   ShellCheck        this script
#   node --test       test/deploy/*.test.ts: compose-spec schema, Kubernetes schemas,
#                     Dockerfile policy, dashboard/rules structure and PromQL parsing
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

strict=0
tests=1
for arg in "$@"; do
  case "$arg" in
    --strict) strict=1 ;;
    --linters-only) tests=0 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
failed=0
skipped=0

run() {
  local name=$1
  shift
  echo "== $name: $*"
  if "$@"; then
    echo "   ok"
  else
    echo "   FAILED: $name"
    failed=$((failed + 1))
  fi
}

skip() {
  echo "== $1: SKIPPED ($2)"
  skipped=$((skipped + 1))
  if [[ $strict == 1 ]]; then failed=$((failed + 1)); fi
}

have() { command -v "$1" >/dev/null 2>&1; }

run dockerfile-utils node_modules/.bin/dockerfile-utils lint Dockerfile

if have hadolint; then
  run hadolint hadolint Dockerfile
else
  # hadolint is optional even in strict mode: no Debian or npm package ships it.
  echo "== hadolint: SKIPPED (not installed; not packaged in Debian bookworm or on npm)"
fi

if have yamllint; then
  run yamllint yamllint --strict -c deploy/yamllint.yml docker-compose.yml deploy/
else
  skip yamllint "apt-get install yamllint"
fi

if docker compose version >/dev/null 2>&1; then
  run "docker compose config" docker compose -f docker-compose.yml config --quiet
elif have docker-compose; then
  run "docker-compose config" docker-compose -f docker-compose.yml config --quiet
else
  skip "docker-compose config" "apt-get install docker-compose"
fi

if have promtool; then
  run "promtool check config" promtool check config deploy/prometheus/prometheus.yml
  run "promtool check rules" promtool check rules deploy/prometheus/alerts.yml
  run "promtool test rules" bash -c 'cd deploy/prometheus && promtool test rules alerts.test.yml alerts-drift.test.yml alerts-monitoring.test.yml'
else
  skip promtool "apt-get install prometheus"
fi

if have shellcheck; then
  run shellcheck shellcheck scripts/lint-deploy.sh scripts/test-python.sh scripts/test-deps.sh
else
  skip shellcheck "apt-get install shellcheck"
fi

if [[ $tests == 1 ]]; then
  # shellcheck disable=SC2046 # one test file per word is what node --test wants
  run "deploy tests" node --import tsx --test $(find test/deploy -name '*.test.ts' | sort)
fi

echo
if [[ $failed -gt 0 ]]; then
  echo "lint-deploy: $failed check(s) failed, $skipped skipped"
  exit 1
fi
echo "lint-deploy: all checks passed, $skipped skipped"
