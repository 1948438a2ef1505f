// The transport: fetch with credentials, per-attempt timeouts, retries of 429/503 (Retry-After,
// else jittered exponential back-off), and error replies turned into the error classes.
// Browser-safe: fetch, AbortController, Headers, crypto.getRandomValues only.
import {
  ConflictError,
  ConnectionFailedError,
  DeadlineExceededError,
  RaglineError,
  RateLimitedError,
  UnavailableError,
  errorFromResponse,
} from "./errors.js";

/**
 * Which failures a call may be retried after (as the Python SDK): "safe" for reads and
 * idempotent writes (429, 503, a lost connection), "keyed" for ingest (as safe: its
 * Idempotency-Key makes a repeat replay the first try's job), "rejected" for other writes
 * (only what the gateway refused before any work: a rate limit, the auth service down).
 */
export type RetryKind = "safe" | "keyed" | "rejected";

export type TokenSource = string | (() => string | Promise<string>);

export interface ClientOptions {
  /** Gateway address, e.g. "https://api.example.com" (default http://localhost:8000). */
  baseUrl?: string;
  /** An API key (rl_live_…). Sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** A JWT from POST /api/v1/tokens, or a function that returns a fresh one per request. */
  token?: TokenSource;
  /** Per attempt, until the reply (a stream: until its headers). Default 60 s. */
  timeoutMs?: number;
  /** Retries after the first try (429, 503, lost connections; see RetryKind). Default 3. */
  maxRetries?: number;
  /** Back-off: a random wait up to base * 2^n ("full jitter"). Default 250 ms. */
  retryBaseDelayMs?: number;
  /** Largest back-off wait. Default 8 s. */
  retryMaxDelayMs?: number;
  /** A Retry-After longer than this is not waited for: the error is raised at once. Default 30 s. */
  maxRetryAfterMs?: number;
  /** Called before each retry (logging, metrics). */
  onRetry?: (info: RetryInfo) => void;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** Headers added to every request. */
  headers?: Record<string, string>;
}

export interface RequestOptions {
  /** Cancels the request (and a stream being read). */
  signal?: AbortSignal;
  timeoutMs?: number;
  maxRetries?: number;
  headers?: Record<string, string>;
}

export interface RetryInfo {
  /** 1 for the first retry. */
  attempt: number;
  /** How long the client waits before it. */
  delayMs: number;
  /** What failed. */
  error: RaglineError;
  method: string;
  path: string;
}

export interface RawRequest extends RequestOptions {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined | null> | undefined;
  /** A JSON body, or raw bytes (the upload). */
  json?: unknown;
  body?: Blob | ArrayBuffer | ArrayBufferView | string;
  contentType?: string;
  /** Sent as Idempotency-Key, the same on every retry. */
  idempotencyKey?: string;
  /** Default: "safe" for GET and DELETE, "rejected" for POST. */
  retry?: RetryKind;
  /** Accept: text/event-stream; the reply's body is returned unread. */
  stream?: boolean;
}

const DEFAULT_BASE_URL = "http://localhost:8000";

export function randomId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export class Transport {
  readonly baseUrl: string;
  private readonly options: ClientOptions;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions = {}) {
    this.options = options;
    this.baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    // Bound to globalThis: a browser's fetch throws "Illegal invocation" when called as a method.
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  url(path: string, query?: RawRequest["query"]): string {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
    }
    return url.toString();
  }

  private async authorization(): Promise<string | undefined> {
    const { token, apiKey } = this.options;
    const credential = typeof token === "function" ? await token() : (token ?? apiKey);
    return credential ? `Bearer ${credential}` : undefined;
  }

  /** A JSON request; resolves to the parsed reply. */
  async json<T>(request: RawRequest): Promise<T> {
    const response = await this.send(request);
    const text = await response.text();
    return (text === "" ? {} : JSON.parse(text)) as T;
  }

  /** Sends with retries; resolves to a 2xx Response (for a stream, its body unread). */
  async send(request: RawRequest): Promise<Response> {
    const maxRetries = request.maxRetries ?? this.options.maxRetries ?? 3;
    const kind = request.retry ?? (request.method === "POST" ? "rejected" : "safe");
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.attempt(request);
      } catch (error) {
        if (!(error instanceof RaglineError) || attempt >= maxRetries) throw error;
        const delayMs = this.retryDelay(error, attempt, kind);
        if (delayMs === undefined) throw error;
        this.options.onRetry?.({ attempt: attempt + 1, delayMs, error, method: request.method, path: request.path });
        await sleep(delayMs, request.signal);
      }
    }
  }

  /** How long to wait before retrying after `error`, or undefined when it is not retried. */
  private retryDelay(error: RaglineError, attempt: number, kind: RetryKind): number | undefined {
    if (!retryable(error, kind)) return undefined;
    const base = this.options.retryBaseDelayMs ?? 250;
    const cap = this.options.retryMaxDelayMs ?? 8000;
    if (error.retryAfter !== undefined) {
      const afterMs = error.retryAfter * 1000;
      if (afterMs > (this.options.maxRetryAfterMs ?? 30_000)) return undefined;
      // At least what the server asked, plus a little jitter so clients told the same
      // window reset do not all come back at once.
      return afterMs + Math.random() * base;
    }
    // Full jitter: clients that failed together do not come back together.
    return Math.random() * Math.min(cap, base * 2 ** attempt);
  }

  private async attempt(request: RawRequest): Promise<Response> {
    const headers = new Headers(this.options.headers);
    for (const [name, value] of Object.entries(request.headers ?? {})) headers.set(name, value);
    const authorization = await this.authorization();
    if (authorization) headers.set("authorization", authorization);
    if (request.idempotencyKey !== undefined) headers.set("idempotency-key", request.idempotencyKey);
    headers.set("accept", request.stream ? "text/event-stream" : "application/json");
    let body: BodyInit | undefined;
    if (request.json !== undefined) {
      headers.set("content-type", "application/json");
      body = JSON.stringify(request.json);
    } else if (request.body !== undefined) {
      headers.set("content-type", request.contentType ?? "application/octet-stream");
      body = request.body as BodyInit;
    }

    const controller = new AbortController();
    const timeoutMs = request.timeoutMs ?? this.options.timeoutMs ?? 60_000;
    let timedOut = false;
    let streaming = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(clientTimeout(request, timeoutMs));
    }, timeoutMs);
    const onAbort = () => controller.abort(request.signal?.reason);
    if (request.signal?.aborted) onAbort();
    request.signal?.addEventListener("abort", onAbort, { once: true });
    const release = () => {
      clearTimeout(timer);
      request.signal?.removeEventListener("abort", onAbort);
    };

    try {
      let response: Response;
      try {
        const init: RequestInit = { method: request.method, headers, signal: controller.signal };
        if (body !== undefined) init.body = body;
        response = await this.fetchImpl(this.url(request.path, request.query), init);
      } catch (cause) {
        if (timedOut) throw clientTimeout(request, timeoutMs);
        if (request.signal?.aborted) throw request.signal.reason;
        throw new ConnectionFailedError(`${request.method} ${request.path}: ${describe(cause)}`, { cause });
      }
      if (!response.ok) {
        const text = await response.text().catch(() => "");
        let parsed: unknown = undefined;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = { message: text.slice(0, 200) || `HTTP ${response.status}` };
        }
        throw errorFromResponse(response.status, response.headers, parsed);
      }
      if (request.stream) {
        // The timeout covers the wait for the stream to start; the caller's signal keeps
        // working while it is read.
        streaming = true;
        return response;
      }
      // Read the body under the timeout, then hand over a Response that is already complete.
      const text = await response.text();
      const empty = response.status === 204 || response.status === 205;
      return new Response(empty ? null : text, { status: response.status, headers: response.headers });
    } catch (error) {
      if (timedOut && !(error instanceof RaglineError)) throw clientTimeout(request, timeoutMs);
      throw error;
    } finally {
      clearTimeout(timer);
      // A stream being read keeps the caller's signal linked until it ends.
      if (!streaming) release();
    }
  }
}

export function retryable(error: RaglineError, kind: RetryKind): boolean {
  const safe = kind !== "rejected";
  // A daily spend cap or a lock-out for unknown keys does not pass by retrying.
  if (error instanceof RateLimitedError) return error.reason === "" || error.reason === "RATE_LIMITED";
  if (error instanceof ConnectionFailedError) return safe;
  if (error instanceof UnavailableError) return safe || error.reason === "AUTH_UNAVAILABLE"; // refused before any work
  if (error instanceof ConflictError) return kind === "keyed" && error.reason === "IDEMPOTENCY_KEY_IN_USE";
  return false;
}

function clientTimeout(request: RawRequest, timeoutMs: number): DeadlineExceededError {
  return new DeadlineExceededError(
    `${request.method} ${request.path}: no answer within the client's timeout of ${timeoutMs} ms`,
    { reason: "CLIENT_TIMEOUT" },
  );
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause as Error & { cause?: unknown }).cause;
    return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message;
  }
  return String(cause);
}
