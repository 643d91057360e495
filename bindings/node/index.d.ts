// Types of the agentburn package: every export of index.mjs and index.cjs.

/** The C ABI version this package was written for (the library's SOVERSION). */
export declare const ABI_VERSION: number;
/** The path or name the library was loaded from. */
export declare const libraryPath: string;
/** The loaded libagentburn's version, "MAJOR.MINOR.PATCH". */
export declare function libraryVersion(): string;

export type LogLevel = 'debug' | 'info' | 'warning' | 'error';
export type Logger = (level: LogLevel, message: string) => void;

/** The client's options; absent (or undefined) keeps the library's default. */
export interface AgentBurnOptions {
  /** Base URL of an AgentBurn-compatible server; absent: offline (events wait on disk). */
  baseUrl?: string | URL;
  /** Sent as x-api-key and Authorization: Bearer; never logged. */
  apiKey?: string;
  /** The agent of every event that names none. */
  agentId?: string;
  /** The buffer root; default AGENTBURN_BUFFER_DIR, else ~/.local/share/agentburn/buffer. */
  bufferDir?: string | URL;
  /** What a crash can lose: 'process' (default), 'buffered' or 'system'. */
  durability?: 'buffered' | 'process' | 'system';
  /** How often the 'buffered' stage is written, 1..1000 ms (5). */
  bufferedFlushIntervalMs?: number;
  /** Cap on pending events and dead letters, in encoded bytes (1 GiB; 0: none). */
  diskCapBytes?: number | bigint;
  /** What track does at the cap: 'reject' (default) or 'dropOldest'. */
  fullPolicy?: 'reject' | 'dropOldest' | 'drop_oldest';
  /** Rename an unreadable buffer folder and start fresh (false). */
  setAsideCorrupt?: boolean;
  /** Events per batch, 1..1000 (1000). */
  batchMaxEvents?: number;
  /** Encoded bytes per batch, 1 KiB..64 MiB (1 MiB). */
  batchMaxBytes?: number;
  /** A partial batch goes once its first event waited this long (1000 ms). */
  flushIntervalMs?: number;
  /** Batches sent at once, 1..16 (2). */
  maxBatchesInFlight?: number;
  /** TCP+TLS connect timeout (5000 ms). */
  connectTimeoutMs?: number;
  /** Whole-request timeout (30000 ms). */
  requestTimeoutMs?: number;
  /** How long registerAgent waits for the server before a provisional id (2000 ms). */
  registerTimeoutMs?: number;
  /** First backoff ceiling (500 ms). */
  retryInitialMs?: number;
  /** Backoff ceiling and cap on Retry-After (60000 ms). */
  retryMaxMs?: number;
  /** 5xx answers to one batch before it is split (3). */
  splitAfterFailures?: number;
  /** Proxy URL; default: the environment's. */
  proxy?: string;
  /** PEM file of CA certificates to trust instead of the system's. */
  caBundle?: string | URL;
  /** gzip request bodies (false). */
  gzip?: boolean;
  /** Allow plain http:// to hosts other than loopback (false). */
  allowInsecureHttp?: boolean;
  /** Send only the seed schema's fields (false). */
  seedFieldsOnly?: boolean;
  /** How long close() without a timeout, and the close at exit, wait (2000 ms). */
  closeTimeoutMs?: number;
  /** A price catalog file to use instead of the compiled-in one. */
  priceCatalog?: string | URL;
  /** Catalog entries to add or replace: {"my-ft": {input: 3, output: 12}} (USD per million). */
  priceOverrides?: Record<string, unknown> | string;
  /** Refuse an event that cannot be priced instead of storing it unpriced (false). */
  requirePrice?: boolean;
  /** Budgets: [{name, limitUsd, period?, action?, alertAt?, agentId?, taskId?, workflowId?, provider?, model?}] ("*": each value its own window). */
  budgets?: Budget[] | Budget | string;
  /** A reservation neither settled nor released within this is dropped (600000 ms). */
  reservationTtlMs?: number;
  /** Keep the spend ledger (true; budgets keep it on whatever this says). */
  ledger?: boolean;
  /** Where budgets keep spend and holds: 'local' (default) or 'redis://[:password@]host[:port][/db]', shared by every process naming that Redis (README.md, "Fleet budgets"). */
  budgetStore?: string;
  /** The Redis password when the URL has none (else $AGENTBURN_BUDGET_STORE_PASSWORD). */
  budgetStorePassword?: string;
  /** Every call to the store waits at most this long (50 ms). */
  budgetStoreTimeoutMs?: number;
  /** What reserve does while the store cannot be reached ('local'). */
  budgetStoreUnavailable?: 'local' | 'closed' | 'open';
  /** Called (on the main thread, from track) when a budget's spend crosses an alertAt threshold. */
  budgetAlert?: ((alert: BudgetWindow & { threshold: number }) => void) | null;
  /** Receives the library's messages; default console.warn; null: none. */
  logger?: Logger | null;
  /** The lowest level given to the logger ('warning'). */
  logLevel?: LogLevel;
}

/** The fields of an event besides provider and costUsd (the AgentBurn schema's camelCase). */
export interface EventFields {
  operation?: 'llm_call' | 'tool_call' | 'compute' | 'api_call';
  agentId?: string;
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  cachedInputTokens?: number;
  cacheWriteInputTokens?: number;
  reasoningTokens?: number;
  taskId?: string;
  workflowId?: string;
  metadata?: Record<string, unknown>;
  timestamp?: string | Date;
  idempotency_key?: string;
  idempotencyKey?: string;
  costUsd?: number;
  /** Settles this reservation (from reserve()) with the event's cost. */
  reservation?: Reservation | string;
}

export interface Budget {
  name: string;
  limitUsd: number;
  period?: 'daily' | 'weekly' | 'monthly' | 'total';
  action?: 'block' | 'alert';
  alertAt?: number[];
  agentId?: string;
  taskId?: string;
  workflowId?: string;
  provider?: string;
  model?: string;
}

export interface BudgetScope {
  agentId?: string;
  taskId?: string;
  workflowId?: string;
  provider?: string;
  model?: string;
}

export interface ReserveRequest extends BudgetScope {
  /** The estimate in USD; or model with inputTokens and maxOutputTokens, priced by the catalog. */
  estimateUsd?: number;
  inputTokens?: number;
  maxOutputTokens?: number;
}

export interface BudgetWindow {
  name: string;
  scope: string;
  period: string;
  action: 'block' | 'alert';
  limitUsd: number;
  spentUsd: number;
  heldUsd: number;
  remainingUsd: number;
  resetsAt: string | null;
}

/** Money held on the matching budgets by reserve(): settle it with track(..., { reservation }), or release() it. */
export declare class Reservation {
  readonly id: string;
  settled: boolean;
  release(): void;
}

export interface TokenUsage {
  provider?: string;
  inputTokens?: number;
  outputTokens?: number;
  cachedInputTokens?: number;
  cacheWriteInputTokens?: number;
  reasoningTokens?: number;
}

export interface PriceAnswer {
  costUsd: number;
  costSource: 'reported' | 'computed' | 'unpriced';
  pricesVersion: string;
  priceKey?: string;
  match?: string;
  breakdown?: { input: number; cached: number; cacheWrite: number; output: number; reasoning: number };
  nearest?: string[];
}

export interface CatalogEntry {
  priceKey: string;
  provider: string;
  match: string;
  pricesVersion: string;
  usdPerMillion: { input: number; output: number; cacheRead?: number; cacheWrite?: number; reasoning?: number };
}

export interface Stats {
  pending: number;
  pending_bytes: number;
  delivered: number;
  resent: number;
  retries: number;
  dead_letters: number;
  dropped: number;
  rejected: number;
  adopted: number;
  unpriced: number;
  last_error: string;
  last_delivery_at: string | null;
}

export interface DeadLetter {
  event: Record<string, unknown>;
  reason: string;
}

export interface AgentDetails {
  description?: string;
  projectId?: string;
  tags?: string[];
}

export declare class AgentBurn {
  constructor(options: AgentBurnOptions);
  constructor(baseUrl?: string | URL | null, apiKey?: string | null, agentId?: string | null,
    options?: Omit<AgentBurnOptions, 'baseUrl' | 'apiKey' | 'agentId'>);
  baseUrl: string | null;
  agentId: string | null;
  /** True once close() began. */
  readonly closed: boolean;
  /** Records one event, durable when it returns; returns its idempotency key. */
  track(provider: string, costUsd?: number | null, fields?: EventFields): string;
  track(provider: string, fields: EventFields): string;
  /** Tracks a provider's response (object, JSON text, SSE transcript or bytes), priced. */
  trackResponse(response: unknown, fields?: EventFields & { provider?: string }): string;
  /** What an event of `model` with these tokens costs; stores nothing. */
  price(model: string, usage?: TokenUsage): PriceAnswer;
  /** The catalog entry that (provider, model) matches. */
  lookupPrice(model: string, provider?: string): CatalogEntry;
  stats(): Stats;
  /** The server's id, or offline a provisional "ab-local-..." one. */
  registerAgent(name: string, details?: AgentDetails): Promise<string>;
  registerAgent(agent: AgentDetails & { name: string }): Promise<string>;
  /** true once nothing pending now is left, false at the timeout (default 5000 ms). */
  flush(timeoutMs?: number): Promise<boolean>;
  deadLetters(limit?: number): Promise<DeadLetter[]>;
  requeueDeadLetters(): Promise<void>;
  purgeDeadLetters(): Promise<void>;
  /** Holds an estimate on every matching block budget; BudgetExceededError past a limit. */
  reserve(request?: ReserveRequest): Reservation;
  /** Drops a reservation's hold unused. */
  release(reservation: Reservation | string): void;
  /** The windows of every budget matching the scope; holds nothing. */
  check(scope?: BudgetScope): BudgetWindow[];
  /** Every budget's windows. */
  budgets(): BudgetWindow[];
  /** Waits up to timeoutMs (default closeTimeoutMs) for delivery, then closes. */
  close(timeoutMs?: number): Promise<boolean>;
  [Symbol.asyncDispose](): Promise<void>;
  /** Wraps an openai or @anthropic-ai/sdk client so that every call is tracked. */
  instrument<T extends object>(client: T, options?: InstrumentOptions): T;
}

export interface CallContext {
  agentId?: string;
  taskId?: string;
  workflowId?: string;
}

export interface InstrumentOptions extends CallContext {
  /** Add stream_options.include_usage to OpenAI chat streams that lack it (true). */
  includeUsage?: boolean;
  /** Reserve each call's estimate first; BudgetExceededError before the request is sent (false). */
  reserve?: boolean;
}

/** instrument(ab, client, options): the same as ab.instrument(client, options). */
export declare function instrument<T extends object>(ab: AgentBurn, client: T, options?: InstrumentOptions): T;
/** Runs fn with these fields set for every instrumented call made inside it, across awaits. */
export declare function withAgentBurn<R>(context: CallContext, fn: () => R): R;
/** The fields withAgentBurn set for the current call, or {}. */
export declare function currentContext(): CallContext;

export declare class AgentBurnError extends Error {
  constructor(code: number, message?: string);
  /** The C ABI's result code (AB_E*, negative). */
  code: number;
}
export declare class InvalidEventError extends AgentBurnError {}
export declare class InvalidOptionError extends InvalidEventError {
  constructor(code: number, message: string, option?: string);
  option: string | undefined;
}
export declare class OutOfMemoryError extends AgentBurnError {}
export declare class StorageError extends AgentBurnError {}
export declare class BufferFullError extends AgentBurnError {}
export declare class BufferLockedError extends AgentBurnError {}
export declare class NetworkError extends AgentBurnError {}
export declare class HttpError extends AgentBurnError {}
export declare class AuthError extends AgentBurnError {}
export declare class DeadlineError extends AgentBurnError {}
export declare class ClosedError extends AgentBurnError {}
export declare class InternalError extends AgentBurnError {}
export declare class BudgetExceededError extends AgentBurnError {
  constructor(code: number, message: string, detail?: Partial<BudgetWindow & { estimateUsd: number }>);
  detail: Partial<BudgetWindow & { estimateUsd: number }>;
  budget?: string;
  scope: string;
  spent?: number;
  held?: number;
  limit?: number;
  estimate?: number;
  period?: string;
  resetsAt?: string | null;
}

declare const agentburn: {
  AgentBurn: typeof AgentBurn;
  Reservation: typeof Reservation;
  instrument: typeof instrument;
  withAgentBurn: typeof withAgentBurn;
  currentContext: typeof currentContext;
  ABI_VERSION: typeof ABI_VERSION;
  libraryPath: typeof libraryPath;
  libraryVersion: typeof libraryVersion;
  AgentBurnError: typeof AgentBurnError;
  InvalidEventError: typeof InvalidEventError;
  InvalidOptionError: typeof InvalidOptionError;
  OutOfMemoryError: typeof OutOfMemoryError;
  StorageError: typeof StorageError;
  BufferFullError: typeof BufferFullError;
  BufferLockedError: typeof BufferLockedError;
  NetworkError: typeof NetworkError;
  HttpError: typeof HttpError;
  AuthError: typeof AuthError;
  DeadlineError: typeof DeadlineError;
  ClosedError: typeof ClosedError;
  InternalError: typeof InternalError;
  BudgetExceededError: typeof BudgetExceededError;
};
export default agentburn;
