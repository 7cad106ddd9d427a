// `ctr task metrics` decodes our StatsResponse Any (type URL and field numbers) for a running container,
// and Stats keeps answering after the init exited, until Delete.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertNoLeftovers, ctrOk, deleteTask, describe, perVersion, runArgs, waitStatus } from "../helpers/ctr.js";
import type { Containerd } from "../helpers/containerd.js";

const LIMIT = 64 * 1024 * 1024;

/** `ctr task metrics --format json`: the decoded Metrics message as JSON (snake_case field names). */
async function metricsJson(c: Containerd, id: string): Promise<Record<string, unknown>> {
  const r = await ctrOk(c, ["task", "metrics", "--format", "json", id]);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

function get(o: unknown, ...keys: string[]): unknown {
  let v = o;
  for (const k of keys) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

perVersion("ctr task metrics", (getC) => {
  void test("prints memory and pids numbers of a running container", async () => {
    const c = getC();
    const args = runArgs("m1", ["sh", "-c", "sleep 1000 & sleep 1000"], { detach: true });
    args.splice(args.indexOf("-d") + 1, 0, "--memory-limit", String(LIMIT));
    await ctrOk(c, args);
    await waitStatus(c, "m1", "RUNNING");
    const table = await ctrOk(c, ["task", "metrics", "m1"]);
    const row = (name: string) => new RegExp(`^${name.replace(/\./g, "\\.")}\\s+(\\S+)`, "m").exec(table.stdout)?.[1];
    const v1 = row("memory.usage_in_bytes") !== undefined;
    const usage = Number(v1 ? row("memory.usage_in_bytes") : row("memory.usage"));
    const limit = Number(v1 ? row("memory.limit_in_bytes") : row("memory.usage_limit"));
    assert.ok(usage > 0, describe(c, "ctr task metrics (memory usage)", table));
    assert.equal(limit, LIMIT, describe(c, "ctr task metrics (memory limit)", table));
    assert.ok(Number(row("pids.current")) >= 2, describe(c, "ctr task metrics (pids.current)", table));
    const data = await metricsJson(c, "m1");
    if (v1) {
      assert.equal(get(data, "memory", "usage", "limit"), LIMIT, JSON.stringify(data));
      assert.ok(Number(get(data, "cpu", "usage", "total")) > 0, JSON.stringify(data));
      assert.ok(Number(get(data, "memory", "total_rss")) > 0, JSON.stringify(data));
    } else {
      assert.equal(get(data, "memory", "usage_limit"), LIMIT, JSON.stringify(data));
    }
  });

  void test("still answers after the init exited, until delete", async () => {
    const c = getC();
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "m1"]);
    await waitStatus(c, "m1", "STOPPED");
    const r = await c.ctr(["task", "metrics", "m1"]);
    assert.equal(r.code, 0, describe(c, "ctr task metrics after exit", r));
    assert.match(r.stdout, /memory\./, describe(c, "ctr task metrics after exit", r));
    assert.equal(await deleteTask(c, "m1"), 137);
    await ctrOk(c, ["container", "delete", "m1"]);
    await assertNoLeftovers(c, "m1");
  });
});
