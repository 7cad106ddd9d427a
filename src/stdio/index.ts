/**
 * Container stdio: pipes and FIFO copies, file and logging-binary outputs, and terminals.
 */
export { parseStdio } from "./uri.js";
export type { StdioTarget } from "./uri.js";
export { openProcessIO } from "./io.js";
export type { IOOptions, ProcessIO, StdioSpec } from "./io.js";
export { ConsoleSocket, copyConsole } from "./console.js";
export type { ConsoleIO } from "./console.js";
export { BinaryLogger, LOGGER_KILL_DELAY_MS } from "./binary.js";
export type { PidRegistry } from "./binary.js";
