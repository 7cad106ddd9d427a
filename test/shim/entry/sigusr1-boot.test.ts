// SIGUSR1 while the daemon is still loading its modules (docs/debugging.md §5): Node's default would open its
// inspector on 127.0.0.1:9229. A module hook holds the daemon at the import of serve.js, the longest part of
// its boot, so the signal lands there every time.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import { pathToFileURL } from "node:url";
import { tcpListeners } from "../../helpers/sockets.js";
import { waitFor } from "../../helpers/wait.js";
import { alive, BIN, tempDir } from "../../helpers/shim.js";

/** A resolve hook that, on the import of ../daemon/serve.js, creates `<dir>/held` and waits for `<dir>/release`. */
const HOOK = `
import { existsSync, writeFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
const dir = process.env.HOLD_DIR;
export async function resolve(specifier, context, next) {
  if (specifier === "../daemon/serve.js") {
    writeFileSync(dir + "/held", "");
    while (!existsSync(dir + "/release")) await delay(10);
  }
  return next(specifier, context);
}
`;

/** True if a TCP listener of `pid` shows up within `ms` (the inspector opens within a few ms of the signal). */
async function listenerWithin(pid: number, ms: number): Promise<boolean> {
  return waitFor(() => tcpListeners(pid).length > 0, { timeoutMs: ms, what: "a TCP listener" }).then(() => true, () => false);
}

void suite("SIGUSR1 during the daemon's boot", () => {
  void test("opens no inspector port while serve.js loads, and neither once it serves", async (t) => {
    const dir = await tempDir(t, "usr1boot-");
    writeFileSync(path.join(dir, "hook.mjs"), HOOK);
    writeFileSync(path.join(dir, "register.mjs"), `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(path.join(dir, "hook.mjs")).href)});\n`);
    const socket = path.join(dir, "s.sock");
    const child = spawn(process.execPath, ["--import", path.join(dir, "register.mjs"), BIN, "-namespace", "usr1", "-id", "boot", "-address", "/x/c.sock", "-socket", socket], {
      cwd: dir, env: { ...process.env, HOLD_DIR: dir, TTRPC_ADDRESS: "" }, stdio: "ignore",
    });
    const pid = child.pid ?? 0;
    assert.ok(pid > 0);
    t.after(() => { if (alive(pid)) process.kill(pid, "SIGKILL"); });
    await waitFor(() => existsSync(path.join(dir, "held")), { what: "the daemon to reach the import of serve.js" });
    process.kill(pid, "SIGUSR1");
    assert.equal(await listenerWithin(pid, 1000), false, `TCP listeners of ${pid}: ${tcpListeners(pid).join(", ")}`);
    assert.ok(alive(pid), "SIGUSR1 does not end the daemon");
    writeFileSync(path.join(dir, "release"), "");
    await waitFor(() => existsSync(socket), { what: "the daemon to serve" });
    process.kill(pid, "SIGUSR1");
    assert.equal(await listenerWithin(pid, 1000), false);
    assert.ok(alive(pid));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    process.kill(pid, "SIGTERM");
    await exited;
  });
});
