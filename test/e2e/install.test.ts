// scripts/install.sh and the single executables of `npm run package`: the Bun one (the default) and the Node
// one (--engine node), each installed into a temp prefix. The installed file alone (no node on containerd's
// PATH, no node_modules, no checkout path) runs a ctr container and a CRI pod with a container, configured
// with the snippet install.sh prints; then --uninstall leaves nothing. containerd 2.1 and 1.6 (1.7
// configures like 1.6). The Node file gets one test per version (ctr and CRI together) on its own containerd.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import { after, before, suite, test } from "node:test";
import { VERSIONS, startContainerd, type Containerd, type ContainerdVersion } from "../helpers/containerd.js";
import { CRI_NS, CriClient, cri, hostNetworkPod, shimDaemons, sleeperContainer } from "../helpers/cri.js";
import { BUSYBOX_REF, REPO_ROOT } from "../helpers/image.js";
import { waitFor } from "../helpers/wait.js";
import { containerd } from "../../src/gen/bootstrap.js";

const INSTALL = path.join(REPO_ROOT, "scripts", "install.sh");
const TS = "io.containerd.ts.v2";
/** containerd's PATH after its own dirs: runc is in /usr/sbin; node (/usr/bin, /bin) is not there. */
const NO_NODE_PATH = ["/usr/local/sbin", "/usr/sbin"];
const TESTED: ContainerdVersion[] = VERSIONS.filter((v) => v === "2.1" || v === "1.6");
const SUITES: Record<ContainerdVersion, string> = { "1.6": "bookworm", "1.7": "trixie", "2.1": "sid" };
const ENGINES = ["bun", "node"] as const;
type Engine = (typeof ENGINES)[number];

function runRaw(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => out.push(d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    p.once("error", reject);
    p.once("close", (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}
const run = async (cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> => {
  const r = await runRaw(cmd, args, env);
  return { ...r, stdout: r.stdout.toString("utf8") };
};

const install = async (args: string[], env?: NodeJS.ProcessEnv): Promise<string> => {
  const r = await run("bash", [INSTALL, ...args], env);
  assert.equal(r.code, 0, `install.sh ${args.join(" ")} -> ${r.code}\n${r.stderr}`);
  return r.stdout;
};

/** Every file and directory under `dir`. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).sort();
}

void suite("install.sh and the single executable", { timeout: 900_000, skip: TESTED.length === 0 ? "neither 1.6 nor 2.1 is among E2E_VERSIONS" : false }, () => {
  let top = "";
  let cache = "";
  /** Per engine: the prefix, the installed file, the config snippet per containerd version. */
  const inst = new Map<Engine, { prefix: string; bin: string; snippets: Map<ContainerdVersion, string> }>();
  const of = (engine: Engine): { prefix: string; bin: string; snippets: Map<ContainerdVersion, string> } =>
    inst.get(engine) ?? assert.fail(`${engine} was not installed`);

  before(async () => {
    top = await mkdtemp("/tmp/inst-");
    for (const engine of ENGINES) {
      const prefix = path.join(top, `prefix-${engine}`);
      const args = engine === "bun" ? ["--prefix", prefix] : ["--engine", "node", "--prefix", prefix];
      // The version is read from `containerd --version` (2.1 from .deps on PATH) ...
      const ctd = path.join(REPO_ROOT, ".deps", "containerd", SUITES["2.1"], "usr", "bin");
      const snippets = new Map<ContainerdVersion, string>();
      snippets.set("2.1", await install(args, { ...process.env, PATH: `${ctd}:${process.env.PATH ?? ""}` }));
      // ... or given (installing again over its own install is allowed).
      snippets.set("1.6", await install([...args, "--containerd-version", "1.6"]));
      inst.set(engine, { prefix, bin: path.join(prefix, "bin", "containerd-shim-ts-v2"), snippets });
    }
    const manifest = readFileSync(path.join(of("node").prefix, "share", "containerd-shim-ts-v2", "manifest"), "utf8");
    cache = /^cache (\/run\/\S+)$/m.exec(manifest)?.[1] ?? assert.fail(`no cache dir in the manifest:\n${manifest}`);
    await rm(cache, { recursive: true, force: true }); // written anew by the installed file's first daemon
  });
  after(async () => {
    if (top !== "") await rm(top, { recursive: true, force: true });
  });

  for (const engine of ENGINES) {
    void test(`${engine}: installs one executable, and prints the config for the containerd found or named`, () => {
      const { prefix, bin, snippets } = of(engine);
      assert.deepEqual(tree(prefix), ["bin", "bin/containerd-shim-ts-v2", "share", "share/containerd-shim-ts-v2",
        "share/containerd-shim-ts-v2/manifest"]);
      assert.equal(statSync(bin).mode & 0o777, 0o755);
      assert.ok(statSync(bin).size > 50 << 20, `the file holds ${engine} itself`);
      assert.match(snippets.get("2.1")!, /# containerd 2\.1: .*\n\[plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes\.ts\]\n {2}runtime_type = "io\.containerd\.runc\.v2"\n/);
      assert.ok(snippets.get("2.1")!.includes(`  runtime_path = "${bin}"\n`), snippets.get("2.1"));
      assert.match(snippets.get("1.6")!, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.ts\]\n {2}runtime_type = "io\.containerd\.ts\.v2"\n/);
      assert.doesNotMatch(snippets.get("1.6")!, /runtime_path/);
    });

    void test(`${engine}: runs -v and -info with no node and no checkout around`, async () => {
      const { bin } = of(engine);
      for (const dir of NO_NODE_PATH) assert.equal(existsSync(path.join(dir, "node")), false, `${dir}/node exists`);
      const env = { PATH: NO_NODE_PATH.join(":") };
      const r = await run(bin, ["-v"], env);
      assert.equal(r.code, 0, r.stderr);
      const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
      const runtime = engine === "node" ? "node v2[2-9]\\." : "bun 1\\.";
      assert.match(r.stdout, new RegExp(`^containerd-shim-ts-v2 ${pkg.version.replace(/\./g, "\\.")}\n${runtime}`));
      const i = await runRaw(bin, ["-info"], env);
      assert.equal(i.code, 0, i.stderr);
      const info = containerd.types.RuntimeInfo.decode(i.stdout);
      assert.equal(info.name, TS);
      assert.equal(info.version?.version, pkg.version);
      assert.equal(info.features?.typeUrl, "types.containerd.io/opencontainers/runtime-spec/1/features/Features");
      assert.ok(Array.isArray((JSON.parse(Buffer.from(info.features?.value ?? new Uint8Array()).toString("utf8")) as { mountOptions?: unknown }).mountOptions),
        "the features are runc's");
    });
  }

  for (const v of TESTED) {
    for (const engine of ENGINES) {
      void suite(`containerd ${v} through the installed ${engine} file`, () => {
        let c: Containerd | undefined;
        let client: CriClient | undefined;
        const get = (): Containerd => c ?? assert.fail(`containerd ${v} did not start`);
        /** Each shim daemon of this containerd is the installed file itself, not node. */
        const daemonsAreTheInstalledFile = (): void => {
          const pids = shimDaemons(get(), "containerd-shim-ts-v2");
          assert.ok(pids.length > 0, "no shim daemon");
          for (const pid of pids) {
            assert.equal(readlinkSync(`/proc/${pid}/exe`), realpathSync(of(engine).bin), `daemon ${pid}`);
            // Node: the daemon's default Node flags reach the re-executed file (SHIM_TS_DAEMON_NODE_FLAGS unset
            // here). Bun: no Node flags, the daemon's own arguments come first.
            const first = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[1];
            assert.equal(first, engine === "node" ? "--node-options=--lite-mode" : "-namespace", `daemon ${pid}`);
          }
        };

        before(async () => {
          c = await startContainerd(v, {
            cri: true, namespace: CRI_NS, images: ["busybox", "pause"], shimBinary: of(engine).bin, systemPath: NO_NODE_PATH,
            extraConfig: of(engine).snippets.get(v),
          });
          client = await CriClient.connect(c.address);
        });
        after(async () => {
          client?.close();
          await c?.stop();
        });

        const ctrCase = async (): Promise<void> => {
          const r = await get().ctr(["run", "--rm", "--runtime", TS, BUSYBOX_REF, "once", "sh", "-c", "echo hi; exit 3"]);
          assert.equal(r.stdout, "hi\n", `${r.stderr}\n${get().logTail(20)}`);
          assert.equal(r.code, 3);
          const d = await get().ctr(["run", "-d", "--runtime", TS, BUSYBOX_REF, "bg", "sleep", "1000"]);
          assert.equal(d.code, 0, `${d.stderr}\n${get().logTail(20)}`);
          daemonsAreTheInstalledFile();
          await get().ctr(["task", "kill", "-s", "SIGKILL", "bg"]);
          await waitFor(async () => (await get().ctr(["task", "delete", "bg"])).code === 0, { timeoutMs: 15_000, what: "task delete bg" });
          assert.equal((await get().ctr(["container", "delete", "bg"])).code, 0);
        };

        const criCase = async (): Promise<void> => {
          const cc = client ?? assert.fail("no CRI client");
          const logDir = path.join(get().dir, "pods", "p");
          await mkdir(logDir, { recursive: true });
          const config = hostNetworkPod("inst", logDir);
          const pod = await cc.runPodSandbox(config, "ts");
          try {
            const id = await cc.createContainer(pod, sleeperContainer("app"), config);
            await cc.startContainer(id);
            const st = await cc.containerStatus(id);
            assert.equal(st.status?.state, cri.ContainerState.CONTAINER_RUNNING);
            const r = await cc.execSync(id, ["echo", "from the pod"]);
            assert.deepEqual([r.exitCode, r.stdout], [0, "from the pod\n"], r.stderr);
            daemonsAreTheInstalledFile();
          } finally {
            await cc.stopPodSandbox(pod);
            await cc.removePodSandbox(pod);
          }
        };

        if (engine === "bun") {
          void test("ctr: a container's output and exit status; the daemon is the installed file", ctrCase);
          void test("CRI: a pod with a container on the handler from install.sh's config", criCase);
        } else {
          void test("ctr then CRI: a container, a pod with a container; the daemons are the installed file", async () => {
            await ctrCase();
            await criCase();
          });
        }
      });
    }
  }

  void test("--uninstall removes what it installed, the native module the Node binary wrote and the version cache", async () => {
    assert.ok(existsSync(path.join(cache, "koffi.node")), `the daemons wrote no ${cache}/koffi.node`);
    const versions = "/run/containerd-shim-ts/version"; // start's cache of containerd's version (version-probe.ts)
    assert.ok(existsSync(versions), `the installed files' starts wrote no ${versions}`);
    for (const engine of ENGINES) {
      const { prefix } = of(engine);
      await install(["--prefix", prefix, "--uninstall"]);
      assert.equal(existsSync(prefix), false, `left behind: ${existsSync(prefix) ? tree(prefix).join(", ") : ""}`);
    }
    assert.equal(existsSync(cache), false, `${cache} left behind`);
    assert.equal(existsSync(versions), false, `${versions} left behind`);
  });
});
