/**
 * Identifier validation shared by the task and sandbox services. The rule is containerd's own
 * (`pkg/identifiers`, the same in 1.6, 1.7 and 2.x): 1 to 76 characters, alphanumeric runs joined by
 * single `.`, `_` or `-`. containerd validates task ids (`NewBundle`), sandbox ids and exec ids
 * (`shimTask.Exec`) with it before they reach a shim, so refusing anything else refuses nothing
 * containerd sends, and an id that passes is safe as one path component (no `/`, no `..`, no NUL or
 * control characters, never empty).
 */
import { invalidArgument } from "./errdefs.js";

/** containerd's `identifiers` maximum length. */
export const MAX_ID_LENGTH = 76;

const ID = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;

/** The reason `id` is not a valid identifier, or undefined if it is one. */
export function idProblem(id: string): string | undefined {
  if (id.length === 0) return "must not be empty";
  if (id.length > MAX_ID_LENGTH) return `longer than ${MAX_ID_LENGTH} characters`;
  if (!ID.test(id)) return `must match ${ID.source}`;
  return undefined;
}

/**
 * Throws InvalidArgument unless `id` is a valid identifier. `what` names the id in the message
 * ("container", "exec", "sandbox"); the id is quoted with escapes and cut to 80 characters, so no
 * control character of a hostile id reaches a log line or the caller.
 */
export function validateId(id: string, what: string): void {
  const problem = idProblem(id);
  if (problem === undefined) return;
  const shown = JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}...` : id);
  throw invalidArgument(`Cannot use ${what} id ${shown}: identifier ${problem}`);
}
