// NODE_EXTRA_CA_CERTS in containerd's environment: the shim's Node processes start without it (no CA
// bundle parsed, no warning on stderr for a missing file), and what the shim runs still gets it.
import assert from "node:assert/strict";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import { containerd, google } from "../../../src/gen/task.js";
import { SOCKET_DIR_ENV } from "../../../src/shim/socket/address.js";
import { nodeBootEnv, restoreNodeEnv, SAVED_CA_ENV } from "../../../src/shim/packaging/nodeenv.js";
import { Client } from "../../../src/ttrpc/index.js";
import { waitFor } from "../../helpers/wait.js";
import { alive, daemonsFor, requireRoot, runShim, tempDir } from "../../helpers/shim.js";

const T = containerd.task.v2;
const MISSING = "/nonexistent/extra-ca.pem";

void suite("NODE_EXTRA_CA_CERTS", () => {
  void test("nodeBootEnv moves it aside and restoreNodeEnv puts it back, leaving other variables alone", () => {
    const boot = nodeBootEnv({ PATH: "/bin", NODE_EXTRA_CA_CERTS: "/ca.pem" });
    assert.deepEqual(boot, { PATH: "/bin", [SAVED_CA_ENV]: "/ca.pem" });
    restoreNodeEnv(boot);
    assert.deepEqual(boot, { PATH: "/bin", NODE_EXTRA_CA_CERTS: "/ca.pem" });
    assert.deepEqual(nodeBootEnv({ PATH: "/bin" }), { PATH: "/bin" });
    const set = { NODE_EXTRA_CA_CERTS: "/mine.pem", [SAVED_CA_ENV]: "/old.pem" };
    restoreNodeEnv(set);
    assert.deepEqual(set, { NODE_EXTRA_CA_CERTS: "/mine.pem" }, "a value set by hand wins");
  });

  void test("start answers with the bare address and an empty stderr when it names a missing file; the daemon starts without it", async (t) => {
    requireRoot("the start path");
    const root = await tempDir(t, "shim-ca-");
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: MISSING, [SOCKET_DIR_ENV]: path.join(root, "s"), TTRPC_ADDRESS: path.join(root, "t") };
    const r = await runShim(["-namespace", "t", "-address", path.join(root, "c.sock"), "-publish-binary", "/bin/true", "-id", "ca", "start"], { cwd: root, env });
    const text = r.stdout.toString("utf8");
    const sock = text.slice("unix://".length);
    t.after(async () => {
      for (const pid of daemonsFor(sock)) process.kill(pid, "SIGKILL");
      await waitFor(() => daemonsFor(sock).length === 0, { what: "the daemon to exit" });
    });
    assert.equal(r.stderr, "", "Node's 'Ignoring extra certs' warning would reach containerd with the address");
    assert.equal(r.code, 0);
    assert.match(text, /^unix:\/\/\/\S+$/);

    const client = await Client.connect(sock);
    t.after(() => client.close());
    const { shimPid } = await client.callTyped("containerd.task.v2.Task", "Connect", T.ConnectRequest, { id: "ca" }, T.ConnectResponse, { timeoutMs: 5000 });
    const environ = readFileSync(`/proc/${shimPid}/environ`, "utf8").split("\0");
    assert.equal(environ.some((e) => e.startsWith("NODE_EXTRA_CA_CERTS=")), false, "the daemon's Node started without it");
    assert.ok(environ.includes(`${SAVED_CA_ENV}=${MISSING}`), "kept aside for what the daemon runs");
    await client.callTyped("containerd.task.v2.Task", "Shutdown", T.ShutdownRequest, { id: "ca" }, google.protobuf.Empty, { timeoutMs: 5000 });
    await waitFor(() => !alive(shimPid), { what: "the daemon to exit after Shutdown" });
  });

  void test("what the shim runs sees it unchanged (the OCI runtime asked for its features by -info)", async (t) => {
    const root = await tempDir(t, "shim-ca-");
    const seen = path.join(root, "env");
    const runc = path.join(root, "fake-runc");
    writeFileSync(runc, `#!/bin/sh\nenv > '${seen}'\necho '{"ociVersionMin":"1.0.0","ociVersionMax":"1.1.0"}'\n`);
    chmodSync(runc, 0o755);
    const opts = containerd.runc.v1.Options.encode({ binaryName: runc }).finish();
    const any = google.protobuf.Any.encode({ typeUrl: "containerd.runc.v1.Options", value: opts }).finish();
    const r = await runShim(["-info"], { cwd: root, env: { ...process.env, NODE_EXTRA_CA_CERTS: MISSING }, stdin: any });
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0);
    const lines = readFileSync(seen, "utf8").split("\n");
    assert.ok(lines.includes(`NODE_EXTRA_CA_CERTS=${MISSING}`), "the runtime gets containerd's value back");
    assert.equal(lines.some((l) => l.startsWith(`${SAVED_CA_ENV}=`)), false, "and not our stash");
  });
});
