// The SDK against a live gateway: RAGLINE_BASE_URL and RAGLINE_API_KEY (a key with every
// scope, admin included; tests/e2e/test_typescript_sdk.py passes the suite's stack and dev
// key). Without them these tests fail: they are never skipped.
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  type ChatStreamEvent,
  type Job,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  Ragline,
  RaglineError,
  RateLimitedError,
  UnauthenticatedError,
} from "@ragline/client";
import { uploadFile, uploadFolder } from "@ragline/client/node";

const baseUrl = process.env["RAGLINE_BASE_URL"];
const apiKey = process.env["RAGLINE_API_KEY"];
if (!baseUrl || !apiKey) throw new Error("set RAGLINE_BASE_URL and RAGLINE_API_KEY to run the live tests");

const client = new Ragline({ baseUrl, apiKey, timeoutMs: 120_000 });
const suffix = Math.random().toString(16).slice(2, 8);
const collection = `ts-sdk-${suffix}`;

const DOCS = [
  { title: "Envoy", content: "Envoy transcodes JSON to gRPC and back.", metadata: { category: "gateway" } },
  { title: "Kestrel", content: "Kestrel programs compile to WebAssembly modules.", metadata: { category: "language" } },
  { title: "Orchids", content: "Water moth orchids once a week, letting the bark dry.", metadata: { category: "plants" } },
  { title: "Redis", content: "Redis keeps the embedding cache and the change feed.", metadata: { category: "gateway" } },
  { title: "FerretDB", content: "FerretDB speaks the MongoDB wire protocol over SQLite.", metadata: { category: "storage" } },
];

async function expectError<T extends RaglineError>(
  promise: Promise<unknown>,
  cls: abstract new (...args: never[]) => T,
): Promise<T> {
  const error = await promise.then(
    (value) => assert.fail(`expected ${cls.name}, got ${JSON.stringify(value)}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof cls, `expected ${cls.name}, got ${String(error)}`);
  return error as T;
}

/** Polls `check` until it returns true (bounded): waits on a condition, not a fixed time. */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  const reply = await client.ingest.documents({ collection, documents: DOCS });
  assert.equal(reply.document_ids?.length, DOCS.length);
  assert.equal((await client.jobs.wait(reply.job_id!)).state, "JOB_STATE_SUCCEEDED");
});

after(async () => {
  await client.collections.delete(collection).catch(() => undefined);
});

describe("system and embeddings", () => {
  test("health is SERVING without a key", async () => {
    const anonymous = new Ragline({ baseUrl });
    assert.equal((await anonymous.health()).status, "SERVING");
  });

  test("embeddings of one text and of a batch; the models, every page", async () => {
    const one = await client.embeddings.create({ text: "What is RAG?" });
    assert.equal(one.embeddings?.length, 1);
    assert.equal(one.embeddings?.[0]?.values?.length, one.dimensions);
    const batch = await client.embeddings.create({ texts: ["a", "b", "c"] });
    assert.deepEqual(batch.embeddings?.map((e) => e.index), [0, 1, 2]);
    const pages = [];
    for await (const page of client.embeddings.models({ page_size: 2 }).pages()) pages.push(page);
    assert.ok(pages.length >= 2, "the model list fits in one page of 2; pagination not exercised");
    const names = pages.flatMap((p) => p.items.map((m) => m.name));
    assert.equal(new Set(names).size, names.length, "a model listed twice across pages");
    assert.ok(names.includes(one.model), `${one.model} not in ${names}`);
  });
});

describe("ingest and jobs", () => {
  test("a large ingest replies at once; watching the job shows its progress to the end", async () => {
    const many = Array.from({ length: 40 }, (_, i) => ({
      title: `Note ${i}`,
      content: `Note number ${i} is about topic ${i % 7} and the word kestrel${i}.`,
    }));
    const reply = await client.ingest.documents({ collection: `${collection}-big`, documents: many });
    try {
      const progress: Job[] = [];
      const final = await client.jobs.wait(reply.job_id!, { onProgress: (job) => progress.push(job) });
      assert.equal(final.state, "JOB_STATE_SUCCEEDED");
      assert.equal(final.documents_done, 40);
      assert.equal(final.documents_total, 40);
      assert.ok(progress.length >= 1);
      assert.deepEqual(progress.at(-1), final);
      // Counters never go back while the job runs.
      const done = progress.map((j) => j.documents_done ?? 0);
      assert.deepEqual([...done].sort((a, b) => a - b), done);
      if (reply.job?.state !== "JOB_STATE_SUCCEEDED") {
        assert.ok(progress.length >= 2 || progress[0]?.state === "JOB_STATE_SUCCEEDED");
      }
      assert.equal((await client.jobs.get(reply.job_id!)).state, "JOB_STATE_SUCCEEDED");
    } finally {
      await client.collections.delete(`${collection}-big`).catch(() => undefined);
    }
  });

  test("a repeated Idempotency-Key replays the first job", async () => {
    const key = `ts-sdk-${suffix}-idem`;
    const request = { collection, documents: [{ title: "Idem", content: "Idempotent ingest replays one job." }] };
    const first = await client.ingest.documents(request, { idempotencyKey: key });
    const second = await client.ingest.documents(request, { idempotencyKey: key });
    assert.equal(second.job_id, first.job_id);
    const third = await client.ingest.documents(request);
    assert.notEqual(third.job_id, first.job_id);
  });

  test("files: bytes, a file from disk and a folder", async () => {
    const target = `${collection}-files`;
    const dir = await mkdtemp(join(tmpdir(), "ragline-ts-"));
    try {
      const bytes = await client.ingest.file(target, new TextEncoder().encode("# Quokka\n\nQuokkas live on Rottnest Island."), {
        filename: "quokka.md",
        title: "Quokka",
      });
      assert.ok(bytes.extracted_chars! > 0 && bytes.extracted_chars! < 60, `extracted ${bytes.extracted_chars}`);
      await writeFile(join(dir, "one.txt"), "Wombats dig burrows.");
      await mkdir(join(dir, "sub"));
      await writeFile(join(dir, "sub", "two.html"), "<html><body><p>Platypuses lay eggs.</p></body></html>");
      await writeFile(join(dir, "skip.bin"), "not a document");
      const single = await uploadFile(client, target, join(dir, "one.txt"));
      assert.ok(single.document_id);
      const uploaded = await uploadFolder(client, target, dir);
      assert.deepEqual([...uploaded.keys()].map((p) => p.slice(dir.length + 1)), ["one.txt", join("sub", "two.html")]);
      for (const r of uploaded.values()) await client.jobs.wait(r.job_id!);
      await client.jobs.wait(bytes.job_id!);
      const found = await client.search.query({ query: "which animal lays eggs?", collection: target, limit: 1 });
      assert.match(found.hits?.[0]?.text ?? "", /Platypuses lay eggs/);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await client.collections.delete(target).catch(() => undefined);
    }
  });
});

describe("search", () => {
  test("every option: mode, filters, rerank, facets, limit", async () => {
    const r = await client.search.query({
      query: "what transcodes JSON?",
      collection,
      limit: 3,
      mode: "SEARCH_MODE_HYBRID",
      filters: { category: "gateway" },
      rerank: true,
      facets: ["category"],
    });
    assert.equal(r.mode, "SEARCH_MODE_HYBRID");
    // The filter leaves the two gateway documents; which one a reranker puts first is its call.
    assert.deepEqual(r.hits?.map((h) => h.title).sort(), ["Envoy", "Redis"]);
    assert.ok(r.hits?.every((h) => h.metadata?.["category"] === "gateway"));
    assert.equal(typeof r.reranked, "boolean");
    assert.ok(r.facets?.some((f) => f.field === "category"), JSON.stringify(r.facets));
    const keyword = await client.search.query({ query: "orchids", collection, mode: "SEARCH_MODE_KEYWORD" });
    assert.equal(keyword.mode, "SEARCH_MODE_KEYWORD");
    assert.equal(keyword.hits?.[0]?.title, "Orchids");
  });

  test("hits across pages, and suggestions", async () => {
    const all = await client.search.hits({ query: "the", collection, mode: "SEARCH_MODE_DENSE", page_size: 2, limit: 5 }).toArray();
    const first = await client.search.query({ query: "the", collection, mode: "SEARCH_MODE_DENSE", page_size: 2, limit: 5 });
    assert.ok(first.next_page_token, "one page only: pagination not exercised");
    assert.ok(all.length > 2, `only ${all.length} hits`);
    assert.equal(new Set(all.map((h) => h.chunk_id)).size, all.length, "a hit repeated across pages");
    const suggestions = await client.search.suggest(collection, "kes");
    assert.ok(suggestions.suggestions?.some((s) => s.toLowerCase().startsWith("kes")), JSON.stringify(suggestions));
  });
});

describe("collections and documents", () => {
  test("list across pages, get, delete", async () => {
    const extra = [`${collection}-a`, `${collection}-b`];
    for (const name of extra) await client.ingest.documents({ collection: name, documents: [{ content: `In ${name}.` }] });
    const seen: string[] = [];
    let pages = 0;
    for await (const page of client.collections.list({ page_size: 1 }).pages()) {
      pages++;
      seen.push(...page.items.map((c) => c.name!));
    }
    assert.ok(pages >= 3, `${pages} pages`);
    for (const name of [collection, ...extra]) assert.ok(seen.includes(name), `${name} not listed`);
    const got = await client.collections.get(collection);
    assert.ok(got.document_count! >= DOCS.length);
    for (const name of extra) assert.equal((await client.collections.delete(name)).documents_deleted, 1);
    const gone = await expectError(client.collections.get(extra[0]!), NotFoundError);
    assert.equal(gone.reason, "COLLECTION_NOT_FOUND");
    assert.equal(gone.httpStatus, 404);
  });

  test("documents: every page, one with its content, delete", async () => {
    const target = `${collection}-docs`;
    await client.ingest.documents({ collection: target, documents: DOCS });
    try {
      const pages = [];
      for await (const page of client.documents.list(target, { page_size: 2 }).pages()) pages.push(page);
      assert.deepEqual(pages.map((p) => p.items.length), [2, 2, 1]);
      const docs = pages.flatMap((p) => p.items);
      const envoy = docs.find((d) => d.title === "Envoy")!;
      const full = await client.documents.get(target, envoy.document_id!);
      assert.equal(full.content, DOCS[0]!.content);
      assert.ok((await client.documents.delete(target, envoy.document_id!)).chunks_deleted! >= 1);
      const gone = await expectError(client.documents.get(target, envoy.document_id!), NotFoundError);
      assert.equal(gone.reason, "DOCUMENT_NOT_FOUND");
      assert.equal((await client.documents.list(target).toArray()).length, DOCS.length - 1);
    } finally {
      await client.collections.delete(target).catch(() => undefined);
    }
  });
});

describe("chat", () => {
  test("an answer with citations, continued in its conversation; conversations list, get, delete", async () => {
    const first = await client.chat.send({ message: "What does Envoy do?", collection, model: "extractive" });
    assert.match(first.answer ?? "", /transcodes JSON/);
    assert.equal(first.citations?.[0]?.title, "Envoy");
    const conversationId = first.conversation_id!;
    const second = await client.chat.send({ message: "And what compiles to WebAssembly?", collection, conversation_id: conversationId });
    assert.equal(second.conversation_id, conversationId);
    const listed = await client.conversations.list({ page_size: 1 }).toArray();
    assert.ok(listed.some((c) => c.conversation_id === conversationId));
    const conversation = await client.conversations.get(conversationId);
    assert.deepEqual(conversation.messages?.map((m) => m.role), [
      "MESSAGE_ROLE_USER",
      "MESSAGE_ROLE_ASSISTANT",
      "MESSAGE_ROLE_USER",
      "MESSAGE_ROLE_ASSISTANT",
    ]);
    await client.conversations.delete(conversationId);
    const gone = await expectError(client.conversations.get(conversationId), NotFoundError);
    assert.equal(gone.httpStatus, 404);
  });

  test("a streamed answer: start, deltas, citation, usage, done, as the plain answer", async () => {
    const stream = await client.chat.stream({ message: "What does Envoy do?", collection, model: "extractive" });
    const events: ChatStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const kinds = events.map((e) => e.type).filter((k) => k !== "ping");
    assert.equal(kinds[0], "start");
    assert.equal(kinds.at(-1), "done");
    assert.ok(kinds.includes("usage") && kinds.includes("citation"), kinds.join(","));
    const deltas = events.flatMap((e) => (e.type === "delta" ? [e.delta] : []));
    assert.ok(deltas.length > 1, "the answer came in one piece");
    const final = await stream.finalResponse();
    assert.equal(final.answer, deltas.join(""));
    assert.match(final.answer ?? "", /transcodes JSON/);
    assert.equal(final.finish_reason, "FINISH_REASON_STOP");
    assert.equal(final.citations?.[0]?.title, "Envoy");
    await client.conversations.delete(final.conversation_id!);
  });

  test("a stream's error before its first event is thrown by stream()", async () => {
    const error = await expectError(client.chat.stream({ message: "", collection }), InvalidArgumentError);
    assert.equal(error.reason, "EMPTY_MESSAGE");
  });

  test("chat models, every page", async () => {
    const models = await client.chat.models({ page_size: 1 }).toArray();
    assert.ok(models.some((m) => m.name === "extractive" && m.provider === "CHAT_PROVIDER_EXTRACTIVE"));
  });
});

describe("keys, tokens, usage (admin)", () => {
  test("create, list, get, rotate, revoke; a revoked key stops working", async () => {
    const tenant = `ts-sdk-${suffix}`;
    const created = await client.keys.create({ tenant, scopes: ["ingest"], name: "sdk test", tier: "free", ttl_seconds: 3600 });
    assert.match(created.key!, /^rl_/);
    const keyId = created.api_key!.key_id!;
    const listed = await client.keys.list({ tenant, page_size: 1 }).toArray();
    assert.deepEqual(listed.map((k) => k.key_id), [keyId]);
    assert.equal((await client.keys.get(keyId)).state, "API_KEY_STATE_ACTIVE");
    const rotated = await client.keys.rotate(keyId, { grace_period_seconds: 0 });
    assert.equal(rotated.previous?.key_id, keyId);
    const newId = rotated.api_key!.key_id!;
    const user = new Ragline({ baseUrl, apiKey: rotated.key!, maxRetries: 0 });
    // The new key works (its tenant has no collections yet).
    assert.deepEqual(await user.collections.list().toArray(), []);
    await client.keys.revoke(newId);
    assert.equal((await client.keys.get(newId)).state, "API_KEY_STATE_REVOKED");
    await eventually(
      () =>
        user.collections
          .list()
          .firstPage()
          .then(
            () => false,
            (e: unknown) => e instanceof UnauthenticatedError && e.reason === "KEY_REVOKED",
          ),
      "the revoked key to be refused with KEY_REVOKED",
    );
  });

  test("a JWT from tokens.create works as the credential, also from a function", async () => {
    const token = await client.tokens.create({ ttl_seconds: 300 });
    assert.equal(token.token_type, "Bearer");
    const viaToken = new Ragline({ baseUrl, token: token.access_token! });
    assert.equal((await viaToken.collections.get(collection)).name, collection);
    const viaFunction = new Ragline({ baseUrl, token: async () => token.access_token! });
    assert.ok((await viaFunction.search.query({ query: "Envoy", collection })).hits?.length);
  });

  test("usage reports this tenant's requests", async () => {
    await eventually(async () => {
      const usage = await client.usage.get({ granularity: "GRANULARITY_HOUR" });
      return Number(usage.total?.requests ?? "0") > 0 && (usage.endpoints?.length ?? 0) > 0;
    }, "usage to count requests");
  });
});

describe("errors from the gateway", () => {
  test("401 without a key and with an unknown key", async () => {
    const none = await expectError(new Ragline({ baseUrl }).collections.get(collection), UnauthenticatedError);
    assert.equal(none.reason, "MISSING_CREDENTIALS");
    assert.equal(none.httpStatus, 401);
    assert.equal(none.code, 16);
    const bad = await expectError(new Ragline({ baseUrl, apiKey: "rl_live_not-a-key" }).collections.get(collection), UnauthenticatedError);
    assert.equal(bad.reason, "INVALID_API_KEY");
  });

  test("400 with field violations naming the field", async () => {
    const limit = await expectError(client.search.query({ query: "x", collection, limit: 5000 }), InvalidArgumentError);
    assert.equal(limit.httpStatus, 400);
    assert.deepEqual(limit.fieldViolations.map((v) => v.field), ["limit"]);
    // A field the API does not have (a typo TypeScript would catch, sent anyway).
    const typo = { qeury: "x", collection } as unknown as { query: string; collection: string };
    const unknown = await expectError(client.search.query(typo), InvalidArgumentError);
    assert.equal(unknown.reason, "UNKNOWN_FIELD");
    assert.deepEqual(unknown.fieldViolations.map((v) => v.field), ["qeury"]);
  });

  test("404 names the missing resource", async () => {
    const job = await expectError(client.jobs.get(`nope-${suffix}`), NotFoundError);
    assert.equal(job.reason, "JOB_NOT_FOUND");
    assert.match(job.message, /not found/);
  });

  test("403 for a key without the route's scope", async () => {
    const created = await client.keys.create({ tenant: `ts-sdk-${suffix}-403`, scopes: ["search"] });
    try {
      const limited = new Ragline({ baseUrl, apiKey: created.key! });
      const denied = await expectError(limited.embeddings.create({ text: "x" }), PermissionDeniedError);
      assert.equal(denied.reason, "SCOPE_DENIED");
    } finally {
      await client.keys.revoke(created.api_key!.key_id!);
    }
  });

  test("429 with retryAfter once a free key's limit is spent", async () => {
    // The free tier mints 10 tokens a minute per key.
    const created = await client.keys.create({ tenant: `ts-sdk-${suffix}-429`, scopes: ["search"], tier: "free" });
    try {
      const limited = new Ragline({ baseUrl, apiKey: created.key!, maxRetries: 0 });
      let error: unknown;
      for (let i = 0; i < 30 && error === undefined; i++) {
        await limited.tokens.create({ ttl_seconds: 60 }).catch((e: unknown) => (error = e));
      }
      assert.ok(error instanceof RateLimitedError, String(error));
      assert.equal(error.httpStatus, 429);
      assert.equal(error.reason, "RATE_LIMITED");
      assert.ok(error.retryAfter !== undefined && error.retryAfter > 0 && error.retryAfter <= 60, `retryAfter ${error.retryAfter}`);
      assert.ok(error.headers.get("x-ratelimit-limit"));
    } finally {
      await client.keys.revoke(created.api_key!.key_id!);
    }
  });
});
