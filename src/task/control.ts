/**
 * Pause, Resume, Update and Pids: runc commands on a created or running container, with the init's
 * status changes and the events around them. The service (service.ts) finds the container and calls these.
 */
import { containerd } from "../gen/task.js";
import type { Container } from "./container.js";

/** `runc pause`: the init is "pausing" while it runs, "paused" after; publishes /tasks/paused. */
export async function pauseTask(c: Container, signal: AbortSignal): Promise<void> {
  c.init.transition("pausing", "pause");
  try {
    await c.runc.pause(c.id, { logFile: c.logFile, signal });
  } catch (err) {
    if (c.init.status === "pausing") c.init.status = "running";
    throw err;
  }
  if (c.init.status === "pausing") c.init.status = "paused";
  c.env.events.paused(c.id);
}

/** `runc resume` of a paused container; publishes /tasks/resumed. */
export async function resumeTask(c: Container, signal: AbortSignal): Promise<void> {
  c.init.require(["paused"], "resume");
  await c.runc.resume(c.id, { logFile: c.logFile, signal });
  if (c.init.status === "paused") c.init.status = "running";
  c.env.events.resumed(c.id);
}

/** `runc update` with the request's resources (OCI LinuxResources as JSON). */
export async function updateTask(c: Container, resources: Uint8Array | undefined, signal: AbortSignal): Promise<void> {
  c.init.require(["created", "running", "pausing", "paused"], "update");
  const json = Buffer.from(resources ?? new Uint8Array()).toString("utf8");
  await c.runc.update(c.id, JSON.parse(json || "{}") as object, { logFile: c.logFile, signal });
}

/** `runc ps`: the container's pids, an exec's carrying its exec id as runc's ProcessDetails. */
export async function taskPids(c: Container, signal: AbortSignal): Promise<containerd.v1.types.ProcessInfo.$Properties[]> {
  const pids = await c.runc.ps(c.id, { logFile: c.logFile, signal });
  const byPid = new Map<number, string>();
  for (const e of c.execs.values()) if (e.pid > 0) byPid.set(e.pid, e.execId);
  return pids.map((pid) => {
    const execId = byPid.get(pid);
    if (execId === undefined) return { pid };
    const value = containerd.runc.v1.ProcessDetails.encode({ execId }).finish();
    return { pid, info: { typeUrl: "containerd.runc.v1.ProcessDetails", value } };
  });
}
