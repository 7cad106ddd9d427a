// Rows of the `npm run bench` table and their targets (issue 19). A target applies to the ratio ours / runc-v2;
// for idle CPU, to the difference ours − runc-v2 ("ours ≤ runc-v2 + x"); for the scale rows (issue 9), to our
// own value.

export interface Target {
  on: "ratio" | "ours" | "difference";
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
  const x = t.on === "ratio" ? r.ours / r.runc : t.on === "difference" ? r.ours - r.runc : r.ours;
  if (!Number.isFinite(x)) return { text: describe(t), met: "no (no figure)" };
  const ok = t.op === "<=" ? x <= t.value : t.op === ">=" ? x >= t.value : x >= t.value && x <= (t.hi ?? Infinity);
  return { text: describe(t), met: ok ? "yes" : "**no**" };
}

function describe(t: Target): string {
  if (t.on === "difference") return `ours ${t.op === "<=" ? "≤" : "≥"} runc-v2 + ${t.value}`;
  const what = t.on === "ratio" ? "ratio" : "ours";
  if (t.op === "within") return `${what} ${t.value}–${t.hi}`;
  return `${what} ${t.op === "<=" ? "≤" : "≥"} ${t.value}`;
}
