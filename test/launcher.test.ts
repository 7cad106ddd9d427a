// The launcher bin/containerd-shim-ts-v2, written by `npm run build` (scripts/launcher.mjs) with the checkout's
// absolute root in it: a copy, hard link or symlink anywhere runs the checkout it sits in (by its real path),
// else the one it was built in; with neither built it prints one line naming the file to install instead.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, suite, test } from "node:test";
import { REPO_ROOT } from "./helpers/image.js";
import { PLACEMENTS, linkableTempDir, place } from "./helpers/placed.js";

const NAME = "containerd-shim-ts-v2";
const LAUNCHER = path.join(REPO_ROOT, "bin", NAME);
const GENERATOR = path.join(REPO_ROOT, "scripts", "launcher.mjs");
const BUN = path.join(REPO_ROOT, "node_modules", "@oven", "bun-linux-x64", "bin", "bun");

function run(file: string, args: string[], runtime?: "node" | "bun") {
  const env = { ...process.env };
  delete env.SHIM_TS_RUNTIME;
  if (runtime !== undefined) env.SHIM_TS_RUNTIME = runtime;
  const r = spawnSync(file, args, { env, encoding: "utf8", timeout: 30_000, cwd: tmpdir() });
  return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", error: r.error };
}

function generate(root: string, out: string): void {
  const r = spawnSync(process.execPath, [GENERATOR, "--root", root, "--out", out], { encoding: "utf8" });
  assert.equal(r.status, 0, `${GENERATOR}: ${r.stderr}`);
}

function assertVersion(file: string, runtime: "node" | "bun" = "node"): void {
  const r = run(file, ["-v"], runtime);
  assert.equal(r.code, 0, `${file} -v on ${runtime}: ${r.stderr}${r.error?.message ?? ""}`);
  assert.match(r.stdout, new RegExp(`^${NAME} \\d+\\.\\d+\\.\\d+\n${runtime} v?\\d+\\.`), file);
}

/** Exit 1, nothing on stdout, and exactly one line on stderr naming both files to use instead. */
function assertOneLine(file: string, root: string, runtime: "node" | "bun" = "node"): void {
  const r = run(file, ["-v"], runtime);
  const what = `${file} -v on ${runtime}: ${JSON.stringify(r)}`;
  assert.equal(r.code, 1, what);
  assert.equal(r.stdout, "", what);
  assert.match(r.stderr, /^[^\n]+\n$/, what);
  assert.ok(r.stderr.startsWith(`${NAME}: no ${root}/dist/`), what);
  assert.ok(r.stderr.includes(`run ${root}/bin/${NAME} itself after "npm run build"`), what);
  assert.ok(r.stderr.includes(`install the single executable release/${NAME} instead`), what);
}

void suite("the launcher written by the build", () => {
  let tmp = "";
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), "launcher-"));
  });
  after(async () => {
    if (tmp !== "") await rm(tmp, { recursive: true, force: true });
  });

  void test("the checkout's launcher, copied, hard-linked and symlinked elsewhere, runs this checkout on Node and Bun", async () => {
    assert.ok(existsSync(LAUNCHER), `${LAUNCHER} is missing: run npm run build`);
    const dir = await linkableTempDir(LAUNCHER, "launcher-");
    try {
      const placed = await place(LAUNCHER, dir);
      for (const how of PLACEMENTS) assertVersion(placed[how]);
      assert.ok(existsSync(BUN), `${BUN} is missing: run npm install (optional dependency @oven/bun-linux-x64)`);
      for (const how of PLACEMENTS) assertVersion(placed[how], "bun");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void test("built with a root that has no dist: each copy, hard link and symlink prints one line and exits 1", async () => {
    const fake = path.join(tmp, "gone");
    const built = path.join(tmp, "built", NAME);
    generate(fake, built);
    const placed = await place(built, path.join(tmp, "placed"));
    for (const file of [built, ...PLACEMENTS.map((how) => placed[how])]) {
      assertOneLine(file, fake);
      assertOneLine(file, fake, "bun");
    }
  });

  void test("a checkout that moved: a symlink to its launcher runs it; a copy names the root it was built in", async () => {
    // <moved>/bin/<NAME> built for a root that no longer exists; <moved>/dist and node_modules are this checkout's.
    const moved = path.join(tmp, "moved");
    const old = path.join(tmp, "old-place");
    await mkdir(moved);
    await symlink(path.join(REPO_ROOT, "dist"), path.join(moved, "dist"));
    await symlink(path.join(REPO_ROOT, "node_modules"), path.join(moved, "node_modules"));
    generate(old, path.join(moved, "bin", NAME));
    const placed = await place(path.join(moved, "bin", NAME), path.join(tmp, "elsewhere"));
    assertVersion(path.join(moved, "bin", NAME));
    assertVersion(placed.symlink);
    assertVersion(placed.symlink, "bun");
    assertOneLine(placed.copy, old);
    assertOneLine(placed["hard link"], old);
  });

  void test("SHIM_TS_RUNTIME other than node or bun is refused in one line", () => {
    const r = run(LAUNCHER, ["-v"], "deno" as "node");
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `${NAME}: SHIM_TS_RUNTIME must be node or bun, not "deno"\n`);
  });
});
