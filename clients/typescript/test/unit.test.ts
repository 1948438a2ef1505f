// Unit tests with a scripted fetch: retries (which failures, how long, how often), the
// Idempotency-Key, timeouts, the error classes, the SSE parser and the pagination guard.
import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import {
  ConflictError,
  ConnectionFailedError,
  DeadlineExceededError,
  InvalidArgumentError,
  NotFoundError,
  Paginator,
  Ragline,
  RaglineError,
  RateLimitedError,
  RequestTooLargeError,
  type RetryInfo,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
  parseSse,
} from "@ragline/client";

interface Seen {
  method: string;
  url: string;
  headers: Headers;
  body: string | undefined;
}

type Reply = Response | (() => Response) | Error | "hang";

/** A fetch that answers from a script, one reply per call, and records the requests. */
function scripted(replies: Reply[]): { fetch: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    seen.push({
      method: init?.method ?? "GET",
      url: String(input),
      headers: new Headers(init?.headers),
      body: typeof init?.body === "string" ? init.body : undefined,
    });
    const reply = replies.shift();
    if (reply === undefined) throw new Error("unexpected request");
    if (reply === "hang") {
      return new Promise<Response>((_, reject) => {
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason), { once: true });
      });
    }
    if (reply instanceof Error) throw reply;
    return typeof reply === "function" ? reply() : reply;
  }) as typeof fetch;
  return { fetch: fetchImpl, seen };
}

function status(httpStatus: number, code: number, reason: string, headers: Record<string, string> = {}, extra: unknown[] = []) {
  return new Response(
    JSON.stringify({
      code,
      message: `${reason.toLowerCase()} happened`,
      details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason, domain: "ragline.dev" }, ...extra],
    }),
    { status: httpStatus, headers: { "content-type": "application/json", ...headers } },
  );
}

const ok = (body: unknown = {}) =>
  new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });

function client(replies: Reply[], options: ConstructorParameters<typeof Ragline>[0] = {}) {
  const { fetch, seen } = scripted(replies);
  const retries: RetryInfo[] = [];
  const c = new Ragline({
    baseUrl: "http://gateway.test/",
    apiKey: "k1",
    fetch,
    retryBaseDelayMs: 5,
    onRetry: (info) => retries.push(info),
    ...options,
  });
  return { c, seen, retries };
}

describe("retries", () => {
  test("429 waits for Retry-After, then succeeds", async () => {
    const { c, seen, retries } = client([status(429, 8, "RATE_LIMITED", { "retry-after": "1" }), ok({ name: "notes" })]);
    const started = Date.now();
    const got = await c.collections.get("notes");
    assert.equal(got.name, "notes");
    assert.equal(seen.length, 2);
    assert.equal(retries.length, 1);
    assert.ok(retries[0]!.delayMs >= 1000 && retries[0]!.delayMs <= 1005, `delay ${retries[0]!.delayMs}`);
    assert.ok(retries[0]!.error instanceof RateLimitedError);
    assert.ok(Date.now() - started >= 1000, "the client did not wait for Retry-After");
  });

  test("503 is retried with jittered exponential back-off, then raised", async () => {
    const { c, seen, retries } = client(
      Array.from({ length: 4 }, () => status(503, 14, "UNAVAILABLE")),
      { retryBaseDelayMs: 40, maxRetries: 3 },
    );
    await assert.rejects(c.jobs.get("j1"), UnavailableError);
    assert.equal(seen.length, 4); // the first try and 3 retries
    assert.deepEqual(retries.map((r) => r.attempt), [1, 2, 3]);
    retries.forEach((r, i) => assert.ok(r.delayMs >= 0 && r.delayMs <= 40 * 2 ** i, `retry ${i}: ${r.delayMs}`));
    // Jitter: three random waits are not all the exact exponential steps.
    assert.notDeepEqual(retries.map((r) => r.delayMs), [40, 80, 160]);
  });

  test("a chat (not idempotent) is not retried on 503, but is on 429 and AUTH_UNAVAILABLE", async () => {
    const down = client([status(503, 14, "UNAVAILABLE")]);
    await assert.rejects(down.c.chat.send({ message: "hi" }), UnavailableError);
    assert.equal(down.seen.length, 1);
    const limited = client([status(429, 8, "RATE_LIMITED", { "retry-after": "0" }), ok({ answer: "a" })]);
    assert.equal((await limited.c.chat.send({ message: "hi" })).answer, "a");
    const auth = client([status(503, 14, "AUTH_UNAVAILABLE"), ok({ answer: "b" })]);
    assert.equal((await auth.c.chat.send({ message: "hi" })).answer, "b");
  });

  test("a spend cap or a lock-out is not retried", async () => {
    for (const reason of ["SPEND_CAP_EXCEEDED", "TOO_MANY_FAILED_ATTEMPTS"]) {
      const { c, seen } = client([status(429, 8, reason, { "retry-after": "0" })]);
      const error = await c.embeddings.create({ text: "x" }).catch((e: unknown) => e);
      assert.ok(error instanceof RateLimitedError && error.reason === reason);
      assert.equal(seen.length, 1);
    }
  });

  test("a Retry-After past maxRetryAfterMs is raised at once with retryAfter", async () => {
    const { c, seen } = client([status(429, 8, "RATE_LIMITED", { "retry-after": "45" })]);
    const error = await c.collections.get("x").catch((e: unknown) => e);
    assert.ok(error instanceof RateLimitedError);
    assert.equal(error.retryAfter, 45);
    assert.equal(error.httpStatus, 429);
    assert.equal(seen.length, 1);
  });

  test("ingest sends one Idempotency-Key on every try, and retries a key still in use", async () => {
    const { c, seen } = client([
      status(503, 14, "UNAVAILABLE"),
      status(409, 10, "IDEMPOTENCY_KEY_IN_USE"),
      ok({ job_id: "j1", document_ids: ["d"] }),
    ]);
    const reply = await c.ingest.documents({ collection: "c", documents: [{ content: "x" }] });
    assert.equal(reply.job_id, "j1");
    const keys = seen.map((s) => s.headers.get("idempotency-key"));
    assert.equal(keys.length, 3);
    assert.match(keys[0]!, /^[0-9a-f]{32}$/);
    assert.ok(keys.every((k) => k === keys[0]), `keys differ: ${keys}`);
    // A new call gets a new key; a given key is used as is.
    const again = client([ok({}), ok({})]);
    await again.c.ingest.documents({ collection: "c", documents: [{ content: "x" }] });
    await again.c.ingest.documents({ collection: "c", documents: [{ content: "x" }] }, { idempotencyKey: "mine" });
    assert.notEqual(again.seen[0]!.headers.get("idempotency-key"), keys[0]);
    assert.equal(again.seen[1]!.headers.get("idempotency-key"), "mine");
    // Other POSTs do not get one, and a 409 there is not retried.
    const chat = client([status(409, 10, "IDEMPOTENCY_KEY_IN_USE")]);
    await assert.rejects(chat.c.chat.send({ message: "x" }), ConflictError);
    assert.equal(chat.seen[0]!.headers.get("idempotency-key"), null);
  });

  test("a lost connection is retried for reads, not for a chat", async () => {
    const read = client([new TypeError("fetch failed"), ok({ name: "n" })]);
    assert.equal((await read.c.collections.get("n")).name, "n");
    assert.equal(read.seen.length, 2);
    const write = client([new TypeError("fetch failed")]);
    const error = await write.c.chat.send({ message: "x" }).catch((e: unknown) => e);
    assert.ok(error instanceof ConnectionFailedError && error instanceof UnavailableError);
    assert.equal(write.seen.length, 1);
  });

  test("maxRetries: 0 per request turns retries off", async () => {
    const { c, seen } = client([status(503, 14, "UNAVAILABLE")]);
    await assert.rejects(c.jobs.get("j", { maxRetries: 0 }), UnavailableError);
    assert.equal(seen.length, 1);
  });
});

describe("timeouts and cancellation", () => {
  test("timeoutMs raises DeadlineExceededError (not retried)", async () => {
    const { c, seen } = client(["hang", ok()], { timeoutMs: 50 });
    const error = await c.collections.get("x").catch((e: unknown) => e);
    assert.ok(error instanceof DeadlineExceededError, String(error));
    assert.equal(error.reason, "CLIENT_TIMEOUT");
    assert.equal(seen.length, 1);
  });

  test("no timer outlives a call, also a stream refused before its first event", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    const { c } = client([status(400, 3, "EMPTY_MESSAGE"), ok({ name: "x" })], { timeoutMs: 5_000 });
    await assert.rejects(c.chat.stream({ message: "" }), InvalidArgumentError);
    await c.collections.get("x");
    assert.equal(timers(), before);
  });

  test("the caller's AbortSignal cancels without a retry", async () => {
    const { c } = client(["hang"]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("stop")), 20);
    await assert.rejects(c.collections.get("x", { signal: controller.signal }), /stop/);
  });
});

describe("errors", () => {
  test("400 with field violations is InvalidArgumentError naming the field", async () => {
    const violation = {
      "@type": "type.googleapis.com/google.rpc.BadRequest",
      field_violations: [{ field: "limit", description: "limit must be between 1 and 100" }],
    };
    const { c } = client([status(400, 3, "BAD_LIMIT", {}, [violation])]);
    const error = await c.search.query({ query: "q", collection: "c", limit: 500 }).catch((e: unknown) => e);
    assert.ok(error instanceof InvalidArgumentError && error instanceof RaglineError);
    assert.equal(error.code, 3);
    assert.equal(error.reason, "BAD_LIMIT");
    assert.deepEqual(error.fieldViolations, [{ field: "limit", description: "limit must be between 1 and 100", reason: "" }]);
  });

  test("status, code and reason pick the class", async () => {
    const cases: [Response, new (...a: never[]) => RaglineError, string][] = [
      [status(404, 5, "JOB_NOT_FOUND"), NotFoundError, "JOB_NOT_FOUND"],
      [status(401, 16, "INVALID_API_KEY"), UnauthenticatedError, "INVALID_API_KEY"],
      // The gateway's 413 carries INVALID_ARGUMENT's code.
      [status(413, 3, "REQUEST_TOO_LARGE"), RequestTooLargeError, "REQUEST_TOO_LARGE"],
      [status(405, 12, "METHOD_NOT_ALLOWED", { allow: "POST" }), UnimplementedError, "METHOD_NOT_ALLOWED"],
      // A body that is no Status: the HTTP status decides.
      [new Response("<html>bad gateway</html>", { status: 404 }), NotFoundError, ""],
    ];
    for (const [reply, cls, reason] of cases) {
      const { c } = client([reply], { maxRetries: 0 });
      const error = await c.jobs.get("j").catch((e: unknown) => e);
      assert.ok(error instanceof cls, `${reply.status}: ${String(error)}`);
      assert.equal((error as RaglineError).reason, reason);
      assert.equal((error as RaglineError).httpStatus, reply.status);
    }
  });

  test("an in-band stream error is raised while reading, as its class", async () => {
    const sse = [
      `data: {"start":{"conversation_id":"c1","model":"m"}}`,
      `data: {"delta":"Hel"}`,
      `data: {"error":{"code":14,"message":"the model is down","reason":"PROVIDER_UNAVAILABLE"}}`,
      "",
    ].join("\n\n");
    const { c } = client([new Response(sse, { status: 200, headers: { "content-type": "text/event-stream" } })]);
    const stream = await c.chat.stream({ message: "hi" });
    const kinds: string[] = [];
    const error = await (async () => {
      for await (const event of stream) kinds.push(event.type);
    })().catch((e: unknown) => e);
    assert.deepEqual(kinds, ["start", "delta"]);
    assert.ok(error instanceof UnavailableError);
    assert.equal(error.reason, "PROVIDER_UNAVAILABLE");
    assert.equal(error.message, "the model is down");
  });
});

describe("requests", () => {
  test("credentials, base URL, query and path escaping", async () => {
    const { c, seen } = client([ok({ documents: [] })], { baseUrl: "http://gateway.test/prefix/" });
    await c.documents.list("my notes", { page_size: 5 }).firstPage();
    assert.equal(seen[0]!.url, "http://gateway.test/prefix/api/v1/collections/my%20notes/documents?page_size=5");
    assert.equal(seen[0]!.headers.get("authorization"), "Bearer k1");
    // A token function is asked for each request (a refreshed JWT).
    let n = 0;
    const tokens = client([ok(), ok()], { apiKey: undefined, token: async () => `jwt-${++n}` });
    await tokens.c.jobs.get("a");
    await tokens.c.jobs.get("b");
    assert.deepEqual(tokens.seen.map((s) => s.headers.get("authorization")), ["Bearer jwt-1", "Bearer jwt-2"]);
  });

  test("64-bit fields given as numbers are sent as strings", async () => {
    const { c, seen } = client([ok(), ok()]);
    await c.keys.create({ tenant: "t", scopes: ["search"], ttl_seconds: 3600 });
    await c.tokens.create({ ttl_seconds: 60 });
    assert.equal(JSON.parse(seen[0]!.body!).ttl_seconds, "3600");
    assert.equal(JSON.parse(seen[1]!.body!).ttl_seconds, "60");
  });

  test("an upload sends the raw bytes with the type its extension implies", async () => {
    const { fetch: f, seen } = scripted([ok({ document_id: "d" })]);
    const c = new Ragline({ baseUrl: "http://gateway.test", apiKey: "k", fetch: f });
    await c.ingest.file("notes", new TextEncoder().encode("# Title"), { filename: "a.md", title: "A" });
    assert.equal(seen[0]!.headers.get("content-type"), "text/markdown");
    assert.equal(seen[0]!.url, "http://gateway.test/api/v1/collections/notes/documents:upload?filename=a.md&title=A");
  });
});

describe("server-sent events", () => {
  function chunked(chunks: string[]): ReadableStream<Uint8Array> {
    const encoder = new TextEncoder();
    return new ReadableStream({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
        controller.close();
      },
    });
  }

  test("events split across chunks, CRLF, comments and multi-line data", async () => {
    const events = [];
    for await (const e of parseSse(chunked(["da", "ta: {\"a\":", "1}\r", "\n\r\n: keep-alive\n\nevent: x\ndata: l1\ndata: l2\n\ndata: last"]))) {
      events.push(e);
    }
    assert.deepEqual(events, [
      { event: "message", data: '{"a":1}' },
      { event: "x", data: "l1\nl2" },
      { event: "message", data: "last" },
    ]);
  });

  test("leaving a chat stream early cancels its body (the server stops generating)", async () => {
    let cancelled = false;
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode('data: {"start":{"conversation_id":"c"}}\n\ndata: {"delta":"a"}\n\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    const { c } = client([new Response(body, { status: 200 })]);
    const stream = await c.chat.stream({ message: "hi" });
    for await (const event of stream) if (event.type === "delta") break;
    assert.ok(cancelled, "the body was not cancelled");
  });

  test("a job watch resumes a stream cut before the job ended", async () => {
    const sse = (states: string[]) =>
      new Response(states.map((s) => `data: {"job":{"job_id":"j","state":"${s}"}}\n\n`).join(""), { status: 200 });
    const { c, seen } = client([sse(["JOB_STATE_RUNNING"]), sse(["JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"])]);
    const progress: string[] = [];
    const job = await c.jobs.wait("j", { onProgress: (j) => progress.push(j.state!) });
    assert.equal(job.state, "JOB_STATE_SUCCEEDED");
    assert.deepEqual(progress, ["JOB_STATE_RUNNING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.headers.get("accept"), "text/event-stream");
  });
});

describe("pagination", () => {
  test("walks next_page_token to the end, and stops on a repeated token", async () => {
    const { c, seen } = client([
      ok({ collections: [{ name: "a" }, { name: "b" }], next_page_token: "t1" }),
      ok({ collections: [{ name: "c" }], next_page_token: "" }),
    ]);
    const names = (await c.collections.list({ page_size: 2 }).toArray()).map((x) => x.name);
    assert.deepEqual(names, ["a", "b", "c"]);
    assert.match(seen[1]!.url, /page_token=t1/);
    const loop = new Paginator(async () => ({ items: [1], nextPageToken: "same" }));
    await assert.rejects(loop.toArray(), /page token repeated/);
  });
});

describe("packaging", () => {
  test("the main entry point imports nothing from Node (browser-safe)", async () => {
    const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist");
    const files = (await readdir(dist, { recursive: true })).filter((f) => f.endsWith(".js") && f !== "node.js");
    assert.ok(files.includes("index.js"), `no build in ${dist}`);
    for (const file of files) {
      const text = await readFile(join(dist, file), "utf8");
      assert.doesNotMatch(text, /from\s+["'](node:|fs|path|os|crypto|buffer|http|https|stream)["'/]/, file);
      assert.doesNotMatch(text, /\b(process|Buffer|require)\s*[.(]/, file);
    }
  });
});
