// The ragline client: one object with a namespace per part of the API (the REST routes of
// API v1, docs/gateway.md). Browser-safe; the Node-only file helpers are in ./node.ts.
import { errorFromStreamEvent } from "./errors.js";
import { type ClientOptions, type RequestOptions, Transport, randomId } from "./http.js";
import { type Page, Paginator } from "./pagination.js";
import { parseSse } from "./sse.js";
import type {
  ApiKey,
  Caller,
  ChatModel,
  ChatRequest,
  ChatResponse,
  ChatUsage,
  Citation,
  Collection,
  Configuration,
  Conversation,
  CreateApiKeyRequest,
  CreateApiKeyResponse,
  CreateEmbeddingsRequest,
  CreateEmbeddingsResponse,
  CreateTokenRequest,
  CreateTokenResponse,
  DeleteCollectionResponse,
  DeleteConversationResponse,
  DeleteDocumentResponse,
  Document,
  EmbeddingModel,
  GetHealthResponse,
  GetUsageQuery,
  GetUsageResponse,
  IndexStatus,
  IngestDocumentsRequest,
  IngestDocumentsResponse,
  Job,
  JobState,
  ListApiKeysQuery,
  PageQuery,
  RevokeApiKeyResponse,
  RotateApiKeyRequest,
  RotateApiKeyResponse,
  Schemas,
  SearchHit,
  SearchRequest,
  SearchResponse,
  StreamChatRequest,
  StreamChatResponse,
  SuggestQueriesResponse,
  UploadDocumentQuery,
  UploadDocumentResponse,
  WatchJobResponse,
} from "./types.js";

export const SDK_VERSION = "1.0.0";
/** The API version this SDK speaks (its major version follows it). */
export const API_VERSION = "v1";

const enc = encodeURIComponent;

/** Ingest: a request is bound to an Idempotency-Key so that retries replay one job. */
export interface IngestOptions extends RequestOptions {
  /** Defaults to a random key per call (the same on each of its retries). */
  idempotencyKey?: string;
}

export type UploadBody = Blob | ArrayBuffer | ArrayBufferView | string;

export interface UploadOptions extends RequestOptions, UploadDocumentQuery {
  /** Its extension picks the parser (.txt, .md, .html, .pdf, .docx). */
  filename: string;
  /** Defaults to the type the filename's extension implies, else application/octet-stream. */
  contentType?: string;
}

const CONTENT_TYPES: Record<string, string> = {
  txt: "text/plain",
  md: "text/markdown",
  markdown: "text/markdown",
  html: "text/html",
  htm: "text/html",
  pdf: "application/pdf",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
};

export function contentTypeOf(filename: string): string {
  const ext = filename.toLowerCase().split(".").pop() ?? "";
  return CONTENT_TYPES[ext] ?? "application/octet-stream";
}

const TERMINAL: ReadonlySet<JobState | undefined> = new Set(["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"]);

export function isTerminal(job: Job): boolean {
  return TERMINAL.has(job.state);
}

/** One event of a streamed answer; an in-band `error` event is thrown instead (an ApiError). */
export type ChatStreamEvent =
  | { type: "start"; start: Schemas["StreamStart"] }
  | { type: "delta"; delta: string }
  | { type: "citation"; citation: Citation }
  | { type: "usage"; usage: ChatUsage }
  | { type: "done"; done: Schemas["StreamDone"] }
  | { type: "ping"; ping: Schemas["StreamPing"] };

function chatEvent(raw: StreamChatResponse): ChatStreamEvent | undefined {
  if (raw.error) throw errorFromStreamEvent(raw.error);
  if (raw.start) return { type: "start", start: raw.start };
  if (raw.delta !== undefined) return { type: "delta", delta: raw.delta };
  if (raw.citation) return { type: "citation", citation: raw.citation };
  if (raw.usage) return { type: "usage", usage: raw.usage };
  if (raw.done) return { type: "done", done: raw.done };
  if (raw.ping) return { type: "ping", ping: raw.ping };
  return undefined; // an event kind newer than this SDK: skipped
}

/** A streamed answer: iterate its events once, or await `finalResponse()`. */
export class ChatStream implements AsyncIterable<ChatStreamEvent> {
  private consumed = false;
  private readonly collected: { -readonly [K in keyof ChatResponse]: ChatResponse[K] } & {
    answer: string;
    citations: Citation[];
  } = {
    answer: "",
    citations: [],
  };

  constructor(
    private readonly response: Response,
    private readonly controller: AbortController,
  ) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<ChatStreamEvent> {
    if (this.consumed) throw new Error("a ChatStream can be read once");
    this.consumed = true;
    const body = this.response.body;
    if (!body) return;
    const out = this.collected;
    for await (const message of parseSse(body)) {
      const event = chatEvent(JSON.parse(message.data) as StreamChatResponse);
      if (!event) continue;
      if (event.type === "start") {
        out.conversation_id = event.start.conversation_id;
        out.model = event.start.model;
        out.search_query = event.start.search_query;
      } else if (event.type === "delta") out.answer += event.delta;
      else if (event.type === "citation") out.citations.push(event.citation);
      else if (event.type === "usage") out.usage = event.usage;
      else if (event.type === "done") {
        out.message_id = event.done.message_id;
        out.finish_reason = event.done.finish_reason;
      }
      yield event;
    }
  }

  /** Reads the rest of the stream and returns the whole answer as Chat would have. */
  async finalResponse(): Promise<ChatResponse> {
    if (!this.consumed) for await (const _ of this) void _;
    return this.collected;
  }

  /** Stops the stream (the server stops generating). */
  abort(): void {
    this.controller.abort();
  }
}

function pageOf<T>(items: T[] | undefined, next: string | undefined): Page<T> {
  return { items: items ?? [], nextPageToken: next ?? "" };
}

/** Links a caller's signal to a controller of our own (to abort a stream from ChatStream). */
function linked(signal?: AbortSignal): AbortController {
  const controller = new AbortController();
  if (signal?.aborted) controller.abort(signal.reason);
  signal?.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  return controller;
}

export class Ragline {
  readonly transport: Transport;
  readonly embeddings: Embeddings;
  readonly ingest: Ingest;
  readonly jobs: Jobs;
  readonly search: Search;
  readonly collections: Collections;
  readonly documents: Documents;
  readonly chat: Chat;
  readonly conversations: Conversations;
  readonly keys: Keys;
  readonly tokens: Tokens;
  readonly usage: Usage;

  constructor(options: ClientOptions = {}) {
    this.transport = new Transport(options);
    this.embeddings = new Embeddings(this.transport);
    this.ingest = new Ingest(this.transport);
    this.jobs = new Jobs(this.transport);
    this.search = new Search(this.transport);
    this.collections = new Collections(this.transport);
    this.documents = new Documents(this.transport);
    this.chat = new Chat(this.transport);
    this.conversations = new Conversations(this.transport);
    this.keys = new Keys(this.transport);
    this.tokens = new Tokens(this.transport);
    this.usage = new Usage(this.transport);
  }

  /** GET /api/v1/caller: this credential's tenant, subject, scopes, tier and type. */
  caller(options: RequestOptions = {}): Promise<Caller> {
    return this.transport.json({ ...options, method: "GET", path: "/api/v1/caller" });
  }

  /** GET /api/v1/configuration (admin): each service's settings, secrets redacted, and the
   * rate-limit tiers. */
  configuration(options: RequestOptions = {}): Promise<Configuration> {
    return this.transport.json({ ...options, method: "GET", path: "/api/v1/configuration" });
  }

  /** GET /health (public): every component's state; a 503 UnavailableError when one is down. */
  health(options: RequestOptions = {}): Promise<GetHealthResponse> {
    return this.transport.json({ ...options, method: "GET", path: "/health" });
  }
}

class Resource {
  constructor(protected readonly t: Transport) {}
}

export class Embeddings extends Resource {
  /** POST /api/v1/embeddings: `{text}` or `{texts}`, optional `model`. */
  create(request: CreateEmbeddingsRequest, options: RequestOptions = {}): Promise<CreateEmbeddingsResponse> {
    return this.t.json({ ...options, method: "POST", path: "/api/v1/embeddings", json: request });
  }

  /** GET /api/v1/embedding-models, every page. */
  models(query: PageQuery = {}, options: RequestOptions = {}): Paginator<EmbeddingModel> {
    return new Paginator(async (page_token) => {
      const r = await this.t.json<Schemas["ListEmbeddingModelsResponse"]>({
        ...options,
        method: "GET",
        path: "/api/v1/embedding-models",
        query: { ...query, page_token },
      });
      return pageOf(r.models, r.next_page_token);
    });
  }
}

export class Ingest extends Resource {
  /** POST /api/v1/ingest. Small requests reply with their job finished; large ones at once. */
  documents(request: IngestDocumentsRequest, options: IngestOptions = {}): Promise<IngestDocumentsResponse> {
    return this.t.json({
      ...options,
      idempotencyKey: options.idempotencyKey ?? randomId(),
      retry: "keyed",
      method: "POST",
      path: "/api/v1/ingest",
      json: request,
    });
  }

  /** POST /api/v1/collections/{c}/documents:upload: one file's bytes; the server extracts the text. */
  file(collection: string, data: UploadBody, options: UploadOptions): Promise<UploadDocumentResponse> {
    const { filename, contentType, title, embedding_model, document_id, ...rest } = options;
    return this.t.json({
      ...rest,
      method: "POST",
      path: `/api/v1/collections/${enc(collection)}/documents:upload`,
      query: { filename, title, embedding_model, document_id },
      body: data,
      contentType: contentType ?? contentTypeOf(filename),
    });
  }
}

export interface WaitOptions extends RequestOptions {
  /** Called with each state of the job as it progresses. */
  onProgress?: (job: Job) => void;
}

export class Jobs extends Resource {
  /** GET /api/v1/jobs/{id}. */
  get(jobId: string, options: RequestOptions = {}): Promise<Job> {
    return this.t.json({ ...options, method: "GET", path: `/api/v1/jobs/${enc(jobId)}` });
  }

  /**
   * GET /api/v1/jobs/{id}:watch: the job's states as it progresses (server-sent events),
   * ending with its final state. A stream cut before the end is resumed.
   */
  async *watch(jobId: string, options: RequestOptions = {}): AsyncGenerator<Job> {
    for (let resumes = 0; ; resumes++) {
      const response = await this.t.send({
        ...options,
        method: "GET",
        path: `/api/v1/jobs/${enc(jobId)}:watch`,
        stream: true,
      });
      let last: Job | undefined;
      if (response.body) {
        for await (const message of parseSse(response.body)) {
          const event = JSON.parse(message.data) as WatchJobResponse & { error?: Schemas["StreamError"] };
          if (event.error) throw errorFromStreamEvent(event.error);
          if (!event.job) continue;
          last = event.job;
          yield event.job;
          if (isTerminal(event.job)) return;
        }
      }
      if (last && isTerminal(last)) return;
      if (resumes >= 5) throw new Error(`the watch of job ${jobId} ended ${resumes + 1} times before the job did`);
    }
  }

  /** Waits for the job to end (succeeded or failed) and returns its final state. */
  async wait(jobId: string, options: WaitOptions = {}): Promise<Job> {
    const { onProgress, ...rest } = options;
    let last: Job | undefined;
    for await (const job of this.watch(jobId, rest)) {
      last = job;
      onProgress?.(job);
    }
    return last ?? this.get(jobId, rest);
  }
}

export class Search extends Resource {
  /** POST /api/v1/search with every option (mode, filters, rerank, facets, page_size, page_token). */
  query(request: SearchRequest, options: RequestOptions = {}): Promise<SearchResponse> {
    return this.t.json({ ...options, method: "POST", path: "/api/v1/search", json: request });
  }

  /** Every hit across the pages of a search (`page_size` per page). */
  hits(request: Omit<SearchRequest, "page_token">, options: RequestOptions = {}): Paginator<SearchHit> {
    return new Paginator(async (page_token) => {
      const r = await this.query(page_token ? { ...request, page_token } : request, options);
      return pageOf(r.hits, r.next_page_token);
    });
  }

  /** GET /api/v1/collections/{c}/suggestions: query completions for a prefix. */
  suggest(
    collection: string,
    prefix: string,
    query: { limit?: number } = {},
    options: RequestOptions = {},
  ): Promise<SuggestQueriesResponse> {
    return this.t.json({
      ...options,
      method: "GET",
      path: `/api/v1/collections/${enc(collection)}/suggestions`,
      query: { prefix, ...query },
    });
  }
}

export class Collections extends Resource {
  /** GET /api/v1/collections, every page. */
  list(query: PageQuery = {}, options: RequestOptions = {}): Paginator<Collection> {
    return new Paginator(async (page_token) => {
      const r = await this.t.json<Schemas["ListCollectionsResponse"]>({
        ...options,
        method: "GET",
        path: "/api/v1/collections",
        query: { ...query, page_token },
      });
      return pageOf(r.collections, r.next_page_token);
    });
  }

  get(collection: string, options: RequestOptions = {}): Promise<Collection> {
    return this.t.json({ ...options, method: "GET", path: `/api/v1/collections/${enc(collection)}` });
  }

  /** Deletes the collection with its documents and chunks. */
  delete(collection: string, options: RequestOptions = {}): Promise<DeleteCollectionResponse> {
    return this.t.json({ ...options, method: "DELETE", path: `/api/v1/collections/${enc(collection)}` });
  }

  /** GET /api/v1/collections/{c}/indexStatus: whether the answering retriever replica's
   * index holds what the database does (versions, chunks, the last reconciliation's gap). */
  indexStatus(collection: string, options: RequestOptions = {}): Promise<IndexStatus> {
    return this.t.json({ ...options, method: "GET", path: `/api/v1/collections/${enc(collection)}/indexStatus` });
  }
}

export class Documents extends Resource {
  /** GET /api/v1/collections/{c}/documents, every page (without their content). */
  list(collection: string, query: PageQuery = {}, options: RequestOptions = {}): Paginator<Document> {
    return new Paginator(async (page_token) => {
      const r = await this.t.json<Schemas["ListDocumentsResponse"]>({
        ...options,
        method: "GET",
        path: `/api/v1/collections/${enc(collection)}/documents`,
        query: { ...query, page_token },
      });
      return pageOf(r.documents, r.next_page_token);
    });
  }

  /** One document with its content. */
  get(collection: string, documentId: string, options: RequestOptions = {}): Promise<Document> {
    return this.t.json({
      ...options,
      method: "GET",
      path: `/api/v1/collections/${enc(collection)}/documents/${enc(documentId)}`,
    });
  }

  delete(collection: string, documentId: string, options: RequestOptions = {}): Promise<DeleteDocumentResponse> {
    return this.t.json({
      ...options,
      method: "DELETE",
      path: `/api/v1/collections/${enc(collection)}/documents/${enc(documentId)}`,
    });
  }
}

export class Chat extends Resource {
  /** POST /api/v1/chat: a grounded answer with citations (pass conversation_id to continue). */
  send(request: ChatRequest, options: RequestOptions = {}): Promise<ChatResponse> {
    return this.t.json({ ...options, method: "POST", path: "/api/v1/chat", json: request });
  }

  /**
   * POST /api/v1/chat:stream: the answer as events (start, delta, citation, usage, done,
   * ping). Resolves once the stream has started; errors before it are thrown here, an
   * in-band error while it is read.
   */
  async stream(request: StreamChatRequest, options: RequestOptions = {}): Promise<ChatStream> {
    const controller = linked(options.signal);
    const response = await this.t.send({
      ...options,
      signal: controller.signal,
      method: "POST",
      path: "/api/v1/chat:stream",
      json: request,
      stream: true,
    });
    return new ChatStream(response, controller);
  }

  /** GET /api/v1/chat-models, every page. */
  models(query: PageQuery = {}, options: RequestOptions = {}): Paginator<ChatModel> {
    return new Paginator(async (page_token) => {
      const r = await this.t.json<Schemas["ListChatModelsResponse"]>({
        ...options,
        method: "GET",
        path: "/api/v1/chat-models",
        query: { ...query, page_token },
      });
      return pageOf(r.models, r.next_page_token);
    });
  }
}

export class Conversations extends Resource {
  /** GET /api/v1/conversations: the caller's conversations, every page (without messages). */
  list(query: PageQuery = {}, options: RequestOptions = {}): Paginator<Conversation> {
    return new Paginator(async (page_token) => {
      const r = await this.t.json<Schemas["ListConversationsResponse"]>({
        ...options,
        method: "GET",
        path: "/api/v1/conversations",
        query: { ...query, page_token },
      });
      return pageOf(r.conversations, r.next_page_token);
    });
  }

  /** One conversation with its messages, oldest first. */
  get(conversationId: string, options: RequestOptions = {}): Promise<Conversation> {
    return this.t.json({ ...options, method: "GET", path: `/api/v1/conversations/${enc(conversationId)}` });
  }

  delete(conversationId: string, options: RequestOptions = {}): Promise<DeleteConversationResponse> {
    return this.t.json({ ...options, method: "DELETE", path: `/api/v1/conversations/${enc(conversationId)}` });
  }
}

/** API keys (the `admin` scope). */
export class Keys extends Resource {
  /** POST /api/v1/keys: the plaintext `key` is in this reply only. */
  create(request: CreateApiKeyRequest, options: RequestOptions = {}): Promise<CreateApiKeyResponse> {
    return this.t.json({ ...options, method: "POST", path: "/api/v1/keys", json: int64(request, "ttl_seconds") });
  }

  /** GET /api/v1/keys[?tenant=], every page. */
  list(query: ListApiKeysQuery = {}, options: RequestOptions = {}): Paginator<ApiKey> {
    return new Paginator(async (page_token) => {
      const r = await this.t.json<Schemas["ListApiKeysResponse"]>({
        ...options,
        method: "GET",
        path: "/api/v1/keys",
        query: { ...query, page_token },
      });
      return pageOf(r.api_keys, r.next_page_token);
    });
  }

  get(keyId: string, options: RequestOptions = {}): Promise<ApiKey> {
    return this.t.json({ ...options, method: "GET", path: `/api/v1/keys/${enc(keyId)}` });
  }

  /** Issues a new key; the old one works for the grace period (default 24 h). */
  rotate(keyId: string, request: RotateApiKeyRequest = {}, options: RequestOptions = {}): Promise<RotateApiKeyResponse> {
    return this.t.json({
      ...options,
      method: "POST",
      path: `/api/v1/keys/${enc(keyId)}:rotate`,
      json: int64(request, "grace_period_seconds"),
    });
  }

  /** The key stops working everywhere within about a second. */
  revoke(keyId: string, options: RequestOptions = {}): Promise<RevokeApiKeyResponse> {
    return this.t.json({ ...options, method: "POST", path: `/api/v1/keys/${enc(keyId)}:revoke`, json: {}, retry: "safe" });
  }
}

export class Tokens extends Resource {
  /** POST /api/v1/tokens: a short-lived JWT for this API key (not callable with a JWT). */
  create(request: CreateTokenRequest = {}, options: RequestOptions = {}): Promise<CreateTokenResponse> {
    return this.t.json({ ...options, method: "POST", path: "/api/v1/tokens", json: int64(request, "ttl_seconds") });
  }
}

export class Usage extends Resource {
  /**
   * GET /api/v1/analytics/usage: totals, per endpoint and per hour/day (64-bit counters are
   * decimal strings, as proto3 JSON prints them).
   */
  get(query: GetUsageQuery = {}, options: RequestOptions = {}): Promise<GetUsageResponse> {
    return this.t.json({ ...options, method: "GET", path: "/api/v1/analytics/usage", query });
  }
}

/** A 64-bit field given as a number is sent as the decimal string proto3 JSON uses. */
function int64<T extends object>(request: T, field: string): T {
  const value = (request as Record<string, unknown>)[field];
  return typeof value === "number" ? { ...request, [field]: String(Math.trunc(value)) } : request;
}
