// Where the time of one `ctr run --rm busybox id true` goes, ours vs runc-v2 on one containerd: wrappers in
// front of the shim binaries and runc (first on containerd's PATH) log each run's wall time; our daemon's
// own log lines ("shim daemon started" from `start`, "shim serving" from the daemon) give its boot time.
// Run as root after the build:
//   node dist/bench/breakdown.js [--runs 10] [--versions 2.1,1.6] [--profile DIR] [--write]
// --profile DIR: ours with Node's --cpu-prof for `start` and `delete` (the wrapper runs node with it, after moving
// NODE_EXTRA_CA_CERTS aside as the launcher does; Node 20 refuses --cpu-prof in NODE_OPTIONS) and for the daemon
// (SHIM_TS_DAEMON_NODE_FLAGS = the default --lite-mode plus --cpu-prof), 200 µs sampling, profiles written
// to DIR/<version>; summarize with `node dist/bench/cpuprofile.js DIR`.
// The wrappers cost both runtimes the same few ms of sh per call.
import { chmod, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT } from "../test/helpers/image.js";
import { OURS, RUNC, BUSYBOX_REF, arg, containerd, flag, fmt, isMain, label, quantile, record, remove, runDetached, stamp, table, timeCtr, versions,
  type Containerd } from "./lib.js";

const SUITES = { "1.6": "bookworm", "1.7": "trixie", "2.1": "sid" } as const;
const RUNC_SUBCOMMANDS = "create|start|delete|kill|state|exec|ps|pause|resume|update|events|features|checkpoint|restore";

/** A sh wrapper that runs `real` and appends "<name> <sub> <t0 ns> <t1 ns> <rc>" to `log`. */
function wrapper(name: string, real: string, log: string, runc: boolean): string {
  const sub = runc
    ? `sub=x; for a; do case "$a" in ${RUNC_SUBCOMMANDS}) sub=$a; break;; esac; done`
    : "for sub; do :; done";
  return `#!/bin/sh\n${sub}\nt0=$(date +%s%N)\n${JSON.stringify(real)} "$@"; rc=$?\n` +
    `echo "${name} $sub $t0 $(date +%s%N) $rc" >> ${JSON.stringify(log)}\nexit $rc\n`;
}

async function instrument(c: Containerd, profileDir?: string): Promise<string> {
  const log = path.join(c.dir, "calls.log");
  const bin = path.join(c.dir, "bin");
  const usrBin = path.join(REPO_ROOT, ".deps", "containerd", SUITES[c.version], "usr", "bin");
  const wrappers: [string, string, boolean][] = [
    ["containerd-shim-ts-v2", path.join(REPO_ROOT, "bin", "containerd-shim-ts-v2"), false],
    ["containerd-shim-runc-v2", path.join(usrBin, "containerd-shim-runc-v2"), false],
    ["runc", "/usr/sbin/runc", true],
  ];
  for (const [name, real, runc] of wrappers) {
    const file = path.join(bin, name);
    await rm(file, { force: true });
    let text = wrapper(name, real, log, runc);
    if (profileDir !== undefined && name === "containerd-shim-ts-v2") {
      text = text.replace(`${JSON.stringify(real)} "$@"`, "if [ -n \"${NODE_EXTRA_CA_CERTS+x}\" ]; then export SHIM_TS_EXTRA_CA_CERTS=\"$NODE_EXTRA_CA_CERTS\"; " +
        `unset NODE_EXTRA_CA_CERTS; fi; node --cpu-prof --cpu-prof-interval=200 --cpu-prof-dir=${JSON.stringify(profileDir)} ${JSON.stringify(real)} "$@"`);
    }
    await writeFile(file, text);
    await chmod(file, 0o755);
  }
  return log;
}

interface Call { who: string; sub: string; t0: number; t1: number }

function parseCalls(text: string): Call[] {
  return text.split("\n").filter(Boolean).map((l) => {
    const [who, sub, t0, t1] = l.split(" ");
    return { who: who!, sub: sub!, t0: Number(BigInt(t0!) / 1000n) / 1000, t1: Number(BigInt(t1!) / 1000n) / 1000 };
  });
}

/** ms since the epoch of the `time="…"` of the first containerd-log line with `msg` and `id=<id>`. */
function logTime(log: string, msg: string, id: string): number | undefined {
  for (const line of log.split("\n")) {
    if (!line.includes(`msg="${msg}"`) && !line.includes(`msg=\\"${msg}\\"`)) continue;
    if (!new RegExp(`\\bid=\\\\?"?${id}\\b`).test(line)) continue;
    const m = /^time=\\?"([^"\\]+)\\?"/.exec(line);
    if (m?.[1]) return Date.parse(m[1]);
  }
  return undefined;
}

export type Phases = Record<string, number>;

/** One run's phases (ms). */
function phases(calls: Call[], wall: number, shim: string, id: string, log: string, ours: boolean): Phases {
  const mine = calls;
  const sum = (who: string, sub: string): number => mine.filter((c) => c.who === who && c.sub === sub).reduce((a, c) => a + c.t1 - c.t0, 0);
  const p: Phases = {
    "ctr wall": wall,
    "shim start": sum(shim, "start"),
    "runc create": sum("runc", "create"),
    "runc start": sum("runc", "start"),
    "runc delete": sum("runc", "delete"),
    "shim delete (after the daemon exits)": sum(shim, "delete"),
  };
  if (ours) {
    const spawned = logTime(log, "shim daemon started", id);
    const serving = logTime(log, "shim serving", id);
    p["daemon spawn → serving"] = spawned !== undefined && serving !== undefined ? serving - spawned : NaN;
    const start = mine.find((c) => c.who === shim && c.sub === "start");
    const create = mine.find((c) => c.who === "runc" && c.sub === "create");
    p["start exit → runc create begins"] = start && create ? create.t0 - start.t1 : NaN;
  } else {
    const start = mine.find((c) => c.who === shim && c.sub === "start");
    const create = mine.find((c) => c.who === "runc" && c.sub === "create");
    p["start exit → runc create begins"] = start && create ? create.t0 - start.t1 : NaN;
  }
  const other = ["runc state", "runc kill"].map((k) => sum("runc", k.split(" ")[1]!)).reduce((a, b) => a + b, 0);
  p["other runc calls"] = other;
  return p;
}

export async function measureBreakdown(c: Containerd, runs: number, profileDir?: string): Promise<Map<string, Phases[]>> {
  const logFile = await instrument(c, profileDir);
  const out = new Map<string, Phases[]>([[OURS, []], [RUNC, []]]);
  for (let i = -1; i < runs; i++) {
    for (const r of [OURS, RUNC]) {
      await writeFile(logFile, "");
      const id = `bd-${r === OURS ? "ts" : "go"}-${i + 1}`;
      const wall = await timeCtr(c, ["run", "--rm", "--runtime", r, BUSYBOX_REF, id, "true"]);
      // `shim delete` runs after ctr returned: wait for its line (bounded).
      const shim = r === OURS ? "containerd-shim-ts-v2" : "containerd-shim-runc-v2";
      const t0 = Date.now();
      let calls = parseCalls(await readFile(logFile, "utf8"));
      while (!calls.some((x) => x.who === shim && x.sub === "delete") && Date.now() - t0 < 5000) {
        await new Promise((res) => setTimeout(res, 20));
        calls = parseCalls(await readFile(logFile, "utf8"));
      }
      if (i >= 0) out.get(r)!.push(phases(calls, wall, shim, id, await c.logs(), r === OURS));
    }
  }
  // `ctr task exec … true` on a running container: the runc exec inside it, and the rest.
  const ids = [OURS, RUNC].map((r) => `bd-exec-${r === OURS ? "ts" : "go"}`);
  try {
    for (const [k, r] of [OURS, RUNC].entries()) await runDetached(c, r, ids[k]!, ["sleep", "3600"]);
    for (let i = -1; i < runs; i++) {
      for (const [k, r] of [OURS, RUNC].entries()) {
        await writeFile(logFile, "");
        const wall = await timeCtr(c, ["task", "exec", "--exec-id", `e${i + 1}`, ids[k]!, "true"]);
        const calls = parseCalls(await readFile(logFile, "utf8"));
        const runcExec = calls.filter((x) => x.who === "runc" && x.sub === "exec").reduce((a, x) => a + x.t1 - x.t0, 0);
        const p = out.get(r)![i];
        if (p) Object.assign(p, { "ctr task exec wall": wall, "… runc exec": runcExec, "… the rest": wall - runcExec });
      }
    }
  } finally {
    for (const id of ids) await remove(c, id).catch(() => undefined);
  }
  return out;
}

async function main(): Promise<void> {
  const runs = Number(arg("runs", "10"));
  const profile = flag("profile") ? path.resolve(arg("profile", "")) : undefined;
  const rows: (string | number)[][] = [];
  for (const v of versions("2.1,1.6")) {
    const dir = profile === undefined ? undefined : path.join(profile, v);
    const env: Record<string, string> = dir === undefined ? {} : { SHIM_TS_DAEMON_NODE_FLAGS: `--lite-mode --cpu-prof --cpu-prof-interval=200 --cpu-prof-dir=${dir}` };
    const c = await containerd(v, env);
    try {
      const m = await measureBreakdown(c, runs, dir);
      const keys = [...new Set(m.get(OURS)!.flatMap((p) => Object.keys(p)))];
      for (const k of keys) {
        const med = (r: string): number => quantile(m.get(r)!.map((p) => p[k] ?? NaN).filter(Number.isFinite), 0.5);
        rows.push([v, k, fmt(med(OURS), 1), fmt(med(RUNC), 1)]);
      }
    } finally {
      await c.stop();
    }
  }
  record("Where the time of `ctr run --rm` goes", `\`node dist/bench/breakdown.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    `Medians over ${runs} runs per runtime, interleaved; from sh wrappers in front of the shim binaries and runc ` +
    "(their own cost included in every row) and our daemon's log times (ms resolution)." +
    (profile ? ` With --cpu-prof on ours (slower: profiles are written at exit).` : "") + "\n\n" +
    table(["containerd", "phase", `${label(OURS)} ms`, `${label(RUNC)} ms`], rows));
}

if (isMain(import.meta.url)) await main();
