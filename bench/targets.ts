// Rows of the `npm run bench` table and their targets (issue 9). A target applies to the ratio ours / runc-v2,
// or, for the scale rows, to our own value.

export interface Target {
  on: "ratio" | "ours";
  op: "<=" | ">=" | "within";
  value: number;
  /** Upper bound for "within" (value is the lower one). */
  hi?: number;
}

export interface Row {
  metric: string;
  version: string;
  ours: number;
  runc: number;
  oursText: string;
  runcText: string;
  /** No target: the row is context for another (shown with "–"). */
  target?: Target;
}

/** The target as text and whether the row meets it ("yes", "no", or "–" without a target). */
export function checkTarget(r: Row): { text: string; met: string } {
  const t = r.target;
  if (!t) return { text: "–", met: "–" };
  const x = t.on === "ratio" ? r.ours / r.runc : r.ours;
  const what = t.on === "ratio" ? "ratio" : "ours";
  if (!Number.isFinite(x)) return { text: describe(t, what), met: "no (no figure)" };
  const ok = t.op === "<=" ? x <= t.value : t.op === ">=" ? x >= t.value : x >= t.value && x <= (t.hi ?? Infinity);
  return { text: describe(t, what), met: ok ? "yes" : "**no**" };
}

function describe(t: Target, what: string): string {
  if (t.op === "within") return `${what} ${t.value}–${t.hi}`;
  return `${what} ${t.op === "<=" ? "≤" : "≥"} ${t.value}`;
}
