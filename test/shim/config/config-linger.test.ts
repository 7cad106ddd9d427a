// `linger_ms` (issue 19): how long a namespace daemon serves on after its last pod. The key, its override
// SHIM_TS_LINGER_MS, its bounds, and what `start` hands the daemon it spawns.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import {
  DAEMON_LINGER_ENV, daemonLingerMs, DEFAULT_LINGER_MS, effectiveLingerMs, LINGER_ENV, loadShimConfig, MAX_LINGER_MS, resolveShimConfig,
} from "../../../src/shim/config/config.js";
import { loadStartConfig, START_CONFIG_NAMES } from "../../../src/shim/manager/start.js";
import { tempDir } from "../../helpers/shim.js";
import { refused } from "./refused.js";

void suite("linger_ms", () => {
  void test("is read from the file, 0 included, and SHIM_TS_LINGER_MS wins over it", async (t) => {
    const dir = await tempDir(t, "shim-linger-");
    const p = path.join(dir, "c.toml");
    writeFileSync(p, 'grouping = "namespace"\nlinger_ms = 5000\n');
    assert.equal(loadShimConfig(p, {}).lingerMs, 5000);
    assert.equal(loadShimConfig(p, { [LINGER_ENV]: "0" }).lingerMs, 0);
    assert.equal(loadShimConfig(p, { [LINGER_ENV]: "" }).lingerMs, 5000, "an empty override counts as unset");
    writeFileSync(p, "linger_ms = 0\n");
    assert.equal(loadShimConfig(p, {}).lingerMs, 0);
    assert.equal(resolveShimConfig({ [LINGER_ENV]: "1500" }).lingerMs, 1500, "the override without a file");
  });

  void test("refuses a value that is not a whole number of milliseconds from 0 to the maximum, naming file, key and line", async (t) => {
    const dir = await tempDir(t, "shim-linger-");
    const p = path.join(dir, "c.toml");
    const load = (text: string) => () => { writeFileSync(p, text); return loadShimConfig(p, {}); };
    const why = `is not an integer from 0 to ${MAX_LINGER_MS} (milliseconds; 0: exit with the last pod)`;
    refused(load("\nlinger_ms = -1\n"), `${p}: key "linger_ms" (line 2): -1 ${why}`);
    refused(load('linger_ms = "3s"'), `${p}: key "linger_ms" (line 1): "3s" ${why}`);
    refused(load("linger_ms = true"), `${p}: key "linger_ms" (line 1): true ${why}`);
    refused(load(`linger_ms = ${MAX_LINGER_MS + 1}`), `${p}: key "linger_ms" (line 1): ${MAX_LINGER_MS + 1} ${why}`);
    assert.equal(load(`linger_ms = ${MAX_LINGER_MS}`)().lingerMs, MAX_LINGER_MS);
    refused(() => loadShimConfig(p, { [LINGER_ENV]: "3s" }), `${LINGER_ENV}: "3s" ${why}`);
    refused(() => loadShimConfig(p, { [LINGER_ENV]: "-5" }), `${LINGER_ENV}: "-5" ${why}`);
    refused(() => loadShimConfig(p, { [LINGER_ENV]: "1.5" }), `${LINGER_ENV}: "1.5" ${why}`);
  });

  void test("applies to namespace grouping only, with a brief default", () => {
    assert.ok(DEFAULT_LINGER_MS >= 2000 && DEFAULT_LINGER_MS <= 5000, `default ${DEFAULT_LINGER_MS}`);
    assert.equal(effectiveLingerMs({ grouping: "namespace", runtimeOptions: {} }), DEFAULT_LINGER_MS);
    assert.equal(effectiveLingerMs({ grouping: "namespace", lingerMs: 0, runtimeOptions: {} }), 0);
    assert.equal(effectiveLingerMs({ grouping: "namespace", lingerMs: 700, runtimeOptions: {} }), 700);
    assert.equal(effectiveLingerMs({ grouping: "pod", lingerMs: 700, runtimeOptions: {} }), 0, "pod grouping is unchanged");
    assert.equal(effectiveLingerMs({ grouping: "pod", runtimeOptions: {} }), 0);
  });

  void test("the daemon takes the linger start handed over, and none when it is absent or unusable", () => {
    assert.equal(START_CONFIG_NAMES.daemonLingerEnv, DAEMON_LINGER_ENV);
    assert.equal(daemonLingerMs({ [DAEMON_LINGER_ENV]: "2500" }), 2500);
    for (const v of [undefined, "", "0", "-1", "x", "1.5", String(MAX_LINGER_MS + 1)]) {
      assert.equal(daemonLingerMs(v === undefined ? {} : { [DAEMON_LINGER_ENV]: v }), 0, String(v));
    }
    assert.equal(daemonLingerMs({ [LINGER_ENV]: "2500" }), 0, "the user's override goes through start's config, not straight to the daemon");
  });

  void test("SHIM_TS_LINGER_MS alone makes start read the config", async (t) => {
    const dir = await tempDir(t, "shim-linger-");
    const none = path.join(dir, "none.toml");
    assert.equal((await loadStartConfig({ [LINGER_ENV]: "100" }, undefined, none)).config.lingerMs, 100);
    assert.match((await loadStartConfig({ [LINGER_ENV]: "x" }, undefined, none)).error ?? "", /SHIM_TS_LINGER_MS: "x" is not an integer/);
  });
});
