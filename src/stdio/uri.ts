/**
 * Classification of the stdio strings containerd sends in Create/Exec (protocol.md §4.6). Pure: no IO.
 */
import { ShimError } from "../errdefs.js";

/** Where one stdio stream goes, as named by containerd. */
export type StdioTarget =
  | { kind: "fifo"; path: string }
  | { kind: "file"; path: string }
  | { kind: "binary"; path: string; args: string[]; v2: boolean };

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/**
 * Classifies a stdin/stdout/stderr string: "" -> null (no IO), a plain path -> FIFO, `file:///abs` -> file,
 * `binary:///path?k=v` and `binary-v2:///path?k=v` -> logging binary whose argv is the query pairs in order
 * (`k v`, an absent value becomes ""). Throws InvalidArgument for any other scheme or a malformed URI.
 */
export function parseStdio(value: string): StdioTarget | null {
  if (value === "") return null;
  const m = SCHEME.exec(value);
  if (m === null) return { kind: "fifo", path: value };
  const scheme = (m[1] ?? "").toLowerCase();
  if (scheme !== "file" && scheme !== "binary" && scheme !== "binary-v2") {
    throw new ShimError("InvalidArgument", `Cannot use stdio URI "${value}": unsupported scheme "${scheme}"`);
  }
  if (!value.startsWith(`${m[1] ?? ""}://`)) {
    throw new ShimError("InvalidArgument", `Cannot use stdio URI "${value}": expected "${scheme}://"`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch (err) {
    throw new ShimError("InvalidArgument", `Cannot parse stdio URI "${value}"`, { cause: err });
  }
  if (url.host !== "" || url.username !== "" || url.password !== "") {
    throw new ShimError("InvalidArgument", `Cannot use stdio URI "${value}": a host is not allowed`);
  }
  const path = decodePath(url.pathname, value);
  if (scheme === "file") return { kind: "file", path };
  const args: string[] = [];
  for (const [k, v] of url.searchParams) args.push(k, v);
  return { kind: "binary", path, args, v2: scheme === "binary-v2" };
}

function decodePath(pathname: string, value: string): string {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch (err) {
    throw new ShimError("InvalidArgument", `Cannot parse stdio URI "${value}": bad escape in path`, { cause: err });
  }
  if (!path.startsWith("/") || path.includes("\0")) {
    throw new ShimError("InvalidArgument", `Cannot use stdio URI "${value}": path must be absolute`);
  }
  return path;
}
