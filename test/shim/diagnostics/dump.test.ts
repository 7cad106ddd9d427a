// The SIGUSR1 state dump (src/shim/diagnostics/dump.ts): which lines a dump writes and what they say, from fixed snapshots.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { suite, test } from "node:test";
import { Logger, MemorySink } from "../../../src/log.js";
import { gatherDump, logDump, onDumpSignal, type DumpSources } from "../../../src/shim/diagnostics/dump.js";

function sources(): DumpSources {
  return {
    task: {
      snapshot: () => ({
        namespace: "k8s.io",
        shutdownRequested: false,
        creating: ["c3"],
        containers: [
          {
            id: "pause1", bundle: "/b/pause1", pid: 101, status: "running", terminal: false, runtime: "runc", liveExecs: 1,
            execs: [{ execId: "e1", pid: 202, status: "running", terminal: true, starting: true }],
          },
          {
            id: "app1", bundle: "/b/app1", pid: 103, status: "stopped", terminal: false, runtime: "/usr/bin/crun", liveExecs: 0,
            exitStatus: 137, exitedAt: "2025-01-02T03:04:05.000Z", sandboxId: "pause1", exitHeld: true, execs: [],
          },
        ],
      }),
    },
    sandbox: {
      snapshot: () => ({
        creating: [],
        sandboxes: [{ id: "pod9", state: "running", pid: 301, bundle: "/b/pod9", netns: "/run/netns/cni-1", startedAt: "2025-01-02T03:04:00.000Z" }],
      }),
    },
    server: {
      snapshot: () => ({
        listening: true,
        connections: [
          { id: 1, ageMs: 61_000, calls: [{ stream: 7, service: "containerd.task.v3.Task", method: "Wait", ageMs: 60_000 }] },
          { id: 4, ageMs: 10, calls: [] },
        ],
      }),
    },
    publisher: {
      snapshot: () => ({
        address: "/run/containerd/containerd.sock.ttrpc", pending: 2, topics: ["/tasks/exit", "/tasks/delete"],
        oldestMs: 1500, sending: true, connected: false, closed: false, dropped: 0,
      }),
    },
  };
}

const msgs = (sink: MemorySink) => sink.lines.map((l) => /msg="([^"]*)"/.exec(l)?.[1]);
const lineOf = (sink: MemorySink, msg: string, has = "") => (sink.lines.find((l) => l.includes(`msg="state dump: ${msg}"`) && l.includes(has)) ?? "").trimEnd();

void suite("state dump", () => {
  void test("writes one info line per container, exec, sandbox, connection, call and the event queue", () => {
    const sink = new MemorySink();
    const n = logDump(new Logger(sink, "info", { runtime: "io.containerd.ts.v2", id: "pause1" }), gatherDump(sources()), 3);
    assert.deepEqual(msgs(sink), [
      "state dump: begin", "state dump: container", "state dump: exec", "state dump: container", "state dump: container",
      "state dump: sandbox", "state dump: connection", "state dump: call", "state dump: connection", "state dump: events", "state dump: end",
    ]);
    assert.equal(n, sink.lines.length);
    for (const l of sink.lines) assert.match(l, /level=info .* runtime=io\.containerd\.ts\.v2 id=pause1 dump=3/);
    assert.match(lineOf(sink, "begin"), new RegExp(`pid=${process.pid} uptime_s=\\d+ rss_mib=\\d+ heap_mib=\\d+ containers=2 execs=1 sandboxes=1 connections=2 calls=1 events_pending=2 resources=`));
    assert.match(lineOf(sink, "container", "pause1"), / container=pause1 bundle=\/b\/pause1 status=running pid=101 oci_runtime=runc execs=1 live_execs=1$/);
    assert.match(lineOf(sink, "container", "app1"),
      / container=app1 bundle=\/b\/app1 status=stopped pid=103 exit_status=137 exited_at=2025-01-02T03:04:05\.000Z sandbox=pause1 oci_runtime=\/usr\/bin\/crun execs=0 live_execs=0 exit_held=true$/);
    assert.match(lineOf(sink, "container", "c3"), / container=c3 status=creating$/);
    assert.match(lineOf(sink, "exec"), / container=pause1 exec=e1 status=running pid=202 terminal=true starting=true$/);
    assert.match(lineOf(sink, "sandbox"), / sandbox=pod9 state=running pid=301 bundle=\/b\/pod9 netns=\/run\/netns\/cni-1$/);
    assert.match(lineOf(sink, "connection", "conn=1"), / conn=1 age_s=61 calls=1$/);
    assert.match(lineOf(sink, "call"), / conn=1 stream=7 method=containerd\.task\.v3\.Task\/Wait age_ms=60000$/);
    assert.match(lineOf(sink, "events"),
      / address=\/run\/containerd\/containerd\.sock\.ttrpc pending=2 topics="\[\\"\/tasks\/exit\\",\\"\/tasks\/delete\\"\]" oldest_ms=1500 sending=true connected=false dropped=0$/);
    assert.match(lineOf(sink, "end"), / lines=11$/);
  });

  void test("is written on each SIGUSR1 with a rising dump number, and not after the listener is removed", () => {
    const sink = new MemorySink();
    const proc = new EventEmitter();
    const off = onDumpSignal(new Logger(sink), sources, proc);
    assert.equal(proc.listenerCount("SIGUSR1"), 1);
    proc.emit("SIGUSR1");
    proc.emit("SIGUSR1");
    assert.equal(sink.lines.filter((l) => l.includes('msg="state dump: begin" dump=1')).length, 1);
    assert.equal(sink.lines.filter((l) => l.includes('msg="state dump: end" dump=2')).length, 1);
    off();
    assert.equal(proc.listenerCount("SIGUSR1"), 0);
  });

  void test("says so while the daemon is still starting, and logs an error instead of throwing", () => {
    const sink = new MemorySink();
    const proc = new EventEmitter();
    let src: DumpSources | undefined;
    onDumpSignal(new Logger(sink), () => src, proc);
    proc.emit("SIGUSR1");
    assert.match(sink.lines[0] ?? "", /level=info msg="state dump: daemon still starting" dump=1/);
    src = { ...sources(), task: { snapshot: () => { throw new Error("boom"); } } };
    proc.emit("SIGUSR1");
    assert.match(sink.lines[1] ?? "", /level=error msg="state dump failed" dump=2 error=boom/);
  });

  void test("shows an empty events address (no TTRPC_ADDRESS: events are dropped)", () => {
    const sink = new MemorySink();
    const src = sources();
    const ev = { address: "", pending: 0, topics: [], oldestMs: 0, sending: false, connected: false, closed: false, dropped: 4 };
    logDump(new Logger(sink), gatherDump({ ...src, publisher: { snapshot: () => ev } }));
    assert.match(lineOf(sink, "events"), / address="" pending=0 sending=false connected=false dropped=4$/);
  });

  void test("shows a namespace daemon's linger, and how long it has held nothing while it lingers", () => {
    const at = (linger: { lingerMs: number; idleMs?: number }) => {
      const sink = new MemorySink();
      logDump(new Logger(sink), gatherDump({ ...sources(), linger: { snapshot: () => linger } }));
      return lineOf(sink, "begin");
    };
    assert.match(at({ lingerMs: 3000, idleMs: 1200 }), / events_pending=2 linger_ms=3000 lingering_ms=1200 resources=/);
    assert.match(at({ lingerMs: 3000 }), / events_pending=2 linger_ms=3000 resources=/, "serving pods: not lingering");
    assert.match(at({ lingerMs: 0 }), / events_pending=2 resources=/, "no linger (pod grouping): nothing shown");
  });

  void test("gathers every part's snapshot and the process's own figures", () => {
    const d = gatherDump(sources());
    assert.equal(d.pid, process.pid);
    assert.ok(d.rssBytes > 0 && d.heapUsedBytes > 0 && d.uptimeMs >= 0);
    assert.equal(d.task.containers.length, 2);
    assert.equal(d.sandbox.sandboxes[0]?.id, "pod9");
    assert.equal(d.ttrpc.connections.length, 2);
    assert.equal(d.events.pending, 2);
    assert.ok(Object.values(d.resources).every((n) => Number.isInteger(n) && n > 0));
  });
});
