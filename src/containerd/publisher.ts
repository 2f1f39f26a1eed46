/**
 * Task events from the shim to containerd, sent as containerd's own shim library sends them
 * (runtime/v2/shim/publisher.go in containerd 1.6): the event is packed in a
 * google.protobuf.Any whose type_url is the event's full protobuf name, wrapped in an Envelope
 * and forwarded on containerd's ttrpc socket (TTRPC_ADDRESS), the namespace also sent as the
 * call's "containerd-namespace-ttrpc" metadata:
 *
 *   Events/Forward(ForwardRequest{ Envelope{
 *       timestamp: now, namespace: "default", topic: "/tasks/exit",
 *       event: Any{ type_url: "containerd.events.TaskExit", value: TaskExit bytes } } })
 *
 * A forward that finds the connection closed (containerd restarted) reconnects and tries once
 * more at once. One that still fails rejects publish(), and the event is retried in the
 * background 1 s, 2 s, 3 s, 4 s and 5 s later, then dropped with an error in the log, as Go's
 * publisher does. close() drops the retries not yet made and closes the connection.
 */
import { VhiveError, isVhiveError, messageOf } from "../shared/errors.js";
import { NoOpLog, type Log } from "../shared/log.js";
import { NAMESPACE_METADATA_KEY, events, eventsService } from "./api.js";
import { connectTtrpc, type ServiceClient, type TtrpcClient } from "./ttrpc/index.js";

type Envelope = eventsService.Envelope;

/** Each task event and its topic, as containerd's runtime/events.go names them. */
const TOPICS = {
  [events.TaskCreate.$type]: "/tasks/create",
  [events.TaskStart.$type]: "/tasks/start",
  [events.TaskOOM.$type]: "/tasks/oom",
  [events.TaskExit.$type]: "/tasks/exit",
  [events.TaskDelete.$type]: "/tasks/delete",
  [events.TaskExecAdded.$type]: "/tasks/exec-added",
  [events.TaskExecStarted.$type]: "/tasks/exec-started",
  [events.TaskPaused.$type]: "/tasks/paused",
  [events.TaskResumed.$type]: "/tasks/resumed",
  [events.TaskCheckpointed.$type]: "/tasks/checkpointed",
} as const;

export type TaskEventType =
  | typeof events.TaskCreate
  | typeof events.TaskStart
  | typeof events.TaskOOM
  | typeof events.TaskExit
  | typeof events.TaskDelete
  | typeof events.TaskExecAdded
  | typeof events.TaskExecStarted
  | typeof events.TaskPaused
  | typeof events.TaskResumed
  | typeof events.TaskCheckpointed;

export function topicOf(type: TaskEventType): string {
  return TOPICS[type.$type];
}

export interface EventPublisherOptions {
  /** containerd's ttrpc socket: the TTRPC_ADDRESS it starts the shim with. */
  address: string;
  /** The containerd namespace the shim serves (its -namespace flag). */
  namespace: string;
  log?: Log;
  /** Deadline of one Forward call (Go's publisher: 5 s). */
  forwardTimeoutMs?: number;
  /** The n-th retry waits n times this (Go: 1 s). */
  retryDelayMs?: number;
  /** Retries before an event is dropped (Go: 5). */
  maxRetries?: number;
}

export class EventPublisher implements AsyncDisposable {
  readonly #address: string;
  readonly #namespace: string;
  readonly #log: Log;
  readonly #forwardTimeoutMs: number;
  readonly #retryDelayMs: number;
  readonly #maxRetries: number;
  readonly #retries = new Map<NodeJS.Timeout, Envelope>();
  #connection: Promise<{ client: TtrpcClient; events: ServiceClient<typeof eventsService.EventsDefinition> }> | undefined;
  #closed = false;

  constructor(options: EventPublisherOptions) {
    this.#address = options.address;
    this.#namespace = options.namespace;
    this.#log = options.log ?? new NoOpLog();
    this.#forwardTimeoutMs = options.forwardTimeoutMs ?? 5_000;
    this.#retryDelayMs = options.retryDelayMs ?? 1_000;
    this.#maxRetries = options.maxRetries ?? 5;
  }

  /** Forward one event; on failure it rejects, and the event is retried in the background. */
  async publish<E extends TaskEventType>(type: E, event: Parameters<E["fromPartial"]>[0]): Promise<void> {
    if (this.#closed) throw new VhiveError("ERR_DISPOSED", "the event publisher is closed");
    const message = (type.fromPartial as (init: unknown) => unknown)(event);
    const envelope: Envelope = {
      timestamp: new Date(),
      namespace: this.#namespace,
      topic: topicOf(type),
      event: { typeUrl: type.$type, value: (type.encode as (message: unknown) => { finish(): Uint8Array })(message).finish() },
    };
    try {
      await this.#forward(envelope);
    } catch (error) {
      this.#retry(envelope, 1);
      throw error;
    }
  }

  /** Events waiting for a retry. */
  get queuedCount(): number {
    return this.#retries.size;
  }

  /** Drop the retries not yet made, wait for forwards in flight, close the connection. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#dropRetries();
    const connection = await this.#connection?.catch(() => undefined);
    await connection?.client.close();
  }

  /** Drop the retries and end the connection now. */
  async destroy(): Promise<void> {
    this.#closed = true;
    this.#dropRetries();
    const connection = await this.#connection?.catch(() => undefined);
    await connection?.client.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #dropRetries(): void {
    for (const [timer, envelope] of this.#retries) {
      clearTimeout(timer);
      this.#log.warn("event dropped: the publisher closed before it was delivered", { topic: envelope.topic });
    }
    this.#retries.clear();
  }

  async #forward(envelope: Envelope): Promise<void> {
    try {
      const { events } = await this.#connect();
      await events.forward({ envelope }, { timeoutMs: this.#forwardTimeoutMs });
    } catch (error) {
      if (!isVhiveError(error, "ERR_TTRPC_DISCONNECTED")) throw error;
      // containerd closed the connection (it restarted, say): a new one, and one more try.
      this.#connection = undefined;
      const { events } = await this.#connect();
      await events.forward({ envelope }, { timeoutMs: this.#forwardTimeoutMs });
    }
  }

  #connect(): Promise<{ client: TtrpcClient; events: ServiceClient<typeof eventsService.EventsDefinition> }> {
    if (this.#closed) return Promise.reject(new VhiveError("ERR_DISPOSED", "the event publisher is closed"));
    if (this.#connection) return this.#connection;
    const connection = connectTtrpc(this.#address, {
      metadata: { [NAMESPACE_METADATA_KEY]: this.#namespace },
      log: this.#log,
    }).then((client) => {
      void client.closed.then(() => {
        if (this.#connection === connection) this.#connection = undefined;
      });
      return { client, events: client.service(eventsService.EventsDefinition) };
    });
    connection.catch(() => {
      if (this.#connection === connection) this.#connection = undefined;
    });
    this.#connection = connection;
    return connection;
  }

  #retry(envelope: Envelope, attempt: number): void {
    if (this.#closed) return;
    if (attempt > this.#maxRetries) {
      this.#log.error("event dropped after retries", { topic: envelope.topic, retries: this.#maxRetries });
      return;
    }
    const timer = setTimeout(() => {
      this.#retries.delete(timer);
      this.#forward(envelope).then(
        () => this.#log.info("event delivered on retry", { topic: envelope.topic, attempt }),
        (error: unknown) => {
          this.#log.warn("event forward failed", { topic: envelope.topic, attempt, error: messageOf(error) });
          this.#retry(envelope, attempt + 1);
        },
      );
    }, this.#retryDelayMs * attempt);
    this.#retries.set(timer, envelope);
  }
}
