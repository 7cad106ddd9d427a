import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { constants as fsc, closeSync, openSync, readSync, writeSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import { makeBundle, useService } from "./harness.js";

interface Waited { exitStatus: number }

const PROCESS_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const spec = (args: string[]) => ({ typeUrl: PROCESS_URL, value: Buffer.from(JSON.stringify({ args, cwd: "/", env: ["PATH=/bin"], user: { uid: 0, gid: 0 } })) });

void suite("Exec processes with real runc", () => {
  const ctx = useService();

  async function running(id: string) {
    const b = makeBundle(ctx.root.dir, id, ["sleep", "100000"]);
    await ctx.h.call("Create", "CreateTaskRequest", "CreateTaskResponse", { id, bundle: b.bundle, stdout: b.stdout });
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id });
    return b;
  }

  async function stop(id: string) {
    await ctx.h.call("Kill", "KillRequest", null, { id, signal: 9 });
    await ctx.h.call("Wait", "WaitRequest", "WaitResponse", { id });
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id });
  }

  // ctr sends CloseIO as soon as its stdin hits EOF, which can be before Start has run the exec.
  void test("applies a CloseIO sent before Start, so stdin still ends with EOF", async () => {
    const b = await running("x1");
    const [stdin, stdout] = [path.join(b.bundle, "e1-in"), path.join(b.bundle, "e1-out")];
    execFileSync("mkfifo", [stdin, stdout]);
    const out = openSync(stdout, fsc.O_RDONLY | fsc.O_NONBLOCK);
    await ctx.h.call("Exec", "ExecProcessRequest", null, { id: "x1", execId: "e1", stdin, stdout, spec: spec(["cat"]) });
    await ctx.h.call("CloseIO", "CloseIORequest", null, { id: "x1", execId: "e1", stdin: true });
    const waited = ctx.h.call<Waited>("Wait", "WaitRequest", "WaitResponse", { id: "x1", execId: "e1" });
    // The client's writer (O_RDWR opens a FIFO at once); it closes after Start, as ctr's does at EOF.
    const w = openSync(stdin, fsc.O_RDWR | fsc.O_NONBLOCK);
    writeSync(w, "hello\n");
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id: "x1", execId: "e1" });
    closeSync(w);
    assert.equal((await waited).exitStatus, 0);
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "x1", execId: "e1" });
    const buf = Buffer.alloc(100);
    assert.equal(buf.subarray(0, readSync(out, buf, 0, 100, null)).toString(), "hello\n");
    closeSync(out);
    await stop("x1");
  });

  void test("refuses duplicate ids, unknown execs and execs into a stopped task with the right codes", async () => {
    await running("x2");
    await ctx.h.call("Exec", "ExecProcessRequest", null, { id: "x2", execId: "d", spec: spec(["true"]) });
    await assert.rejects(ctx.h.call("Exec", "ExecProcessRequest", null, { id: "x2", execId: "d", spec: spec(["true"]) }),
      { code: "AlreadyExists", message: /already exists/ });
    await assert.rejects(ctx.h.call("Kill", "KillRequest", null, { id: "x2", execId: "d", signal: 9 }), { code: "FailedPrecondition" });
    await assert.rejects(ctx.h.call("Start", "StartRequest", "StartResponse", { id: "x2", execId: "nope" }), { code: "NotFound" });
    await ctx.h.call("ResizePty", "ResizePtyRequest", null, { id: "x2", execId: "d", width: 80, height: 24 });
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "x2", execId: "d" });
    await ctx.h.call("Kill", "KillRequest", null, { id: "x2", signal: 9 });
    await ctx.h.call("Wait", "WaitRequest", "WaitResponse", { id: "x2" });
    await assert.rejects(ctx.h.call("Exec", "ExecProcessRequest", null, { id: "x2", execId: "late", spec: spec(["true"]) }),
      { code: "FailedPrecondition" });
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "x2" });
  });
});
