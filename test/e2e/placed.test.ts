// The files an operator puts on containerd's PATH keep working wherever they are put (issue 18 item 3): the
// launcher bin/containerd-shim-ts-v2 (written by `npm run build`) and the two single executables of `npm run
// package`, release/containerd-shim-ts-v2 (Bun, the default engine) and release/node/containerd-shim-ts-v2 (Node), each copied,
// hard-linked and symlinked into a temp dir (containerd's client tests start a copy of the shim from such a
// dir; runtime_path may name one). Each answers -v (naming its engine), then runs a container through
// `ctr run --rm --runtime <absolute path of the placed file>`, which containerd 1.6, 1.7 and 2.1 all take as
// the shim binary itself.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { after, before, suite, test } from "node:test";
import { SHIM_BINARY, VERSIONS, ctrBinary, runCapture, startContainerd, type Containerd } from "../helpers/containerd.js";
import { BUSYBOX_REF, REPO_ROOT } from "../helpers/image.js";
import { PLACEMENTS, linkableTempDir, place, type Placement } from "../helpers/placed.js";

const FILES = {
  // The launcher runs the lane's engine: SHIM_TS_RUNTIME, unset for the default (Bun).
  launcher: { file: SHIM_BINARY, build: "npm run build", engine: process.env.SHIM_TS_RUNTIME === "node" ? "node" : "bun" },
  "Bun single executable": { file: path.join(REPO_ROOT, "release", "containerd-shim-ts-v2"), build: "npm run package", engine: "bun" },
  "Node single executable": { file: path.join(REPO_ROOT, "release", "node", "containerd-shim-ts-v2"), build: "npm run package", engine: "node" },
} as const;
type Kind = keyof typeof FILES;
const KINDS = Object.keys(FILES) as Kind[];
const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;

void suite("the shim's files copied, hard-linked and symlinked elsewhere", { timeout: 900_000 }, () => {
  const placed = new Map<Kind, Record<Placement, string>>();
  const dirs: string[] = [];
  const at = (kind: Kind, how: Placement): string =>
    placed.get(kind)?.[how] ?? assert.fail(`${kind} was not placed (see the suite's before hook)`);

  before(async () => {
    for (const kind of KINDS) {
      const { file, build } = FILES[kind];
      assert.ok(existsSync(file), `${file} is missing: run ${build}`);
      const dir = await linkableTempDir(file);
      dirs.push(dir);
      placed.set(kind, await place(file, dir));
    }
  });
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  for (const kind of KINDS) {
    for (const how of PLACEMENTS) {
      void test(`${kind}, ${how}: -v`, async () => {
        const file = at(kind, how);
        const r = await runCapture(file, ["-v"], { env: process.env, cwd: path.dirname(file), timeoutMs: 30_000 });
        assert.equal(r.stderr, "", `${file} -v`);
        assert.equal(r.code, 0, `${file} -v`);
        assert.match(r.stdout, new RegExp(`^containerd-shim-ts-v2 ${VERSION.replace(/\./g, "\\.")}\n${FILES[kind].engine === "bun" ? "bun 1\\." : "node v"}`));
      });
    }
  }

  for (const v of VERSIONS) {
    void suite(`containerd ${v}: ctr run --rm --runtime <absolute path>`, () => {
      let c: Containerd | undefined;
      const get = (): Containerd => c ?? assert.fail(`containerd ${v} did not start`);
      before(async () => {
        c = await startContainerd(v);
      });
      after(async () => {
        await c?.stop();
      });

      let n = 0;
      for (const kind of KINDS) {
        for (const how of PLACEMENTS) {
          const id = `placed-${n++}`;
          void test(`${kind}, ${how}: the container's output and exit status`, async () => {
            const file = at(kind, how);
            const r = await get().ctr(["run", "--rm", "--runtime", file, BUSYBOX_REF, id, "sh", "-c", "echo hi from $0; exit 3", id]);
            const what = `ctr run --runtime ${file}: exit ${r.code ?? r.signal}\nstderr: ${r.stderr}\n--- log ---\n${get().logTail(15)}`;
            assert.equal(r.stdout, `hi from ${id}\n`, what);
            assert.equal(r.code, 3, what);
          });
        }
        // A terminal: the console socket's fd comes back through the fd watch (on Bun, a Worker that the
        // single executable carries inline, having no poll-worker.js beside it).
        const id = `placed-tty-${n++}`;
        void test(`${kind}, copy: ctr run -t, the container's output on its terminal and its exit status`, async () => {
          const file = at(kind, "copy");
          const line = [ctrBinary(v), "--address", get().address, "-n", get().namespace, "run", "-t", "--rm", "--runtime", file,
            BUSYBOX_REF, id, "sh", "-c", "'echo tty-ok; exit 4'"].join(" ");
          const r = await runCapture("script", ["-qefc", line, "/dev/null"], { env: process.env, timeoutMs: 60_000 });
          const what = `${line}: exit ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\n--- log ---\n${get().logTail(15)}`;
          assert.match(r.stdout, /tty-ok\r*\n/, what);
          assert.equal(r.code, 4, what);
        });
      }
    });
  }
});
