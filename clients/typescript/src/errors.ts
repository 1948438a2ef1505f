// One error class hierarchy, the same as the Python SDK's (clients/python/ragline_client/
// errors.py): built from the google.rpc.Status every error reply carries (code, message,
// details: ErrorInfo, BadRequest, RetryInfo), from an in-band stream error, or from the
// transport (no connection, the client's timeout).
import type { Schemas } from "./types.js";

export type Status = Schemas["Status"];
export type FieldViolation = Schemas["BadRequestFieldViolation"];

const ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";
const RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo";

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
  /** google.rpc.Code; defaults to the class's. */
  code?: number;
  /** HTTP status of the reply (0 for an error inside a stream or without a reply). */
  httpStatus?: number;
  /** ErrorInfo.reason, e.g. "COLLECTION_NOT_FOUND", "RATE_LIMITED". */
  reason?: string;
  domain?: string;
  metadata?: Record<string, string>;
  fieldViolations?: FieldViolation[];
  /** Seconds to wait before retrying (Retry-After or RetryInfo), when the server said. */
  retryAfter?: number;
  details?: unknown[];
  headers?: Headers;
  cause?: unknown;
}

/**
 * Any error the API answered, or a transport failure (ConnectionFailedError, or
 * DeadlineExceededError for the client's own timeout).
 */
export class RaglineError extends Error {
  static readonly grpcCode: number = GrpcCode.UNKNOWN;
  override name = "RaglineError";
  /** google.rpc.Code (google.rpc.Status.code). */
  readonly code: number;
  /** HTTP status (0 inside a stream or without a reply). */
  readonly httpStatus: number;
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Record<string, string>;
  readonly fieldViolations: FieldViolation[];
  /** Seconds to wait before retrying, when the server said (RateLimitedError). */
  readonly retryAfter: number | undefined;
  readonly details: unknown[];
  /** The reply's headers (x-ratelimit-*, x-request-id); empty without a reply. */
  readonly headers: Headers;

  constructor(message: string, fields: ErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.code = fields.code ?? (this.constructor as typeof RaglineError).grpcCode;
    this.httpStatus = fields.httpStatus ?? 0;
    this.reason = fields.reason ?? "";
    this.domain = fields.domain ?? "";
    this.metadata = fields.metadata ?? {};
    this.fieldViolations = fields.fieldViolations ?? [];
    this.retryAfter = fields.retryAfter;
    this.details = fields.details ?? [];
    this.headers = fields.headers ?? new Headers();
  }

  /** The reply's x-request-id, to quote when reporting a problem. */
  get requestId(): string | undefined {
    return this.headers.get("x-request-id") ?? undefined;
  }

  override toString(): string {
    const where = this.httpStatus ? `HTTP ${this.httpStatus}` : `gRPC ${this.code}`;
    return `${this.name}: ${this.message} (${where}${this.reason ? ` ${this.reason}` : ""})`;
  }
}

/** A request field is invalid (400); `fieldViolations` names them. */
export class InvalidArgumentError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.INVALID_ARGUMENT;
  override name = "InvalidArgumentError";
}
export class FailedPreconditionError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.FAILED_PRECONDITION;
  override name = "FailedPreconditionError";
}
export class OutOfRangeError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.OUT_OF_RANGE;
  override name = "OutOfRangeError";
}
/** No, an unknown, a revoked or an expired credential (401). */
export class UnauthenticatedError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.UNAUTHENTICATED;
  override name = "UnauthenticatedError";
}
/** The credential lacks the route's scope (403). */
export class PermissionDeniedError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.PERMISSION_DENIED;
  override name = "PermissionDeniedError";
}
/** The resource does not exist for this caller (404); `reason` says which kind. */
export class NotFoundError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.NOT_FOUND;
  override name = "NotFoundError";
}
export class AlreadyExistsError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.ALREADY_EXISTS;
  override name = "AlreadyExistsError";
}
/** The request conflicts with the current state (409, gRPC ABORTED). */
export class ConflictError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.ABORTED;
  override name = "ConflictError";
}
/** A limit was hit (429, or 413 for a body over the cap). */
export class ResourceExhaustedError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.RESOURCE_EXHAUSTED;
  override name = "ResourceExhaustedError";
}
/** Too many requests (429): `retryAfter` is the seconds to wait, when the gateway said. */
export class RateLimitedError extends ResourceExhaustedError {
  override name = "RateLimitedError";
}
/** The body is over the gateway's cap (413). */
export class RequestTooLargeError extends ResourceExhaustedError {
  override name = "RequestTooLargeError";
}
export class CancelledError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.CANCELLED;
  override name = "CancelledError";
}
/** The deadline passed before the service answered (504), or the client's `timeoutMs`. */
export class DeadlineExceededError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.DEADLINE_EXCEEDED;
  override name = "DeadlineExceededError";
}
/** The method is not served (501), or the path does not serve this method (405). */
export class UnimplementedError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.UNIMPLEMENTED;
  override name = "UnimplementedError";
}
export class InternalError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.INTERNAL;
  override name = "InternalError";
}
/** The service or a dependency is down (503); retried by the client when that is safe. */
export class UnavailableError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.UNAVAILABLE;
  override name = "UnavailableError";
}
/** The gateway could not be reached or the connection broke (no answer at all). */
export class ConnectionFailedError extends UnavailableError {
  override name = "ConnectionFailedError";
}
export class DataLossError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.DATA_LOSS;
  override name = "DataLossError";
}
export class UnknownError extends RaglineError {
  static override readonly grpcCode: number = GrpcCode.UNKNOWN;
  override name = "UnknownError";
}

type ErrorClass = new (message: string, fields?: ErrorFields) => RaglineError;

const BY_CODE: Record<number, ErrorClass> = {
  [GrpcCode.CANCELLED]: CancelledError,
  [GrpcCode.UNKNOWN]: UnknownError,
  [GrpcCode.INVALID_ARGUMENT]: InvalidArgumentError,
  [GrpcCode.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [GrpcCode.NOT_FOUND]: NotFoundError,
  [GrpcCode.ALREADY_EXISTS]: AlreadyExistsError,
  [GrpcCode.PERMISSION_DENIED]: PermissionDeniedError,
  [GrpcCode.RESOURCE_EXHAUSTED]: ResourceExhaustedError,
  [GrpcCode.FAILED_PRECONDITION]: FailedPreconditionError,
  [GrpcCode.ABORTED]: ConflictError,
  [GrpcCode.OUT_OF_RANGE]: OutOfRangeError,
  [GrpcCode.UNIMPLEMENTED]: UnimplementedError,
  [GrpcCode.INTERNAL]: InternalError,
  [GrpcCode.UNAVAILABLE]: UnavailableError,
  [GrpcCode.DATA_LOSS]: DataLossError,
  [GrpcCode.UNAUTHENTICATED]: UnauthenticatedError,
};

/** The gRPC code an HTTP status stands for, when the body has none. */
const BY_HTTP: Record<number, number> = {
  400: GrpcCode.INVALID_ARGUMENT,
  401: GrpcCode.UNAUTHENTICATED,
  403: GrpcCode.PERMISSION_DENIED,
  404: GrpcCode.NOT_FOUND,
  405: GrpcCode.UNIMPLEMENTED,
  409: GrpcCode.ABORTED,
  413: GrpcCode.RESOURCE_EXHAUSTED,
  429: GrpcCode.RESOURCE_EXHAUSTED,
  499: GrpcCode.CANCELLED,
  500: GrpcCode.INTERNAL,
  501: GrpcCode.UNIMPLEMENTED,
  503: GrpcCode.UNAVAILABLE,
  504: GrpcCode.DEADLINE_EXCEEDED,
};
const RATE_REASONS = new Set(["RATE_LIMITED", "TOO_MANY_FAILED_ATTEMPTS", "SPEND_CAP_EXCEEDED"]);

/** Seconds from a Retry-After header (delta-seconds, or an HTTP date). */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - now) / 1000);
}

/** google.protobuf.Duration in JSON ("1.500s"). */
function durationSeconds(value: unknown): number | undefined {
  if (typeof value !== "string" || !value.endsWith("s")) return undefined;
  const seconds = Number(value.slice(0, -1));
  return Number.isFinite(seconds) ? seconds : undefined;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export interface StatusContext {
  httpStatus?: number;
  grpcCode?: number;
  message?: string;
  retryAfter?: number;
  headers?: Headers;
}

/**
 * The error for a google.rpc.Status in its JSON form. Either status may be missing: the
 * HTTP status or the gRPC code picks the class then.
 */
export function fromStatus(status: unknown, context: StatusContext = {}): RaglineError {
  const record = asRecord(status) ?? {};
  const httpStatus = context.httpStatus ?? 0;
  const given = record["code"];
  const code: number =
    typeof given === "number" && given !== 0
      ? given
      : (context.grpcCode ?? BY_HTTP[httpStatus] ?? GrpcCode.UNKNOWN);
  const message =
    (typeof record["message"] === "string" && record["message"]) || context.message || `HTTP ${httpStatus}`;
  let reason = "";
  let domain = "";
  let metadata: Record<string, string> = {};
  let retryAfter = context.retryAfter;
  const fieldViolations: FieldViolation[] = [];
  const details = (Array.isArray(record["details"]) ? record["details"] : []).filter((d) => asRecord(d));
  for (const detail of details as Record<string, unknown>[]) {
    const kind = detail["@type"];
    if (kind === ERROR_INFO) {
      reason = String(detail["reason"] ?? "");
      domain = String(detail["domain"] ?? "");
      metadata = Object.fromEntries(
        Object.entries(asRecord(detail["metadata"]) ?? {}).map(([k, v]) => [k, String(v)]),
      );
    } else if (kind === BAD_REQUEST) {
      const list = detail["field_violations"] ?? detail["fieldViolations"];
      for (const v of Array.isArray(list) ? list : []) {
        const violation = asRecord(v) ?? {};
        fieldViolations.push({
          field: String(violation["field"] ?? ""),
          description: String(violation["description"] ?? ""),
          reason: String(violation["reason"] ?? ""),
        });
      }
    } else if (kind === RETRY_INFO && retryAfter === undefined) {
      retryAfter = durationSeconds(detail["retry_delay"] ?? detail["retryDelay"]);
    }
  }
  let cls = BY_CODE[code] ?? UnknownError;
  // The gateway's 413 carries INVALID_ARGUMENT's code; the status and reason say what it is.
  if (httpStatus === 413 || reason === "REQUEST_TOO_LARGE") cls = RequestTooLargeError;
  else if (cls === ResourceExhaustedError && (httpStatus === 429 || RATE_REASONS.has(reason) || retryAfter !== undefined))
    cls = RateLimitedError;
  const fields: ErrorFields = { code, httpStatus, reason, domain, metadata, fieldViolations, details };
  if (retryAfter !== undefined) fields.retryAfter = retryAfter;
  if (context.headers) fields.headers = context.headers;
  return new cls(message, fields);
}

/** The error for an HTTP error reply whose body has been read (JSON or not). */
export function errorFromResponse(httpStatus: number, headers: Headers, body: unknown): RaglineError {
  const context: StatusContext = { httpStatus, headers };
  const retryAfter = parseRetryAfter(headers.get("retry-after"));
  if (retryAfter !== undefined) context.retryAfter = retryAfter;
  return fromStatus(body, context);
}

/** The error for an in-band stream error event ({code, message, reason}). */
export function errorFromStreamEvent(event: Schemas["StreamError"]): RaglineError {
  const details = event.reason
    ? [{ "@type": ERROR_INFO, reason: event.reason, domain: "ragline.dev" }]
    : [];
  return fromStatus({ code: event.code ?? GrpcCode.UNKNOWN, message: event.message || "the stream failed", details });
}
