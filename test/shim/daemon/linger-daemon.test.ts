// The real `start` and daemon with namespace grouping (root: start binds under the socket dir and spawns):
// after its last pod the daemon serves on for `linger_ms` (SHIM_TS_LINGER_MS here), a new pod's `start` joins
// it, and with nothing to serve it exits as before, its socket removed. No containerd: the test speaks ttrpc
// to the daemon as containerd would (Connect, Shutdown).
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { suite, test, type TestContext } from "node:test";
import { containerd, google } from "../../../src/gen/task.js";
import { SOCKET_DIR_ENV } from "../../../src/shim/socket/address.js";
import { Client } from "../../../src/ttrpc/index.js";
import { waitFor } from "../../helpers/wait.js";
import { alive, daemonsFor, requireRoot, runShim, tempDir } from "../../helpers/shim.js";

const T = containerd.task.v2;

async function setup(t: TestContext, extra: NodeJS.ProcessEnv) {
  requireRoot("the start path");
  const root = await tempDir(t, "shim-linger-");
  const sockets = new Set<string>();
  t.after(async () => {
    for (const s of sockets) for (const pid of daemonsFor(s)) process.kill(pid, "SIGKILL");
    await waitFor(() => [...sockets].every((s) => daemonsFor(s).length === 0), { what: "daemons to exit", timeoutMs: 10_000 });
  });
  const env: NodeJS.ProcessEnv = { ...process.env, [SOCKET_DIR_ENV]: path.join(root, "s"), TTRPC_ADDRESS: path.join(root, "c.sock.ttrpc"), ...extra };
  for (const k of ["SHIM_TS_CONFIG", "SHIM_TS_DAEMON_LINGER_MS"]) delete env[k];
  const start = async (id: string): Promise<string> => {
    const bundle = path.join(root, "bundles", id);
    mkdirSync(bundle, { recursive: true });
    const r = await runShim(["-namespace", "t", "-address", path.join(root, "c.sock"), "-publish-binary", "/bin/true", "-id", id, "start"], { cwd: bundle, env });
    const text = r.stdout.toString("utf8");
    assert.equal(r.code, 0, r.stderr);
    assert.match(text, /^unix:\/\//);
    sockets.add(text.slice("unix://".length));
    return text.slice("unix://".length);
  };
  return { start };
}

/** The pid of the daemon answering on `sock` (containerd's Connect), or an error if none answers. */
async function connectPid(sock: string): Promise<number> {
  const client = await Client.connect(sock);
  try {
    return (await client.callTyped("containerd.task.v2.Task", "Connect", T.ConnectRequest, { id: "x" }, T.ConnectResponse, { timeoutMs: 5000 })).shimPid;
  } finally {
    client.close();
  }
}

/** Shutdown for `id`, as containerd sends it after the id's Delete; the answer must come. */
async function shutdown(sock: string, id: string): Promise<void> {
  const client = await Client.connect(sock);
  try {
    await client.callTyped("containerd.task.v2.Task", "Shutdown", T.ShutdownRequest, { id }, google.protobuf.Empty, { timeoutMs: 5000 });
  } finally {
    client.close();
  }
}

const gone = (pid: number, sock: string) => !alive(pid) && !existsSync(sock);

void suite("namespace daemon linger", () => {
  void test("serves on after its last pod, a new pod's start joins it, and it exits after the linger with its socket", async (t) => {
    const LINGER = 4000;
    const { start } = await setup(t, { SHIM_TS_GROUPING: "namespace", SHIM_TS_LINGER_MS: String(LINGER) });
    const sock = await start("a1");
    const pid = await connectPid(sock);
    assert.ok(readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`SHIM_TS_DAEMON_LINGER_MS=${LINGER}`), "start handed the linger over");
    await shutdown(sock, "a1");
    assert.equal(await connectPid(sock), pid, "still serving after its last pod's Shutdown");
    assert.equal(await start("b1"), sock, "one address for the namespace");
    assert.equal(await connectPid(sock), pid, "the new pod joined the lingering daemon: no new boot");
    assert.deepEqual(daemonsFor(sock), [pid]);
    await shutdown(sock, "b1");
    const t1 = Date.now();
    assert.equal(await connectPid(sock), pid, "lingering again after the second pod");
    await waitFor(() => gone(pid, sock), { timeoutMs: LINGER + 10_000, what: "the daemon to exit after the linger and remove its socket" });
    const ms = Date.now() - t1;
    t.diagnostic(`exited ${ms} ms after the last Shutdown (linger ${LINGER} ms)`);
    assert.ok(ms >= LINGER - 250, `exited after ${ms} ms, before the linger of ${LINGER} ms ran out`);
  });

  void test("SIGTERM while it lingers ends it at once, socket removed", async (t) => {
    const { start } = await setup(t, { SHIM_TS_GROUPING: "namespace", SHIM_TS_LINGER_MS: "600000" });
    const sock = await start("a1");
    const pid = await connectPid(sock);
    await shutdown(sock, "a1");
    assert.equal(await connectPid(sock), pid, "lingering");
    process.kill(pid, "SIGTERM");
    await waitFor(() => gone(pid, sock), { timeoutMs: 5000, what: "the lingering daemon to exit on SIGTERM" });
  });

  void test("linger 0 with namespace grouping, and pod grouping whatever the linger, exit with the last pod", async (t) => {
    for (const [what, env] of [
      ["namespace, SHIM_TS_LINGER_MS=0", { SHIM_TS_GROUPING: "namespace", SHIM_TS_LINGER_MS: "0" }],
      ["pod, SHIM_TS_LINGER_MS=600000", { SHIM_TS_GROUPING: "pod", SHIM_TS_LINGER_MS: "600000" }],
    ] as const) {
      const { start } = await setup(t, env);
      const sock = await start("a1");
      const pid = await connectPid(sock);
      assert.ok(!readFileSync(`/proc/${pid}/environ`, "utf8").includes("SHIM_TS_DAEMON_LINGER_MS="), `${what}: no linger handed over`);
      await shutdown(sock, "a1");
      await waitFor(() => gone(pid, sock), { timeoutMs: 5000, what: `${what}: the daemon to exit with its last pod` });
    }
  });

  // The race the linger adds: a start lands as the timer fires. Each start must print an address that a daemon
  // serves and keeps serving until that pod's Shutdown: joined to the lingering daemon, or a new one if the old
  // one had decided to leave. The first delay only aims the starts (whose Join comes about as long after their
  // launch as the previous start took) at the end of the linger, from before it to after it; the second lets the
  // old linger run out before the check that the daemon which took the pod still serves it (a span asserted on,
  // not a wait for something to happen).
  void test("starts aimed at the end of the linger get a daemon that serves them, old or new", async (t) => {
    const LINGER = 800;
    const { start } = await setup(t, { SHIM_TS_GROUPING: "namespace", SHIM_TS_LINGER_MS: String(LINGER) });
    let sock = await start("p0");
    let pid = await connectPid(sock);
    let startMs = 150;
    let joined = 0;
    for (let k = 1; k <= 12; k++) {
      await shutdown(sock, `p${k - 1}`);
      const lingerEnd = Date.now() + LINGER;
      await delay(Math.max(0, LINGER - startMs + ((k % 6) - 3) * 60)); // 180 ms before the end to 120 ms after it
      const t0 = Date.now();
      sock = await start(`p${k}`);
      startMs = Date.now() - t0;
      const now = await connectPid(sock);
      assert.ok(alive(now), `p${k}: the daemon that answered is alive`);
      if (now === pid) joined++;
      else assert.ok(!alive(pid) || daemonsFor(sock).every((d) => d === now), `p${k}: a new daemon while the old one still serves`);
      pid = now;
      await delay(Math.max(0, lingerEnd + 200 - Date.now()));
      assert.equal(await connectPid(sock), pid, `p${k}: the daemon that took the pod still serves it after the old linger's end`);
    }
    t.diagnostic(`12 starts near the end of a ${LINGER} ms linger: ${joined} joined the lingering daemon, ${12 - joined} found it gone or leaving`);
    await shutdown(sock, "p12");
    await waitFor(() => gone(pid, sock), { timeoutMs: LINGER + 10_000, what: "the last daemon to exit after its linger" });
  });
});
