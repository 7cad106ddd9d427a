// prepareIO (src/task/io.ts): what is released when runc fails after it has set up a process's stdio.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { prepareIO } from "../../src/task/io.js";
import { deadline, exited, fdCount, requireProgram, until } from "../stdio/helpers.js";

// What runc does with --console-socket: make a pty, send its master, close its own copies.
const SEND_MASTER = `
import os, pty, socket, sys
m, s = pty.openpty()
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sys.argv[1])
socket.send_fds(c, [b"/dev/ptmx"], [m])
c.close(); os.close(m); os.close(s)
`;

test("abort() after runc sent the pty master closes the master (runc failed after the console was set up)", async (t) => {
  requireProgram("python3");
  const before = fdCount();
  const io = await prepareIO({ stdin: "", stdout: "", stderr: "", terminal: true }, { id: "c1", ns: "default" });
  assert.ok(io.consoleSocket !== undefined);
  const child = spawn("python3", ["-c", SEND_MASTER, io.consoleSocket], { stdio: "ignore" });
  t.after(() => child.kill("SIGKILL"));
  assert.equal(await deadline(exited(child), "the stand-in for runc to exit"), 0);
  // The master arrived here (one fd more than before, the console socket itself gone).
  await until(() => fdCount() === before + 1, `the master to arrive (fds ${fdCount()}, before ${before})`);
  io.abort();
  await until(() => fdCount() === before, `fd count back to ${before} (now ${fdCount()})`);
});

test("abort() before runc connected releases the console socket", async () => {
  const before = fdCount();
  const io = await prepareIO({ stdin: "", stdout: "", stderr: "", terminal: true }, { id: "c1", ns: "default" });
  io.abort();
  await until(() => fdCount() === before, `fd count back to ${before} (now ${fdCount()})`);
});
