// Typed, authenticated calls to the live gateway through a client generated from its
// OpenAPI document (schema.d.ts, written by openapi-typescript before tsc runs).
// Usage: node build/call.js BASE_URL API_KEY COLLECTION
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

declare const process: { argv: string[] }; // the one Node API used (no @types/node)

const [baseUrl, key, collection] = process.argv.slice(2);
if (!baseUrl || !key || !collection) throw new Error("usage: call.js BASE_URL API_KEY COLLECTION");

const client = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${key}` } });

const health = await client.GET("/health");
const collections = await client.GET("/api/v1/collections");
const search = await client.POST("/api/v1/search", {
  body: { query: "what transcodes JSON?", collection, limit: 3 },
});
// The generated types are exact: a misspelt field does not compile.
// @ts-expect-error `qeury` is not a SearchRequest field
const misspelt: components["schemas"]["SearchRequest"] = { qeury: "x", collection };
void misspelt;

const names: string[] = (collections.data?.collections ?? []).map((c) => c.name ?? "");
const titles: string[] = (search.data?.hits ?? []).map((h) => h.title ?? "");
console.log(
  JSON.stringify({
    health: health.data?.status ?? null,
    statuses: [health.response.status, collections.response.status, search.response.status],
    collections: names,
    titles,
    error: search.error?.message ?? null,
  }),
);
