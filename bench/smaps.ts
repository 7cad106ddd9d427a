// Where a process's memory is: /proc/<pid>/smaps grouped by mapping (the executable, shared libraries, the
// malloc heap, anonymous mappings, which for Node are mostly the V8 heap and code), RSS, PSS and private KiB.
//   node dist/bench/smaps.js PID [PID...]      (root, or the processes' owner)
import { readFileSync } from "node:fs";
import path from "node:path";
import { fmt, isMain, table } from "./lib.js";

interface Sum { rss: number; pss: number; priv: number; n: number }

/** Groups `/proc/<pid>/smaps` by what is mapped. */
export function smapsByGroup(pid: number): Map<string, Sum> {
  const exe = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
  const out = new Map<string, Sum>();
  let group = "";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const [, perms, name] = head;
      if (name === "") group = perms!.includes("x") ? "anonymous, executable (JIT code)" : "anonymous (V8 heap, malloc arenas, stacks)";
      else if (name === "[heap]") group = "[heap] (brk malloc)";
      else if (name!.startsWith("[")) group = name!;
      else if (path.basename(name!) === path.basename(exe) || name!.endsWith("/node")) group = `executable ${path.basename(name!)}`;
      else if (/\.so/.test(name!)) group = /koffi/.test(name!) ? "koffi native addon" : `shared library ${path.basename(name!).replace(/[-.]\d.*$/, "")}`;
      else group = `file ${path.basename(name!)}`;
      const g = out.get(group) ?? { rss: 0, pss: 0, priv: 0, n: 0 };
      g.n++;
      out.set(group, g);
      continue;
    }
    const kv = /^(Rss|Pss|Private_Clean|Private_Dirty):\s+(\d+) kB/.exec(line);
    if (!kv || group === "") continue;
    const g = out.get(group)!;
    const v = Number(kv[2]);
    if (kv[1] === "Rss") g.rss += v;
    else if (kv[1] === "Pss") g.pss += v;
    else g.priv += v;
  }
  return out;
}

function main(): void {
  const pids = process.argv.slice(2).map(Number).filter((p) => p > 0);
  if (pids.length === 0) throw new Error("usage: node dist/bench/smaps.js PID [PID...]");
  for (const pid of pids) {
    const groups = [...smapsByGroup(pid)].sort((a, b) => b[1].pss - a[1].pss);
    const total = groups.reduce((a, [, g]) => ({ rss: a.rss + g.rss, pss: a.pss + g.pss, priv: a.priv + g.priv }), { rss: 0, pss: 0, priv: 0 });
    const rows = groups.filter(([, g]) => g.rss > 0).slice(0, 14).map(([name, g]) => [name, g.n, fmt(g.rss / 1024, 2), fmt(g.pss / 1024, 2), fmt(g.priv / 1024, 2)]);
    rows.push(["total", "", fmt(total.rss / 1024, 2), fmt(total.pss / 1024, 2), fmt(total.priv / 1024, 2)]);
    process.stdout.write(`\n### pid ${pid}\n\n` + table(["mapping", "mappings", "RSS MiB", "PSS MiB", "private MiB"], rows));
  }
}

if (isMain(import.meta.url)) main();
