// A runc that hangs while a sandbox is stopped: StopSandbox fails at the caller's deadline, the hung runc is
// killed with it (not left running), and the shim goes on serving the sandbox. runc comes from PATH for the
// sandbox service, so the test puts test/fixtures/fault-runc first on the shim's PATH as `runc`.
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { before, test } from "node:test";
import { waitFor } from "../helpers/wait.js";
import { alive, tempDir } from "../helpers/shim.js";
import { createAndStart, requireSandboxPrereqs, S, startShim } from "./harness.js";

const FAULT_RUNC = fileURLToPath(new URL("../../../test/fixtures/fault-runc", import.meta.url));

function realRunc(): string {
  for (const p of ["/usr/sbin/runc", "/usr/bin/runc"]) if (existsSync(p)) return p;
  throw new Error("runc not found in /usr/sbin or /usr/bin");
}

before(requireSandboxPrereqs);

void test("StopSandbox with a hanging runc kill fails at its deadline and the hung runc is killed", async (t) => {
  const bin = await tempDir(t, "faultbin-");
  symlinkSync(FAULT_RUNC, path.join(bin, "runc"));
  const shim = await startShim(t, { env: { PATH: `${bin}:${process.env["PATH"] ?? ""}`, FAULT_RUNC_REAL: realRunc() } });
  const pid = await createAndStart(shim);
  writeFileSync(path.join(bin, "hang-kill"), "");
  await assert.rejects(
    shim.sandbox("StopSandbox", S.StopSandboxRequest, { sandboxId: shim.id, timeoutSecs: 0 }, S.StopSandboxResponse, 1500),
    /deadline/i,
  );
  const hung = Number(readFileSync(path.join(bin, "kill-hung"), "utf8"));
  assert.ok(hung > 0, "the hung runc kill ran");
  await waitFor(() => !alive(hung), { timeoutMs: 5000, what: `the hung runc kill (pid ${hung}) to be killed` });
  assert.ok(alive(pid), "the pause process still runs: the stop never got to it");
  const st = await shim.sandbox("SandboxStatus", S.SandboxStatusRequest, { sandboxId: shim.id }, S.SandboxStatusResponse);
  assert.equal(st.state, "SANDBOX_READY", "the shim still serves the sandbox");
  rmSync(path.join(bin, "hang-kill"));
  await shim.sandbox("StopSandbox", S.StopSandboxRequest, { sandboxId: shim.id, timeoutSecs: 0 }, S.StopSandboxResponse);
  await waitFor(() => !alive(pid), { timeoutMs: 10_000, what: "the pause process to stop" });
});
