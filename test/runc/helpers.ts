/** Shared fixtures of the runc tests: temp dirs, the fake runc, a recording registry, polling. */
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestContext } from "node:test";
import { Runc, type ChildRegistry, type RuncOptions } from "../../src/runc/index.js";

/** The repository root (works from test/ sources and from dist/test/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("Cannot find the repository root");
    dir = up;
  }
  return dir;
}

/** A temp dir removed after the test. */
export async function tmpDir(t: TestContext, prefix = "runc-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A ChildRegistry that records calls in order. */
export class RecordingRegistry implements ChildRegistry {
  readonly events: string[] = [];
  readonly owned = new Set<number>();
  constructor(private readonly onOwn?: (pid: number) => void) {}
  own(pid: number): void {
    this.events.push(`own ${pid}`);
    this.owned.add(pid);
    this.onOwn?.(pid);
  }
  disown(pid: number): void {
    this.events.push(`disown ${pid}`);
    this.owned.delete(pid);
  }
}

/** A fake runc set up in `dir`: a wrapper that exports `env` and execs test/fixtures/fake-runc. */
export interface FakeRunc {
  runc: Runc;
  binary: string;
  /** runc's `--log` file for calls made with `logFile`. */
  logFile: string;
  /** The file the fake appends each call's argv to. */
  callLog: string;
  /** Every call's argv so far. */
  calls(): Promise<string[][]>;
  /** The environment of the last call. */
  lastEnv(): Promise<Map<string, string>>;
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** Creates a fake runc whose behaviour is given by FAKE_RUNC_* variables (see the fixture). */
export async function fakeRunc(
  dir: string,
  env: Record<string, string> = {},
  opts: Partial<RuncOptions> = {},
): Promise<FakeRunc> {
  const callLog = join(dir, "calls.log");
  const envFile = join(dir, "env.txt");
  const all = { FAKE_RUNC_LOG: callLog, FAKE_RUNC_ENV: envFile, ...env };
  const lines = Object.entries(all).map(([k, v]) => `export ${k}=${quote(v)}`);
  const binary = join(dir, "runc");
  const fixture = join(repoRoot(), "test", "fixtures", "fake-runc");
  await writeFile(binary, `#!/bin/sh\n${lines.join("\n")}\nexec ${quote(fixture)} "$@"\n`);
  await chmod(binary, 0o755);
  const runc = new Runc({ binary, root: join(dir, "root"), ...opts });
  return {
    runc,
    binary,
    logFile: join(dir, "log.json"),
    callLog,
    async calls() {
      const text = await readFile(callLog, "utf8").catch(() => "");
      return text
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => l.split("\t"));
    },
    async lastEnv() {
      const text = await readFile(envFile, "utf8");
      const m = new Map<string, string>();
      for (const l of text.split("\n")) {
        const i = l.indexOf("=");
        if (i > 0) m.set(l.slice(0, i), l.slice(i + 1));
      }
      return m;
    },
  };
}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
