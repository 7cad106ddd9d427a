/** Pure parsers of runc's output. Malformed output is a ShimError Internal naming the subcommand. */
import { ShimError } from "../errdefs.js";
import type { RuncState, RuncStatus, RuncVersion } from "./types.js";

const STATUSES: readonly string[] = ["created", "running", "paused", "stopped"] satisfies RuncStatus[];

function bad(verb: string, why: string, cause?: unknown): ShimError {
  return new ShimError("Internal", `Cannot parse output of runc ${verb}: ${why}`, cause === undefined ? undefined : { cause });
}

function json(verb: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw bad(verb, "not JSON", err);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses `runc state` JSON; requires `id`, `pid` and a known `status`. */
export function parseState(text: string): RuncState {
  const v = json("state", text);
  if (!isRecord(v)) throw bad("state", "not an object");
  if (typeof v["id"] !== "string") throw bad("state", "no id");
  if (typeof v["pid"] !== "number") throw bad("state", "no pid");
  if (typeof v["status"] !== "string" || !STATUSES.includes(v["status"])) {
    throw bad("state", `unknown status ${JSON.stringify(v["status"])}`);
  }
  const str = (k: string): string => (typeof v[k] === "string" ? (v[k] as string) : "");
  const state: RuncState = {
    ociVersion: str("ociVersion"),
    id: v["id"],
    pid: v["pid"],
    status: v["status"] as RuncStatus,
    bundle: str("bundle"),
    rootfs: str("rootfs"),
    created: str("created"),
    owner: str("owner"),
  };
  if (isRecord(v["annotations"])) state.annotations = v["annotations"] as Record<string, string>;
  return state;
}

/** Parses `runc ps --format json`: an array of pids; runc prints `null` when there are none. */
export function parsePs(text: string): number[] {
  const v = json("ps", text);
  if (v === null) return [];
  if (!Array.isArray(v) || !v.every((p): p is number => Number.isInteger(p))) throw bad("ps", "not an array of pids");
  return v;
}

/** Parses `runc events --stats` (`{"type":"stats","id":..,"data":<Stats>}`) and returns `data`. */
export function parseStats(text: string): Record<string, unknown> {
  const first = text.split("\n").find((l) => l.trim() !== "") ?? "";
  const v = json("events", first);
  if (!isRecord(v) || !isRecord(v["data"])) throw bad("events", "no stats data");
  return v["data"];
}

/** Parses a JSON object document (`runc features`). */
export function parseObject(verb: string, text: string): Record<string, unknown> {
  const v = json(verb, text);
  if (!isRecord(v)) throw bad(verb, "not an object");
  return v;
}

/** Parses `runc --version`: `runc version X`, `commit: C`, `spec: S` lines. */
export function parseVersion(text: string): RuncVersion {
  let runc: string | undefined;
  const out: Partial<RuncVersion> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const m = /^(?:\S+ )?version (\S+)$/.exec(line);
    if (m?.[1] !== undefined && runc === undefined) runc = m[1];
    else if (line.startsWith("commit:")) out.commit = line.slice(7).trim();
    else if (line.startsWith("spec:")) out.spec = line.slice(5).trim();
  }
  if (runc === undefined) throw bad("--version", "no version line");
  return { runc, ...out };
}
