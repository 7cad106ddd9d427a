/**
 * Task events: topics and protobuf payloads (containerd.events.*), handed to the injected Publisher,
 * which keeps them in one ordered queue.
 */
import { containerd, google } from "../gen/task.js";

/** Publishes an event; never throws, keeps order. Implemented by the shim (ttrpc Forward). */
export interface Publisher {
  publish(topic: string, typeUrl: string, value: Uint8Array): void;
}

/** google.protobuf.Timestamp of a Date. */
export function timestamp(d: Date): google.protobuf.Timestamp.$Properties {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** Go's zero time, which the runc shim sends as exited_at of a process that has not exited. */
export const ZERO_TIME: google.protobuf.Timestamp.$Properties = { seconds: -62135596800, nanos: 0 };

const E = containerd.events;

/** Typed helpers over a Publisher, one per topic. */
export class TaskEvents {
  constructor(private readonly pub: Publisher) {}

  create(e: containerd.events.TaskCreate.$Properties): void {
    this.pub.publish("/tasks/create", "containerd.events.TaskCreate", E.TaskCreate.encode(e).finish());
  }
  start(containerId: string, pid: number): void {
    const v = E.TaskStart.encode({ containerId, pid }).finish();
    this.pub.publish("/tasks/start", "containerd.events.TaskStart", v);
  }
  exit(containerId: string, id: string, pid: number, exitStatus: number, at: Date): void {
    const v = E.TaskExit.encode({ containerId, id, pid, exitStatus, exitedAt: timestamp(at) }).finish();
    this.pub.publish("/tasks/exit", "containerd.events.TaskExit", v);
  }
  delete(containerId: string, pid: number, exitStatus: number, at: Date | undefined): void {
    const exitedAt = at === undefined ? undefined : timestamp(at);
    const v = E.TaskDelete.encode({ containerId, pid, exitStatus, exitedAt }).finish();
    this.pub.publish("/tasks/delete", "containerd.events.TaskDelete", v);
  }
  execAdded(containerId: string, execId: string): void {
    const v = E.TaskExecAdded.encode({ containerId, execId }).finish();
    this.pub.publish("/tasks/exec-added", "containerd.events.TaskExecAdded", v);
  }
  execStarted(containerId: string, execId: string, pid: number): void {
    const v = E.TaskExecStarted.encode({ containerId, execId, pid }).finish();
    this.pub.publish("/tasks/exec-started", "containerd.events.TaskExecStarted", v);
  }
  paused(containerId: string): void {
    this.pub.publish("/tasks/paused", "containerd.events.TaskPaused", E.TaskPaused.encode({ containerId }).finish());
  }
  resumed(containerId: string): void {
    const v = E.TaskResumed.encode({ containerId }).finish();
    this.pub.publish("/tasks/resumed", "containerd.events.TaskResumed", v);
  }
  oom(containerId: string): void {
    this.pub.publish("/tasks/oom", "containerd.events.TaskOOM", E.TaskOOM.encode({ containerId }).finish());
  }
}
