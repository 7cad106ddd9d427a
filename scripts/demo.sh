#!/usr/bin/env bash
# Demo: a private containerd (2.1 by default; pass 1.6 or 1.7) runs a busybox container through
# containerd-shim-ts-v2 (runtime io.containerd.ts.v2), then everything is stopped and removed. Needs root.
#   usage: sudo scripts/demo.sh [1.6|1.7|2.1]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=${1:-2.1}
case "$version" in 1.6|1.7|2.1) ;; *) echo "usage: $0 [1.6|1.7|2.1]" >&2; exit 2 ;; esac

if [ "$(id -u)" != 0 ]; then
  echo "scripts/demo.sh: must run as root (containerd and runc need it)" >&2
  exit 1
fi
if [ ! -d "$root/.deps/containerd" ] || [ ! -d "$root/node_modules" ]; then
  echo "[demo] installing dependencies (scripts/install-deps.sh)"
  bash scripts/install-deps.sh
fi
if [ ! -f dist/src/shim/entry/main.js ] || [ ! -f dist/test/helpers/containerd.js ] ||
   [ -n "$(find src test -name '*.ts' -newer dist/test/helpers/containerd.js -print -quit)" ]; then
  echo "[demo] building"
  npm run --silent build || echo "[demo] the build reported type errors; continuing with what tsc emitted" >&2
fi
# The launcher is a build output (scripts/launcher.mjs): a dist/ built before it was one comes without it.
[ -x bin/containerd-shim-ts-v2 ] || node scripts/launcher.mjs

# The harness (test/helpers/containerd.ts) writes the config, puts the shim on containerd's PATH,
# imports the locally built busybox image and cleans up; this script only drives it.
exec node --input-type=module - "$version" <<'JS'
import { startContainerd } from "./dist/test/helpers/containerd.js";
import { BUSYBOX_REF } from "./dist/test/helpers/image.js";
const version = process.argv[2];
const runtime = process.env.E2E_RUNTIME ?? "io.containerd.ts.v2";
const c = await startContainerd(version, { runtime });
const say = (s) => console.log(`[demo] ${s}`);
let code = 1;
try {
  say(`containerd ${version} at ${c.address} (pid ${c.pid}), namespace ${c.namespace}`);
  const args = ["run", "--runtime", runtime, "--rm", BUSYBOX_REF, "demo",
    "sh", "-c", "echo hello from containerd-shim-ts-v2; uname -a"];
  say(`$ ctr ${args.map((a) => (/[\s;]/.test(a) ? `'${a}'` : a)).join(" ")}`);
  const t0 = Date.now();
  const r = await c.ctr(args);
  process.stdout.write(r.stdout);
  if (r.stderr) process.stderr.write(r.stderr);
  say(`exit status ${r.code} in ${Date.now() - t0} ms`);
  if (r.code !== 0) say(`containerd log tail:\n${c.logTail(30)}`);
  code = r.code ?? 1;
} finally {
  await c.stop();
  say("containerd stopped, temp dir removed");
}
process.exit(code);
JS
