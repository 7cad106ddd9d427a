#!/usr/bin/env bash
# Generates static protobufjs code from proto/ into src/gen/, one module per group, so that a code
# path loads only the messages it uses (the `start` path must not pay for the whole task API).
# Groups are listed in proto/groups.txt: "<module> <proto file> [<proto file>...]".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=src/gen
mkdir -p "$out"
stamp="$out/.stamp"
if [ -f "$stamp" ] && [ -z "$(find proto scripts/gen-proto.sh -newer "$stamp" -type f | head -n 1)" ]; then
  exit 0
fi
pbjs=node_modules/.bin/pbjs
pbts=node_modules/.bin/pbts
while read -r name files; do
  case "$name" in ''|'#'*) continue ;; esac
  # shellcheck disable=SC2086
  (cd proto && "../$pbjs" -t static-module -w es6 --force-number --no-verify --no-convert --no-delimited \
    --no-service --no-beautify -r "$name" -o "../$out/$name.js" $files)
  # protobufjs ships CommonJS; give the ESM import a resolvable specifier.
  sed -i 's#from "protobufjs/minimal"#from "protobufjs/minimal.js"#' "$out/$name.js"
  # int64 fields decode to JS numbers (pids, seconds and nanosecond timeouts fit in 2^53), never Long.
  sed -i '0,/^import \$protobuf.*$/s//&\n$protobuf.util.Long = undefined; $protobuf.configure();/' "$out/$name.js"
  "$pbts" --no-comments -o "$out/$name.d.ts" "$out/$name.js"
done < proto/groups.txt
touch "$stamp"
