// A container that outgrows its memory limit is OOM-killed: exit 137, and /tasks/oom is published before
// its /tasks/exit (CRI marks the container OOMKilled from that order).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readlinkSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { BUSYBOX_REF, assertNoLeftovers, ctrOk, describe, perVersion, runArgs } from "../helpers/ctr.js";
import type { Containerd } from "../helpers/containerd.js";
import { waitFor } from "../helpers/wait.js";

/** `ctr events` running in the background; `lines` grows as events arrive. */
interface EventStream { lines: string[]; proc: ChildProcess }

function startEvents(c: Containerd): EventStream {
  if (c.pid === undefined) throw new Error(`containerd ${c.version} is not running`);
  const ctr = path.join(path.dirname(readlinkSync(`/proc/${c.pid}/exe`)), "ctr");
  const proc = spawn(ctr, ["--address", c.address, "events"], { stdio: ["ignore", "pipe", "inherit"] });
  const s: EventStream = { lines: [], proc };
  let rest = "";
  proc.stdout?.setEncoding("utf8").on("data", (d: string) => {
    const parts = (rest + d).split("\n");
    rest = parts.pop() ?? "";
    s.lines.push(...parts);
  });
  return s;
}

/** Kills `ctr events` and waits for it to exit (its command line names containerd's directory). */
async function stopEvents(s: EventStream): Promise<void> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  const exited = new Promise((resolve) => s.proc.once("exit", resolve));
  s.proc.kill("SIGKILL");
  await exited;
}

/** Waits until the stream is subscribed: creates marker containers until one's /containers/create shows. */
async function eventsReady(c: Containerd, s: EventStream): Promise<void> {
  let n = 0;
  const made: string[] = [];
  try {
    await waitFor(async () => {
      const id = `oom-marker-${n++}`;
      await ctrOk(c, ["container", "create", BUSYBOX_REF, id]);
      made.push(id);
      return waitFor(() => s.lines.some((l) => l.includes("/containers/create") && l.includes(`"${id}"`)),
        { timeoutMs: 1_000, what: "marker event" }).then(() => true, () => false);
    }, { timeoutMs: 20_000, intervalMs: 1, what: "ctr events to subscribe" });
  } finally {
    for (const id of made) await c.ctr(["container", "delete", id]);
  }
}

/** Index of the first event line with `topic` for container `id`. */
function indexOf(lines: string[], topic: string, id: string): number {
  return lines.findIndex((l) => l.includes(` ${topic} `) && l.includes(`"container_id":"${id}"`));
}

perVersion("OOM kill", (get) => {
  void test("exits 137 with /tasks/oom published before /tasks/exit", async () => {
    if (process.getuid?.() !== 0) throw new Error("the OOM e2e test needs root (cgroup memory limits)");
    const c = get();
    const events = startEvents(c);
    try {
      await eventsReady(c, events);
      const args = runArgs("oom1", ["sh", "-c", "x=a; while true; do x=$x$x; done"]);
      args.splice(args.indexOf("--rm") + 1, 0, "--memory-limit", String(16 * 1024 * 1024));
      const r = await c.ctr(args, { timeoutMs: 60_000 });
      assert.equal(r.code, 137, describe(c, "ctr run (OOM)", r));
      await waitFor(() => indexOf(events.lines, "/tasks/exit", "oom1") >= 0,
        { timeoutMs: 10_000, what: "/tasks/exit of oom1 in ctr events" });
      const oom = indexOf(events.lines, "/tasks/oom", "oom1");
      const exit = indexOf(events.lines, "/tasks/exit", "oom1");
      const seen = events.lines.filter((l) => l.includes("oom1")).join("\n");
      assert.ok(oom >= 0, `no /tasks/oom for oom1; events:\n${seen}\n${c.logTail(20)}`);
      assert.ok(oom < exit, `/tasks/oom after /tasks/exit; events:\n${seen}`);
    } finally {
      await stopEvents(events);
    }
    await assertNoLeftovers(c, "oom1");
  });
});
