// ctr-level helpers for e2e tests: argument builders, task status polling, exit codes, per-version suites.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, suite } from "node:test";
import {
  BUSYBOX_REF, RUNTIME, VERSIONS, containerProcesses, mountsUnder, processesUnder, shimSocketPath, startContainerd, zombiesOf,
  type Containerd, type ContainerdOptions, type ContainerdVersion, type CtrResult,
} from "./containerd.js";
import { waitFor } from "./wait.js";

export { BUSYBOX_REF, RUNTIME };

/** `ctr run` arguments for the runtime under test: `run --runtime R [--rm] [-d] <image> <id> <cmd...>`. */
export function runArgs(id: string, cmd: string[], o: { rm?: boolean; detach?: boolean; image?: string } = {}): string[] {
  return ["run", "--runtime", RUNTIME, ...((o.rm ?? !o.detach) ? ["--rm"] : []), ...(o.detach ? ["-d"] : []),
    o.image ?? BUSYBOX_REF, id, ...cmd];
}

/** Describes a ctr result for assertion messages, with the containerd log tail (where shim logs land). */
export function describe(c: Containerd, what: string, r: CtrResult): string {
  return `${what}: exit ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\n--- containerd ${c.version} log tail ---\n${c.logTail(25)}`;
}

/** Asserts a zero exit of `ctr ...args`. */
export async function ctrOk(c: Containerd, args: string[]): Promise<CtrResult> {
  const r = await c.ctr(args);
  assert.equal(r.code, 0, describe(c, `ctr ${args.join(" ")}`, r));
  return r;
}

/** Task status from `ctr task ls` (RUNNING, STOPPED, CREATED, PAUSED...) or undefined when not listed. */
export async function taskStatus(c: Containerd, id: string): Promise<string | undefined> {
  const r = await c.ctr(["task", "ls"]);
  if (r.code !== 0) throw new Error(describe(c, "ctr task ls", r));
  for (const line of r.stdout.split("\n").slice(1)) {
    const [tid, , status] = line.trim().split(/\s+/);
    if (tid === id) return status;
  }
  return undefined;
}

/** Polls `ctr task ls` until task `id` has `status`. */
export async function waitStatus(c: Containerd, id: string, status: string, timeoutMs = 15_000): Promise<void> {
  let last: string | undefined;
  try {
    await waitFor(async () => (last = await taskStatus(c, id)) === status,
      { timeoutMs, intervalMs: 50, what: `task ${id} to be ${status}` });
  } catch (err) {
    throw new Error(`${(err as Error).message} (last status ${last ?? "not listed"})\n${c.logTail(25)}`);
  }
}

/** `ctr task delete id`; returns the exit status ctr reports ("exit with non-zero exit code N", else 0). */
export async function deleteTask(c: Containerd, id: string): Promise<number> {
  const r = await c.ctr(["task", "delete", id]);
  assert.equal(r.code, 0, describe(c, `ctr task delete ${id}`, r));
  const m = /exit code (\d+)/.exec(r.stderr + r.stdout);
  return m ? Number(m[1]) : 0;
}

/** Asserts that nothing of container `id` is left: shim/container processes, mounts, socket, bundle, zombies. */
export async function assertNoLeftovers(c: Containerd, id: string): Promise<void> {
  const bundle = path.join(c.state, "io.containerd.runtime.v2.task", c.namespace, id);
  const socket = shimSocketPath(c, c.namespace, id);
  try {
    await waitFor(() => processesUnder(c.dir, [c.pid]).length === 0 && containerProcesses(c.namespace, id).length === 0 && !existsSync(bundle) && !existsSync(socket) &&
      mountsUnder(c.state).length === 0 && zombiesOf([process.pid, c.pid ?? -1]).length === 0,
    { timeoutMs: 10_000, what: `cleanup of ${id}` });
  } catch (err) {
    const detail = {
      processes: processesUnder(c.dir, [c.pid]), container: containerProcesses(c.namespace, id), bundleExists: existsSync(bundle), socket: existsSync(socket) ? socket : null,
      mounts: mountsUnder(c.state), zombies: zombiesOf([process.pid, c.pid ?? -1]),
    };
    throw new Error(`${(err as Error).message}: ${JSON.stringify(detail)}\n${c.logTail(25)}`);
  }
}

/**
 * Declares one suite per containerd version under test (E2E_VERSIONS), each with its own private containerd
 * started before and stopped after the suite. `body` receives a getter for that containerd.
 */
export function perVersion(name: string, body: (get: () => Containerd, v: ContainerdVersion) => void,
  opts: ContainerdOptions = {}): void {
  for (const v of VERSIONS) {
    void suite(`${name} (containerd ${v}, ${RUNTIME})`, { timeout: 240_000 }, () => {
      let c: Containerd | undefined;
      before(async () => { c = await startContainerd(v, opts); });
      after(async () => { await c?.stop(); });
      body(() => {
        if (!c) throw new Error(`containerd ${v} did not start`);
        return c;
      }, v);
    });
  }
}
