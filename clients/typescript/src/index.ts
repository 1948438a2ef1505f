// @ragline/client: the official TypeScript SDK of the ragline API v1. Browser-safe; the
// Node-only file and folder helpers are in "@ragline/client/node".
export {
  API_VERSION,
  Chat,
  ChatStream,
  type ChatStreamEvent,
  Collections,
  Conversations,
  Documents,
  Embeddings,
  Ingest,
  type IngestOptions,
  Jobs,
  Keys,
  Ragline,
  SDK_VERSION,
  Search,
  Tokens,
  type UploadBody,
  type UploadOptions,
  Usage,
  type WaitOptions,
  contentTypeOf,
  isTerminal,
} from "./client.js";
export * from "./errors.js";
export {
  type ClientOptions,
  type RequestOptions,
  type RetryInfo,
  type RetryKind,
  type TokenSource,
  Transport,
  retryable,
} from "./http.js";
export { type Page, type PageFetcher, Paginator } from "./pagination.js";
export { type ServerSentEvent, parseSse } from "./sse.js";
export type * from "./types.js";
