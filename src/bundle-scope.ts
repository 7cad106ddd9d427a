/**
 * Where bundles may be: the check that keeps a Create or CreateSandbox from making the shim (root)
 * mount, write or run runc in a directory outside containerd's state directory.
 *
 * containerd creates every bundle as `<state>/<plugin dir>/<namespace>/<id>` (`NewBundle`, the same in
 * 1.6, 1.7 and 2.x), where `<state>` is its state directory (default `/run/containerd`) and the plugin
 * dir is `io.containerd.runtime.v2.task` for tasks (1.6, 1.7 and 2.x; 1.7 also puts its experimental
 * sandboxes there) or `io.containerd.sandbox.controller.v1.shim` for the 2.x shim sandboxer. The daemon
 * runs in the bundle it was started for, so `<state>` is its working directory's third ancestor, taken
 * once at start (that bundle may be removed while the daemon serves others).
 *
 * A bundle is accepted if its real path (all symlinks resolved) is a directory and a direct child of one
 * of: `<state>/io.containerd.runtime.v2.task/<ns>`, `<state>/io.containerd.sandbox.controller.v1.shim/<ns>`
 * (ns = the shim's namespace), or the directory holding the daemon's own bundle (the same as one of those
 * under containerd; a test's layout otherwise). So `..` escapes, symlinks that lead out, relative paths
 * and other directories of `<state>` itself (`runc/`, `s/`) are refused.
 */
import { realpathSync, statSync } from "node:fs";
import path from "node:path";
import { invalidArgument } from "./errdefs.js";

/** containerd's bundle directories under its state directory (see the file comment). */
export const BUNDLE_PLUGIN_DIRS = ["io.containerd.runtime.v2.task", "io.containerd.sandbox.controller.v1.shim"] as const;

/** Checks bundle paths of requests against the directories containerd creates bundles in. */
export class BundleScope {
  private readonly given: readonly string[];
  private parents: ReadonlySet<string>;

  /**
   * `parents`: the directories whose direct children are accepted. They are resolved now, and again
   * when a bundle does not match (a parent that did not exist yet at start may be a symlink later).
   */
  constructor(parents: readonly string[]) {
    this.given = [...parents];
    this.parents = new Set(this.given.map(resolveOr));
  }

  /** The scope of a daemon started in `cwd` (its own bundle) for `namespace`. */
  static forDaemon(cwd: string, namespace: string): BundleScope {
    const own = path.dirname(resolveOr(cwd));
    const state = path.dirname(path.dirname(own));
    return new BundleScope([own, ...BUNDLE_PLUGIN_DIRS.map((d) => path.join(state, d, namespace))]);
  }

  /** The accepted parent directories (resolved). */
  get roots(): string[] {
    return [...this.parents];
  }

  /** Throws InvalidArgument unless `bundle` is accepted; `what` names the request ("task x"). */
  check(bundle: string, what: string): void {
    const refuse = (why: string) =>
      invalidArgument(`Cannot use bundle ${JSON.stringify(bundle.slice(0, 200))} for ${what}: ${why}`);
    if (!path.isAbsolute(bundle)) throw refuse("not an absolute path");
    if (bundle.includes("\0")) throw refuse("contains NUL");
    let real: string;
    try {
      real = realpathSync(bundle);
    } catch (err) {
      throw refuse(`cannot resolve it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    if (!this.parents.has(path.dirname(real))) {
      this.parents = new Set(this.given.map(resolveOr));
      if (!this.parents.has(path.dirname(real))) throw refuse("outside containerd's bundle directories");
    }
    if (!isDirectory(real)) throw refuse("not a directory");
  }
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function resolveOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}
