/**
 * `start`'s use of the warm spare (src/shim/spare/protocol.ts; `warm = true` in the shim config, pod
 * grouping only): hand the new pod to the spare of this containerd address and namespace, and spawn the
 * next spare in the background. A spare that is gone, hung, busy or of another build costs the pod at most
 * {@link ADOPT_DEADLINE_MS} (plus the wait for a killed spare to go): `start` then spawns a daemon as usual.
 */
import type { Logger } from "../../log.js";
import { spareArgs, type Flags } from "../invocation/flags.js";
import { nodeBootEnv } from "../packaging/nodeenv.js";
import { PACKAGED } from "../packaging/packaged.js";
import { WARM_IDLE_ENV } from "../config/config.js";
import { adopt, ADOPT_DEADLINE_MS, buildId, killSpare, SPARE_NODE_FLAGS_ENV, spareSocketPath, type AdoptRequest } from "../spare/protocol.js";
import { spawnDaemon } from "./spawn.js";

/** What `start` knows when it would spawn a daemon for a pod. */
export interface WarmContext {
  flags: Flags;
  bundle: string;
  /** The pod's socket path. */
  socket: string;
  socketDir: string;
  debug: boolean;
  logLevel?: string;
  ttrpcAddress?: string;
  nodeFlags: string[];
  log: Logger;
  deadlineMs?: number;
}

/** This build's id (the spare computes its own the same way). */
export function currentBuild(): string {
  return buildId(PACKAGED !== undefined ? process.execPath : undefined);
}

/**
 * Asks the spare to adopt the pod. Returns its pid (now the pod's daemon, listening on `ctx.socket`), "live"
 * (another daemon serves the pod's socket already: join it), or undefined (spawn a daemon). A spare that did
 * not answer in time is killed first, so that nothing else holds the pod's socket.
 */
export async function adoptSpare(ctx: WarmContext): Promise<number | "live" | undefined> {
  const spare = spareSocketPath(ctx.flags.address, ctx.flags.namespace, ctx.socketDir);
  const req: AdoptRequest = {
    build: currentBuild(), id: ctx.flags.id, bundle: ctx.bundle, socket: ctx.socket, debug: ctx.debug,
    nodeFlags: ctx.nodeFlags,
    ...(ctx.logLevel !== undefined ? { logLevel: ctx.logLevel } : {}),
    ...(ctx.ttrpcAddress ? { ttrpcAddress: ctx.ttrpcAddress } : {}),
  };
  const t0 = Date.now();
  const answer = await adopt(spare, req, ctx.deadlineMs ?? ADOPT_DEADLINE_MS);
  if (answer.ok) {
    ctx.log.debug("adopted the warm spare", { pid: answer.pid, ms: Date.now() - t0 });
    return answer.pid;
  }
  if (answer.reason === "live") return "live";
  if (answer.reason === "deadline" || answer.reason === "closed" || answer.reason === "bad answer") {
    const killed = await killSpare(spare);
    ctx.log.warn("the warm spare did not answer, spawning a daemon", { reason: answer.reason, killed, ms: Date.now() - t0 });
  } else {
    ctx.log.debug("cannot use a warm spare, spawning a daemon", { reason: answer.reason, ms: Date.now() - t0 });
  }
  return undefined;
}

/**
 * Spawns the next spare (detached, no stdio, cwd /) for this containerd address and namespace. If one is
 * there already, the new one finds its socket taken and exits. Never throws.
 */
export async function spawnSpare(ctx: WarmContext, env: NodeJS.ProcessEnv, idleMs?: number): Promise<number | undefined> {
  const spare = spareSocketPath(ctx.flags.address, ctx.flags.namespace, ctx.socketDir);
  const spareEnv = nodeBootEnv(env);
  spareEnv[SPARE_NODE_FLAGS_ENV] = JSON.stringify(ctx.nodeFlags);
  if (idleMs !== undefined) spareEnv[WARM_IDLE_ENV] = String(idleMs); // config.ts is loaded already: warm is on
  if (ctx.ttrpcAddress) spareEnv["TTRPC_ADDRESS"] = ctx.ttrpcAddress;
  try {
    return await spawnDaemon(spareArgs(ctx.flags, spare, ctx.bundle, ctx.debug), "/", undefined, spareEnv, ctx.nodeFlags);
  } catch (err) {
    ctx.log.warn("cannot spawn a warm spare", { error: err });
    return undefined;
  }
}
