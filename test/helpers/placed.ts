// A file the project tells operators to put on containerd's PATH, placed elsewhere as an operator (or
// containerd's own client tests) would: copied, hard-linked and symlinked into a temp dir (issue 18 item 3).
import { copyFile, link, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

export const PLACEMENTS = ["copy", "hard link", "symlink"] as const;
export type Placement = (typeof PLACEMENTS)[number];

/**
 * A new temp dir in which `file` can be hard-linked: under the system temp dir, else (EXDEV: another
 * filesystem) next to the file. The caller removes it.
 */
export async function linkableTempDir(file: string, prefix = "placed-"): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  try {
    await link(file, path.join(dir, ".probe"));
    await rm(path.join(dir, ".probe"));
    return dir;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
    return mkdtemp(path.join(path.dirname(file), `.${prefix}`));
  }
}

/**
 * Places `file` in `dir` once each way, each under the file's own name in its own sub-directory
 * (`<dir>/copy/<name>`, `<dir>/hard-link/<name>`, `<dir>/symlink/<name>`); returns the absolute paths.
 */
export async function place(file: string, dir: string): Promise<Record<Placement, string>> {
  const at = async (how: Placement): Promise<string> => {
    const sub = path.join(dir, how.replace(" ", "-"));
    await mkdir(sub, { recursive: true });
    return path.join(sub, path.basename(file));
  };
  const copy = await at("copy");
  await copyFile(file, copy); // keeps the mode bits
  const hard = await at("hard link");
  await link(file, hard);
  const sym = await at("symlink");
  await symlink(path.resolve(file), sym);
  return { copy, "hard link": hard, symlink: sym };
}
