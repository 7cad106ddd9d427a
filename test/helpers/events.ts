// containerd events for fault tests: a `ctr events` subscriber that parses what it prints, a way to hold the
// shims' event deliveries back across a containerd restart until a subscriber is listening, and a direct
// ttrpc client for a shim's Task service (to ask a shim while containerd is down).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { containerd } from "../../src/gen/task.js";
import { Client } from "../../src/ttrpc/index.js";
import type { Containerd } from "./containerd.js";
import { REPO_ROOT } from "./image.js";
import { waitFor } from "./wait.js";

const SUITES = { "1.6": "bookworm", "1.7": "trixie", "2.1": "sid" } as const;

/** The `ctr` binary of containerd `c`'s version. */
export function ctrBinary(c: Containerd): string {
  return path.join(REPO_ROOT, ".deps", "containerd", SUITES[c.version], "usr", "bin", "ctr");
}

/** One event as `ctr events` prints it: namespace, topic and the event's JSON fields. */
export interface SeenEvent { ns: string; topic: string; body: Record<string, unknown> }

export interface EventWatch {
  /** Events seen so far, in order. */
  all(): SeenEvent[];
  /** `/tasks/exit` events of container `id` (exec id `execId`, default the init). */
  exits(id: string, execId?: string): SeenEvent[];
  /** Events of container `id` (field container_id, or id for the container topics) with this topic. */
  of(id: string, topic: string): SeenEvent[];
  stop(): void;
}

/**
 * Runs `ctr events` against `c` until stop(); resolves once it is subscribed (a marker event, the creation
 * of a throwaway namespace, came through), so no event published after this resolves is missed.
 */
export async function watchEvents(c: Containerd): Promise<EventWatch> {
  const p = spawn(ctrBinary(c), ["--address", c.address, "events"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  p.stdout.setEncoding("utf8").on("data", (d: string) => { out += d; });
  p.stderr.setEncoding("utf8").on("data", (d: string) => { err += d; });
  const all = (): SeenEvent[] => out.split("\n").flatMap((line) => {
    // "<date> <time> +0000 UTC <namespace> <topic> <json>"
    const m = / (\S+) (\/[a-z-]+(?:\/[a-z-]+)*) (\{.*)$/.exec(line);
    if (!m) return [];
    let body: Record<string, unknown> = {};
    try { body = JSON.parse(m[3]!) as Record<string, unknown>; } catch { /* not JSON */ }
    return [{ ns: m[1]!, topic: m[2]!, body }];
  });
  const w: EventWatch = {
    all,
    exits: (id, execId = id) => all().filter((e) => e.topic === "/tasks/exit" && e.body["container_id"] === id && (e.body["id"] ?? id) === execId),
    of: (id, topic) => all().filter((e) => e.topic === topic && (e.body["container_id"] ?? e.body["id"]) === id),
    stop: () => { p.kill("SIGKILL"); },
  };
  const marker = `evmark-${randomBytes(4).toString("hex")}`;
  try {
    await waitFor(async () => {
      if (p.exitCode !== null) throw Object.assign(new Error(`ctr events exited: ${err}`), { fatal: true });
      const r = await c.ctr(["namespaces", "create", marker], { ns: "default" });
      if (r.code === 0) await c.ctr(["namespaces", "remove", marker], { ns: "default" });
      return all().some((e) => e.topic === "/namespaces/create" && e.body["name"] === marker);
    }, { timeoutMs: 15_000, intervalMs: 200, what: "ctr events to be subscribed" });
  } catch (e) {
    w.stop();
    throw e;
  }
  return w;
}

/**
 * Restarts containerd (already killed, or running: then SIGTERM) with its ttrpc socket at another path, so
 * that the shims, which keep the old TTRPC_ADDRESS, cannot deliver events yet. `release()` links the old
 * path to the new socket: the shims' next retry gets through. Subscribe (watchEvents) before releasing.
 */
export async function restartHoldingEvents(c: Containerd): Promise<{ release: () => void }> {
  const cfgPath = path.join(c.dir, "config.toml");
  const held = `${c.ttrpcAddress}.held`;
  const cfg = readFileSync(cfgPath, "utf8");
  const line = `  address = ${JSON.stringify(c.ttrpcAddress)}\n`;
  if (cfg.includes(line)) writeFileSync(cfgPath, cfg.replace(line, `  address = ${JSON.stringify(held)}\n`));
  else if (!cfg.includes(JSON.stringify(held))) throw new Error(`no ttrpc address line in ${cfgPath}`);
  await c.kill9();
  rmSync(c.ttrpcAddress, { force: true });
  await c.restart();
  return { release: () => symlinkSync(held, c.ttrpcAddress) };
}

const TaskApi = containerd.task.v2;
/** Task status numbers of containerd.v1.types.Status. */
export const TASK_STATUS = { 1: "CREATED", 2: "RUNNING", 3: "STOPPED", 4: "PAUSED", 5: "PAUSING" } as Record<number, string>;

/** A ttrpc client of a shim's Task service at `socket` (a path), as containerd would use it. */
export class ShimClient {
  /** Ours serves both; the Go shim of containerd 2.x only containerd.task.v3.Task, 1.x's only v2. */
  private service = "containerd.task.v2.Task";
  private constructor(private readonly client: Client) {}

  static async connect(socket: string): Promise<ShimClient> {
    return new ShimClient(await Client.connect(socket, { signal: AbortSignal.timeout(5000) }));
  }

  /** State of task `id` (exec `execId`): status name, pid, exit status. */
  async state(id: string, execId = "", timeoutMs = 5000): Promise<{ status: string; pid: number; exitStatus: number; stdout: string }> {
    const call = () => this.client.callTyped(this.service, "State", TaskApi.StateRequest, { id, execId },
      TaskApi.StateResponse, { timeoutMs, metadata: { "containerd-namespace-ttrpc": "default" } });
    let r: containerd.task.v2.StateResponse;
    try {
      r = await call();
    } catch (err) {
      if (!/service containerd\.task\.v2\.Task/.test((err as Error).message)) throw err;
      this.service = "containerd.task.v3.Task";
      r = await call();
    }
    return { status: TASK_STATUS[r.status] ?? String(r.status), pid: r.pid, exitStatus: r.exitStatus, stdout: r.stdout };
  }

  close(): void { this.client.close(); }
}
