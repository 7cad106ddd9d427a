import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { ExitRouter, type ExitTarget } from "../../src/task/exits.js";
import { Proc } from "../../src/task/process.js";

const stdio = { stdin: "", stdout: "", stderr: "", terminal: false };
const at = new Date(0);

function setup() {
  const published: string[] = [] as string[];
  const router = new ExitRouter(
    (_t, p, e) => published.push(`exit ${p.id} ${e.status}`),
    (_t, p) => void published.push(`init-exit-seen ${p.id}`),
  );
  const target: ExitTarget = { liveExecs: 0, initExited: false };
  return { published, router, target };
}

void suite("ExitRouter", () => {
  void test("publishes an exit that happened during start only after the start event", () => {
    const { published, router, target } = setup();
    const init = new Proc("c1", "", stdio);
    const early = router.subscribe();
    // runc start is running; the process exits before it returns
    router.handle({ pid: 42, status: 3, at });
    assert.equal(published.length, 0);
    init.pid = 42;
    published.push("start c1");
    early.started(target, init);
    assert.deepEqual(published, ["start c1", "init-exit-seen c1", "exit c1 3"]);
    assert.equal(init.exitStatus, 3);
    assert.equal(init.status, "stopped");
  });

  void test("routes a later exit of a started process", () => {
    const { published, router, target } = setup();
    const init = new Proc("c1", "", stdio);
    init.pid = 7;
    router.subscribe().started(target, init);
    router.handle({ pid: 8, status: 1, at });
    assert.equal(published.length, 0);
    router.handle({ pid: 7, status: 137, at });
    assert.deepEqual(published, ["init-exit-seen c1", "exit c1 137"]);
  });

  void test("holds the init exit until every live exec has exited", () => {
    const { published, router, target } = setup();
    const init = new Proc("c1", "", stdio);
    init.pid = 10;
    router.subscribe().started(target, init);
    const exec = new Proc("c1", "e1", stdio);
    target.liveExecs++;
    const early = router.subscribe();
    exec.pid = 11;
    early.started(target, exec);
    router.handle({ pid: 10, status: 0, at });
    assert.deepEqual(published, ["init-exit-seen c1"]);
    assert.equal(init.hasExited, false, "Wait on the init must not return before the exec exit");
    router.handle({ pid: 11, status: 137, at });
    assert.deepEqual(published, ["init-exit-seen c1", "exit e1 137", "exit c1 0"]);
    assert.equal(target.initExited, true);
  });

  void test("counts an exec whose start is still running as live", () => {
    const { published, router, target } = setup();
    const init = new Proc("c1", "", stdio);
    init.pid = 20;
    router.subscribe().started(target, init);
    target.liveExecs++; // Start(exec) requested, runc exec in flight
    const early = router.subscribe();
    router.handle({ pid: 20, status: 0, at });
    assert.deepEqual(published, ["init-exit-seen c1"]);
    early.close();
    router.execStartFailed(target);
    assert.deepEqual(published, ["init-exit-seen c1", "exit c1 0"]);
  });

  void test("drops exits of forgotten processes", () => {
    const { published, router, target } = setup();
    const init = new Proc("c1", "", stdio);
    init.pid = 30;
    router.subscribe().started(target, init);
    router.forget(init);
    router.handle({ pid: 30, status: 0, at });
    assert.equal(published.length, 0);
  });

  void test("records only the first exit of a process", () => {
    const { published, router, target } = setup();
    const exec = new Proc("c1", "e1", stdio);
    exec.pid = 40;
    target.liveExecs = 1;
    router.subscribe().started(target, exec);
    router.handle({ pid: 40, status: 2, at });
    router.handle({ pid: 40, status: 9, at });
    assert.deepEqual(published, ["exit e1 2"]);
    assert.equal(target.liveExecs, 0);
  });
});

void suite("ExitRouter settle hook", () => {
  void test("records and publishes a terminal's exit only after its output settled", async () => {
    const published: string[] = [];
    let release!: () => void;
    const settled = new Promise<void>((r) => (release = r));
    const router = new ExitRouter((_t, p, e) => published.push(`exit ${p.id} ${e.status}`), () => {}, (p) =>
      p.stdio.terminal ? settled : undefined,
    );
    const target: ExitTarget = { liveExecs: 0, initExited: false };
    const init = new Proc("c1", "", { ...stdio, terminal: true });
    init.pid = 50;
    router.subscribe().started(target, init);
    router.handle({ pid: 50, status: 7, at });
    router.handle({ pid: 50, status: 9, at });
    assert.equal(published.length, 0, "nothing is published while the output is still being copied");
    assert.equal(init.hasExited, false, "Wait must not return before the output is out");
    release();
    await init.wait();
    assert.deepEqual(published, ["exit c1 7"]);
  });

  void test("records and publishes an init exit only after the init-exit hook's work (kill --all) ended, even if it failed", async () => {
    const published: string[] = [];
    let fail!: (e: Error) => void;
    const killing = new Promise<void>((_r, j) => (fail = j));
    killing.catch(() => {});
    const router = new ExitRouter((_t, p, e) => published.push(`exit ${p.id} ${e.status}`), () => killing);
    const target: ExitTarget = { liveExecs: 0, initExited: false };
    const init = new Proc("c1", "", stdio);
    init.pid = 60;
    router.subscribe().started(target, init);
    router.handle({ pid: 60, status: 137, at });
    await Promise.resolve();
    assert.equal(target.initExited, true, "new execs are refused at once");
    assert.equal(init.hasExited, false, "Wait (and so Delete) must not go ahead while runc kill --all still runs");
    assert.equal(published.length, 0);
    fail(new Error("runc kill failed"));
    await init.wait();
    assert.deepEqual(published, ["exit c1 137"]);
  });
});

void suite("Proc", () => {
  void test("refuses an illegal transition with FailedPrecondition naming the state", () => {
    const p = new Proc("c1", "", stdio);
    p.transition("running", "start");
    assert.throws(() => p.transition("running", "start"), { code: "FailedPrecondition", message: /running state/ });
  });

  void test("wait resolves after setExited and rejects on abort", async () => {
    const p = new Proc("c1", "", stdio);
    const ac = new AbortController();
    const w = p.wait(ac.signal);
    ac.abort(new Error("gone"));
    await assert.rejects(w, /gone/);
    const w2 = p.wait();
    p.setExited(5, at);
    await w2;
    assert.equal(p.exitStatus, 5);
  });
});

void suite("ExitRouter bounds: Kill replies and held init exits", () => {
  void test("holds an exit while a Kill of its container is in flight, and publishes it once the reply was written", async () => {
    const published: string[] = [];
    const router = new ExitRouter((_t, p, e) => published.push(`exit ${p.id} ${e.status}`));
    const target: ExitTarget = { liveExecs: 0, initExited: false };
    const other: ExitTarget = { liveExecs: 0, initExited: false };
    const init = new Proc("c1", "", stdio);
    const otherInit = new Proc("c2", "", stdio);
    init.pid = 70;
    otherInit.pid = 71;
    router.subscribe().started(target, init);
    router.subscribe().started(other, otherInit);
    const release = router.holdExits(target);
    router.handle({ pid: 70, status: 137, at });
    router.handle({ pid: 71, status: 1, at });
    assert.deepEqual(published, ["exit c2 1"], "another container's exit is not held");
    assert.equal(init.hasExited, false, "Wait must not return before the Kill reply either");
    published.push("reply Kill");
    release();
    release(); // idempotent
    await init.wait();
    assert.deepEqual(published, ["exit c2 1", "reply Kill", "exit c1 137"]);
  });

  void test("publishes a held exit after killReplyMs when the reply is never written", async () => {
    const published: string[] = [];
    const router = new ExitRouter((_t, p, e) => published.push(`exit ${p.id} ${e.status}`), undefined, undefined, { limits: { killReplyMs: 20 } });
    const target: ExitTarget = { liveExecs: 0, initExited: false };
    const init = new Proc("c1", "", stdio);
    init.pid = 72;
    router.subscribe().started(target, init);
    router.holdExits(target);
    router.handle({ pid: 72, status: 9, at });
    await init.wait();
    assert.deepEqual(published, ["exit c1 9"]);
  });

  void test("a held init exit asks the container to end its execs after execHoldMs, and goes out after execGraceMs", async () => {
    const published: string[] = [];
    const router = new ExitRouter((_t, p, e) => published.push(`exit ${p.id} ${e.status}`), undefined, undefined, {
      limits: { execHoldMs: 20, execGraceMs: 20 },
      onHoldExpired: () => published.push("hold expired"),
    });
    const target: ExitTarget = { liveExecs: 1, initExited: false }; // an exec start that never ends
    const init = new Proc("c1", "", stdio);
    init.pid = 73;
    router.subscribe().started(target, init);
    router.handle({ pid: 73, status: 0, at });
    assert.deepEqual(published, []);
    await init.wait();
    assert.deepEqual(published, ["hold expired", "exit c1 0"]);
    router.execStartFailed(target); // late: nothing more is published
    assert.deepEqual(published, ["hold expired", "exit c1 0"]);
  });
});
