// Who may talk to the shim: a container started through ctr, then a ttrpc client running as nobody
// (setpriv 65534:65534) asks its shim for Connect. Through the socket containerd uses, the filesystem
// refuses it (EACCES: socket 0600 in a root-only directory). Through a hard link to the same socket with
// every permission opened up, the daemon's SO_PEERCRED check is the only guard: the connection is closed
// unanswered and the refusal is logged with the peer's uid and pid. Root gets answers both ways, and the
// container keeps running.
import assert from "node:assert/strict";
import { chmodSync, existsSync, linkSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { containerd as tsk } from "../../src/gen/task.js";
import { runCapture, type Containerd } from "../helpers/containerd.js";
import { ctrOk, deleteTask, perVersion, runArgs, taskStatus } from "../helpers/ctr.js";
import { waitFor } from "../helpers/wait.js";

const NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"];
/** dist/src/ttrpc/index.js, which the probe imports (it must be readable by nobody). */
const CLIENT_URL = new URL("../../src/ttrpc/index.js", import.meta.url).href;

/**
 * The probe: connects with our ttrpc Client and calls Task.Connect once. Prints one JSON line:
 * connect-failed (with errno), closed (the connection ended without an answer), reply, or error.
 */
const PROBE = `
const [url, sock, hex] = process.argv.slice(1);
const { Client } = await import(url);
let out;
try {
  const c = await Client.connect(sock);
  try {
    const r = await c.call("containerd.task.v2.Task", "Connect", Buffer.from(hex, "hex"), { timeoutMs: 5000 });
    out = { outcome: "reply", bytes: r.length, hex: Buffer.from(r).toString("hex") };
  } catch (e) {
    out = { outcome: c.closed ? "closed" : "error", code: e.code, message: e.message };
  }
  c.close();
} catch (e) {
  out = { outcome: "connect-failed", errno: e.cause?.code, message: e.message };
}
process.stdout.write(JSON.stringify(out));
`;

interface Probe { outcome: string; errno?: string; code?: string; message?: string; hex?: string }

async function probe(sock: string, id: string, asNobody: boolean): Promise<Probe> {
  const hex = Buffer.from(tsk.task.v2.ConnectRequest.encode({ id }).finish()).toString("hex");
  const node = [process.execPath, "--input-type=module", "-e", PROBE, CLIENT_URL, sock, hex];
  const r = asNobody ? await runCapture("setpriv", [...NOBODY, ...node], { timeoutMs: 15_000 })
    : await runCapture(node[0]!, node.slice(1), { timeoutMs: 15_000 });
  try {
    return JSON.parse(r.stdout) as Probe;
  } catch {
    throw new Error(`probe (${asNobody ? "nobody" : "root"}) printed no result: exit ${r.code ?? r.signal}, stdout ${r.stdout}, stderr ${r.stderr}`);
  }
}

function shimSocket(c: Containerd, id: string): string {
  const address = readFileSync(path.join(c.state, "io.containerd.runtime.v2.task", c.namespace, id, "address"), "utf8");
  assert.match(address, /^unix:\/\//, "the shim printed a path socket address (never an abstract one)");
  return address.slice("unix://".length);
}

perVersion("access", (get) => {
  void test("a client of another uid gets no answer: EACCES through the socket's path, closed unanswered when opened up", async (t) => {
    const c = get();
    const id = "access1";
    await ctrOk(c, runArgs(id, ["sleep", "1000"], { detach: true }));
    t.after(async () => {
      await c.ctr(["task", "kill", "-s", "KILL", id]);
      await waitFor(async () => (await taskStatus(c, id)) === "STOPPED", { timeoutMs: 15_000, what: `${id} to stop` });
      await deleteTask(c, id);
      await c.ctr(["container", "rm", id]);
    });
    const sock = shimSocket(c, id);
    assert.equal(statSync(sock).mode & 0o777, 0o600, "socket mode");
    assert.equal(statSync(path.dirname(sock)).mode & 0o077, 0, `socket directory ${path.dirname(sock)} is for its owner only`);

    // Root (the shim's own uid and gid) is served; the answer carries the container's pid.
    const root = await probe(sock, id, false);
    assert.equal(root.outcome, "reply", JSON.stringify(root));
    const pid = tsk.task.v2.ConnectResponse.decode(Buffer.from(root.hex!, "hex")).taskPid;
    assert.ok(pid > 0, `task pid ${pid}`);

    // Default permissions: nobody cannot even connect.
    const denied = await probe(sock, id, true);
    assert.deepEqual({ outcome: denied.outcome, errno: denied.errno }, { outcome: "connect-failed", errno: "EACCES" }, JSON.stringify(denied));

    // Opened up: a hard link to the same socket in a world-accessible directory, mode 0777 (the socket
    // inode is shared, so the original is 0777 too until the test puts it back; its directory stays 0700).
    const open = mkdtempSync(path.join(path.dirname(c.dir), "access-"));
    chmodSync(open, 0o755);
    const link = path.join(open, "shim.sock");
    linkSync(sock, link);
    chmodSync(link, 0o777);
    const restore = (): void => {
      rmSync(open, { recursive: true, force: true });
      if (existsSync(sock)) chmodSync(sock, 0o600);
    };
    t.after(restore); // also when an assertion below fails
    const refused = await probe(link, id, true);
    assert.equal(refused.outcome, "closed", `nobody got past the open socket: ${JSON.stringify(refused)}`);
    await waitFor(async () => /refusing connection from another user.*peer_uid=65534 peer_gid=65534 peer_pid=\d+/.test(await c.logs()),
      { timeoutMs: 5000, what: "the shim's warn line about the refused peer in containerd's log" });
    const again = await probe(link, id, false);
    assert.equal(again.outcome, "reply", `root through the link: ${JSON.stringify(again)}`);
    restore();
    assert.equal(statSync(sock).mode & 0o777, 0o600);
    assert.equal(await taskStatus(c, id), "RUNNING");
  });
});
