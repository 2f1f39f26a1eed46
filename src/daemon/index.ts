/** The vhive daemon: HTTP API over the function registry, Prometheus metrics, and its client. */
export { startDaemon, parseListen, isLoopback, DEFAULT_LISTEN, type Daemon, type DaemonOptions } from "./daemon.js";
export { buildApp, type AppOptions } from "./app.js";
export { DaemonMetrics } from "./metrics.js";
export { errorBody, statusOf, type ErrorBody } from "./errors.js";
export { DaemonClient, clientOptionsFromEnv, DEFAULT_URL, type ClientOptions } from "./client.js";
