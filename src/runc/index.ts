/** The runc module's surface (contracts.md "src/runc"). */
export { Runc } from "./runc.js";
export type { RuncOptions, CallOptions, CreateOptions, ExecOptions, CheckpointOptions, RestoreOptions } from "./runc.js";
export type { ChildRegistry, RuncState, RuncStatus, RuncVersion, RuncStdio } from "./types.js";
export type { CriuFlags, CheckpointFlags, RestoreFlags, CreateFlags } from "./args.js";
export { RuncError, criuFailure, type CriuFailure } from "./errors.js";
export { readPidFile } from "./pid-file.js";
