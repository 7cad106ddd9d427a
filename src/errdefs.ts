/**
 * Error classes of the shim. Code anywhere below the RPC boundary throws `ShimError` with one of a
 * closed set of codes; `ttrpc/status.ts` is the only place that turns a code into a gRPC number.
 */

/** The closed set of error classes, mirroring containerd's errdefs. */
export type Code =
  | "NotFound"
  | "AlreadyExists"
  | "FailedPrecondition"
  | "InvalidArgument"
  | "Unimplemented"
  | "Unavailable"
  | "DeadlineExceeded"
  | "Canceled"
  | "ResourceExhausted"
  | "Internal"
  | "Unknown";

/** An error with a code that survives to the wire. Wrap lower errors with `{ cause }`. */
export class ShimError extends Error {
  override name = "ShimError";
  constructor(
    readonly code: Code,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Returns the code of `err`: the first ShimError in its cause chain, else a guess from abort errors. */
export function codeOf(err: unknown): Code {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 16; depth++) {
    if (e instanceof ShimError) return e.code;
    if (e instanceof Error) {
      if (e.name === "AbortError") return "Canceled";
      if (e.name === "TimeoutError") return "DeadlineExceeded";
      e = e.cause;
    } else break;
  }
  return "Unknown";
}

/** True if `err` (or its cause chain) has the given code. */
export function isCode(err: unknown, code: Code): boolean {
  return codeOf(err) === code;
}

export const notFound = (msg: string, opts?: ErrorOptions) => new ShimError("NotFound", msg, opts);
export const alreadyExists = (msg: string, opts?: ErrorOptions) => new ShimError("AlreadyExists", msg, opts);
export const failedPrecondition = (msg: string, opts?: ErrorOptions) =>
  new ShimError("FailedPrecondition", msg, opts);
export const invalidArgument = (msg: string, opts?: ErrorOptions) => new ShimError("InvalidArgument", msg, opts);
export const unimplemented = (msg: string, opts?: ErrorOptions) => new ShimError("Unimplemented", msg, opts);
export const unavailable = (msg: string, opts?: ErrorOptions) => new ShimError("Unavailable", msg, opts);
export const internal = (msg: string, opts?: ErrorOptions) => new ShimError("Internal", msg, opts);
