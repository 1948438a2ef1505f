// One error class hierarchy for every failure the API reports: the gateway and the services
// answer with a google.rpc.Status JSON body (code, message, details: ErrorInfo, BadRequest),
// a stream reports the same in-band, and the client adds its own (network, timeout).
import type { Schemas } from "./types.js";

export type Status = Schemas["Status"];
export type FieldViolation = Schemas["BadRequestFieldViolation"];

const ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";

/** gRPC status codes (google.rpc.Code) by name. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export interface ErrorFields {
  /** HTTP status of the reply (0 for an error reported inside a stream). */
  status: number;
  /** google.rpc.Code of the Status body. */
  code: number;
  message: string;
  /** ErrorInfo.reason, e.g. "COLLECTION_NOT_FOUND", "RATE_LIMITED" ("" when absent). */
  reason?: string;
  domain?: string;
  metadata?: Record<string, string>;
  details?: unknown[];
  fieldViolations?: FieldViolation[];
  headers?: Headers;
  /** Seconds to wait before retrying (the Retry-After header), when the server said so. */
  retryAfter?: number;
}

/** Base class of every error the SDK raises. */
export class RaglineError extends Error {
  override name = "RaglineError";
}

/** The API answered with an error (a google.rpc.Status). */
export class ApiError extends RaglineError {
  override name = "ApiError";
  readonly status: number;
  readonly code: number;
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Record<string, string>;
  readonly details: unknown[];
  readonly fieldViolations: FieldViolation[];
  readonly headers: Headers;
  readonly retryAfter: number | undefined;
  /** The x-request-id of the reply, to quote when reporting a problem. */
  readonly requestId: string | undefined;

  constructor(fields: ErrorFields) {
    super(fields.message);
    this.status = fields.status;
    this.code = fields.code;
    this.reason = fields.reason ?? "";
    this.domain = fields.domain ?? "";
    this.metadata = fields.metadata ?? {};
    this.details = fields.details ?? [];
    this.fieldViolations = fields.fieldViolations ?? [];
    this.headers = fields.headers ?? new Headers();
    this.retryAfter = fields.retryAfter;
    this.requestId = this.headers.get("x-request-id") ?? undefined;
  }
}

/** 400 INVALID_ARGUMENT (also FAILED_PRECONDITION, OUT_OF_RANGE): `fieldViolations` names the fields. */
export class InvalidArgumentError extends ApiError {
  override name = "InvalidArgumentError";
}
/** 401: no, malformed, unknown, revoked or expired credentials. */
export class AuthenticationError extends ApiError {
  override name = "AuthenticationError";
}
/** 403: the credential lacks the route's scope. */
export class PermissionDeniedError extends ApiError {
  override name = "PermissionDeniedError";
}
/** 404: unknown resource (reason names which: COLLECTION_NOT_FOUND, JOB_NOT_FOUND, ...) or path. */
export class NotFoundError extends ApiError {
  override name = "NotFoundError";
}
/** 409: ALREADY_EXISTS or ABORTED (e.g. an Idempotency-Key whose first request still runs). */
export class ConflictError extends ApiError {
  override name = "ConflictError";
}
/** 405: the path does not serve this method. */
export class MethodNotAllowedError extends ApiError {
  override name = "MethodNotAllowedError";
}
/** 413: the body is over the gateway's cap. */
export class PayloadTooLargeError extends ApiError {
  override name = "PayloadTooLargeError";
}
/** 429: rate limit, spend cap or failed-attempt limit; `retryAfter` in seconds. */
export class RateLimitedError extends ApiError {
  override name = "RateLimitedError";
}
/** 500 and other server failures. */
export class InternalServerError extends ApiError {
  override name = "InternalServerError";
}
/** 501. */
export class UnimplementedError extends ApiError {
  override name = "UnimplementedError";
}
/** 503: a service, provider or dependency is down (the message names it). */
export class UnavailableError extends ApiError {
  override name = "UnavailableError";
}
/** 504: a service did not answer within the gateway's deadline. */
export class DeadlineExceededError extends ApiError {
  override name = "DeadlineExceededError";
}

/** The request never got an answer: connection refused, reset, DNS. */
export class ConnectionError extends RaglineError {
  override name = "ConnectionError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
/** The client's own timeout (`timeoutMs`) passed before the reply. */
export class RequestTimeoutError extends RaglineError {
  override name = "RequestTimeoutError";
}

type ApiErrorClass = new (fields: ErrorFields) => ApiError;

const BY_HTTP: Record<number, ApiErrorClass> = {
  400: InvalidArgumentError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  405: MethodNotAllowedError,
  409: ConflictError,
  413: PayloadTooLargeError,
  429: RateLimitedError,
  500: InternalServerError,
  501: UnimplementedError,
  503: UnavailableError,
  504: DeadlineExceededError,
};

const BY_CODE: Record<number, ApiErrorClass> = {
  [GrpcCode.INVALID_ARGUMENT]: InvalidArgumentError,
  [GrpcCode.FAILED_PRECONDITION]: InvalidArgumentError,
  [GrpcCode.OUT_OF_RANGE]: InvalidArgumentError,
  [GrpcCode.UNAUTHENTICATED]: AuthenticationError,
  [GrpcCode.PERMISSION_DENIED]: PermissionDeniedError,
  [GrpcCode.NOT_FOUND]: NotFoundError,
  [GrpcCode.ALREADY_EXISTS]: ConflictError,
  [GrpcCode.ABORTED]: ConflictError,
  [GrpcCode.RESOURCE_EXHAUSTED]: RateLimitedError,
  [GrpcCode.UNIMPLEMENTED]: UnimplementedError,
  [GrpcCode.UNAVAILABLE]: UnavailableError,
  [GrpcCode.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [GrpcCode.INTERNAL]: InternalServerError,
  [GrpcCode.UNKNOWN]: InternalServerError,
  [GrpcCode.DATA_LOSS]: InternalServerError,
};

/** Seconds from a Retry-After header (delta-seconds or an HTTP date). */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - now) / 1000);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** The fields of a google.rpc.Status body (unknown shapes degrade to the HTTP status). */
function statusFields(body: unknown, status: number): ErrorFields {
  const record = asRecord(body);
  const details = Array.isArray(record?.["details"]) ? (record["details"] as unknown[]) : [];
  const fields: ErrorFields = {
    status,
    code: typeof record?.["code"] === "number" ? record["code"] : GrpcCode.UNKNOWN,
    message:
      typeof record?.["message"] === "string" && record["message"] !== ""
        ? record["message"]
        : `HTTP ${status}`,
    details,
    fieldViolations: [],
  };
  for (const detail of details) {
    const d = asRecord(detail);
    if (d?.["@type"] === ERROR_INFO) {
      fields.reason = typeof d["reason"] === "string" ? d["reason"] : "";
      fields.domain = typeof d["domain"] === "string" ? d["domain"] : "";
      fields.metadata = (asRecord(d["metadata"]) as Record<string, string> | undefined) ?? {};
    } else if (d?.["@type"] === BAD_REQUEST && Array.isArray(d["field_violations"])) {
      fields.fieldViolations!.push(...(d["field_violations"] as FieldViolation[]));
    }
  }
  return fields;
}

/** The error for an HTTP error reply whose body has been read (JSON or not). */
export function errorFromResponse(status: number, headers: Headers, body: unknown): ApiError {
  const fields = statusFields(body, status);
  fields.headers = headers;
  fields.retryAfter = parseRetryAfter(headers.get("retry-after"));
  const cls = BY_HTTP[status] ?? BY_CODE[fields.code] ?? (status >= 500 ? InternalServerError : ApiError);
  return new cls(fields);
}

/** The error for an in-band stream error event ({code, message, reason}). */
export function errorFromStreamEvent(event: { code?: number; message?: string; reason?: string }): ApiError {
  const code = event.code ?? GrpcCode.UNKNOWN;
  const cls = BY_CODE[code] ?? ApiError;
  return new cls({
    status: 0,
    code,
    message: event.message || "the stream failed",
    reason: event.reason ?? "",
  });
}
