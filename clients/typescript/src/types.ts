// Request and response types of the SDK, all taken from the generated OpenAPI types
// (src/generated/openapi.ts, `npm run gen`): nothing here is copied by hand.
import type { components, operations } from "./generated/openapi.js";

export type Schemas = components["schemas"];
export type { components, operations, paths } from "./generated/openapi.js";

type Query<Op extends keyof operations> = operations[Op] extends { parameters: { query?: infer Q } }
  ? NonNullable<Q>
  : never;

// A 64-bit integer is a decimal string in proto3 JSON; requests also take a number.
type Int64Input<T, K extends keyof T> = Omit<T, K> & { [P in K]?: string | number };

export type ApiKey = Schemas["ApiKey"];
export type ApiKeyState = Schemas["ApiKeyState"];
export type Caller = Schemas["Caller"];
export type ChatModel = Schemas["ChatModel"];
export type ChatRequest = Omit<Schemas["ChatRequest"], "stream">;
export type ChatResponse = Schemas["ChatResponse"];
export type ChatUsage = Schemas["ChatUsage"];
export type Citation = Schemas["Citation"];
export type Collection = Schemas["Collection"];
export type Configuration = Schemas["Configuration"];
export type Conversation = Schemas["Conversation"];
export type CreateApiKeyRequest = Int64Input<Schemas["CreateApiKeyRequest"], "ttl_seconds">;
export type CreateApiKeyResponse = Schemas["CreateApiKeyResponse"];
export type CreateEmbeddingsRequest = Schemas["CreateEmbeddingsRequest"];
export type CreateEmbeddingsResponse = Schemas["CreateEmbeddingsResponse"];
export type CreateTokenRequest = Int64Input<Schemas["CreateTokenRequest"], "ttl_seconds">;
export type CreateTokenResponse = Schemas["CreateTokenResponse"];
export type DeleteCollectionResponse = Schemas["DeleteCollectionResponse"];
export type DeleteConversationResponse = Schemas["DeleteConversationResponse"];
export type DeleteDocumentResponse = Schemas["DeleteDocumentResponse"];
export type Document = Schemas["Document"];
export type DocumentInput = Schemas["DocumentInput"];
export type Embedding = Schemas["Embedding"];
export type EmbeddingModel = Schemas["EmbeddingModel"];
export type FinishReason = Schemas["FinishReason"];
export type GetHealthResponse = Schemas["GetHealthResponse"];
export type GetUsageResponse = Schemas["GetUsageResponse"];
export type IndexStatus = Schemas["IndexStatus"];
export type IngestDocumentsRequest = Schemas["IngestDocumentsRequest"];
export type IngestDocumentsResponse = Schemas["IngestDocumentsResponse"];
export type Job = Schemas["Job"];
export type JobState = Schemas["JobState"];
export type Message = Schemas["Message"];
export type RotateApiKeyRequest = Int64Input<Schemas["RotateApiKeyRequestBody"], "grace_period_seconds">;
export type RotateApiKeyResponse = Schemas["RotateApiKeyResponse"];
export type RevokeApiKeyResponse = Schemas["RevokeApiKeyResponse"];
export type SearchHit = Schemas["SearchHit"];
export type SearchMode = Schemas["SearchMode"];
export type SearchRequest = Schemas["SearchRequest"];
export type SearchResponse = Schemas["SearchResponse"];
export type StreamChatRequest = Schemas["StreamChatRequest"];
export type StreamChatResponse = Schemas["StreamChatResponse"];
export type SuggestQueriesResponse = Schemas["SuggestQueriesResponse"];
export type UploadDocumentResponse = Schemas["UploadDocumentResponse"];
export type WatchJobResponse = Schemas["WatchJobResponse"];

export type GetUsageQuery = Query<"GetUsage">;
export type ListApiKeysQuery = Omit<Query<"ListApiKeys">, "page_token">;
export type UploadDocumentQuery = Omit<Query<"UploadDocument">, "filename">;
export type PageQuery = { page_size?: number };
