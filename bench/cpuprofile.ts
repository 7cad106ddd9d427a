// Summarizes Node CPU profiles (.cpuprofile from --cpu-prof) of the shim's processes: each profile is classed
// as `start`, `daemon` or `delete` by the shim module it ran, and its samples' self time is summed per bucket
// (our modules by directory, dependencies by package, Node's internals by area, GC, idle), median per class.
//   node dist/bench/cpuprofile.js DIR [--top 12] [--functions 15] [--min-wall MS]
// --min-wall: only profiles that ran at least MS ms (e.g. the daemons of the long runs of a throughput test).
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { arg, fmt, quantile, table } from "./lib.js";

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith(".cpuprofile") ? [p] : [];
  });
}

/** The bucket of a call frame's URL. */
export function bucket(url: string, fn: string): string {
  if (url === "") return fn === "(garbage collector)" ? "GC" : fn === "(idle)" ? "idle" : fn === "(program)" ? "(program): V8/Node native" : `(${fn || "native"})`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `dependency ${nm[1]}`;
  const ours = /\/dist\/(src\/[^/]+|test|bench)\//.exec(url);
  if (ours) return `ours ${ours[1]}`;
  if (/\/bin\/containerd-shim-ts-v2$/.test(url)) return "ours bin/ launcher";
  if (url.startsWith("node:internal/modules/esm") || url.startsWith("node:internal/modules/run_main")) return "Node ESM loader";
  if (url.startsWith("node:internal/modules")) return "Node module loading (other)";
  if (url.startsWith("node:internal/bootstrap") || url.startsWith("node:internal/main")) return "Node bootstrap";
  if (url.startsWith("node:")) return `Node ${url.slice(5).split("/").slice(0, 2).join("/")}`;
  return url;
}

function kind(p: Profile): string {
  const urls = p.nodes.map((n) => n.callFrame.url);
  if (urls.some((u) => u.endsWith("/shim/daemon/serve.js"))) return "daemon";
  if (urls.some((u) => u.endsWith("/shim/manager/start.js"))) return "start";
  if (urls.some((u) => u.endsWith("/shim/manager/delete.js"))) return "delete";
  return "other";
}

/** Self ms per bucket and per function ("name url:line"), and the profile's wall ms. */
function summarize(p: Profile): { wall: number; buckets: Map<string, number>; fns: Map<string, number> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const buckets = new Map<string, number>();
  const fns = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!)!;
    const ms = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const b = bucket(n.callFrame.url, n.callFrame.functionName);
    buckets.set(b, (buckets.get(b) ?? 0) + ms);
    const f = `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/^.*\/dist\//, "dist/").replace(/^.*node_modules\//, "")}:${n.callFrame.lineNumber + 1}`;
    fns.set(f, (fns.get(f) ?? 0) + ms);
  }
  return { wall: (p.endTime - p.startTime) / 1000, buckets, fns };
}

function main(): void {
  const dir = process.argv[2];
  if (!dir) throw new Error("usage: node dist/bench/cpuprofile.js DIR");
  const top = Number(arg("top", "12"));
  const nf = Number(arg("functions", "15"));
  const minWall = Number(arg("min-wall", "0"));
  const byKind = new Map<string, ReturnType<typeof summarize>[]>();
  for (const f of files(dir)) {
    const p = JSON.parse(readFileSync(f, "utf8")) as Profile;
    const k = kind(p);
    const sum = summarize(p);
    if (sum.wall >= minWall) byKind.set(k, [...(byKind.get(k) ?? []), sum]);
  }
  for (const [k, list] of byKind) {
    const med = (xs: number[]): number => quantile(xs, 0.5);
    const names = new Set(list.flatMap((s) => [...s.buckets.keys()]));
    const rows = [...names].map((b) => [b, med(list.map((s) => s.buckets.get(b) ?? 0))] as const)
      .sort((a, b) => b[1] - a[1]).slice(0, top).map(([b, ms]) => [b, fmt(ms, 1)]);
    process.stdout.write(`\n### ${k}: ${list.length} profiles, median profiled wall ${fmt(med(list.map((s) => s.wall)), 1)} ms\n\n` +
      table(["bucket (self time)", "median ms"], rows));
    const fnames = new Set(list.flatMap((s) => [...s.fns.keys()]));
    const frows = [...fnames].map((f) => [f, med(list.map((s) => s.fns.get(f) ?? 0))] as const)
      .filter(([f]) => !/^\((idle|program|garbage collector)\)/.test(f))
      .sort((a, b) => b[1] - a[1]).slice(0, nf).map(([f, ms]) => [`\`${f}\``, fmt(ms, 1)]);
    process.stdout.write("\n" + table(["function (self time)", "median ms"], frows));
  }
}

main();
