#!/usr/bin/env bash
# Runs every benchmark (root needed; loopback only; each cleans up after itself). Builds first.
#   sudo bench/run-all.sh [--write]     # --write replaces the sections of bench/RESULTS.md
# Bounded: about 6-8 minutes on 2 cores. Set VERSIONS (default "2.1,1.6") to change the containerd versions.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSIONS="${VERSIONS:-2.1,1.6}"
WRITE=()
[[ "${1:-}" == "--write" ]] && WRITE=(--write)
# npm run build, not tsc alone: it also writes the launcher bin/containerd-shim-ts-v2 the benchmarks run.
npm run --silent build >/dev/null || echo "(build reported type errors; running what was emitted)" >&2
FAILED=()
# Other work may rebuild dist/ meanwhile (a daemon loading a half-written file dies): one retry per script.
run() {
  echo "+ node dist/bench/$*" >&2
  timeout 900 node "dist/bench/$@" || { echo "+ retry: $1" >&2; timeout 900 node "dist/bench/$@"; } || FAILED+=("$1")
}
run startup.js --runs 10 "${WRITE[@]}"
run memory.js --n 20 --versions "$VERSIONS" --grouping --flags "" "${WRITE[@]}"
run latency.js --runs 20 --versions "$VERSIONS" "${WRITE[@]}"
run state.js --seconds 3 --versions "$VERSIONS" --flags "" "${WRITE[@]}"
run throughput.js --mib 256 --runs 3 --versions "$VERSIONS" "${WRITE[@]}"
run survival.js --fuzz-seconds 5 --churn 50 --versions "$VERSIONS" "${WRITE[@]}"
# The ttrpc micro-benchmark appends its own section; here it only prints.
run ttrpc.js --seconds 3 --no-append
if ((${#FAILED[@]} > 0)); then echo "FAILED: ${FAILED[*]}" >&2; exit 1; fi
