// System: every component's health (polled every 5 s), the chat and embedding models with
// availability and prices, and the collections with their counts. Each part is shown when
// the token has the scope its API needs.
import type { Session } from "../session.js";
import { clear, describeError, h, table } from "../ui.js";

const POLL_MS = 5000;

export function systemPage(root: HTMLElement, s: Session): () => void {
  const health = h("div", { id: "health" });
  const healthStamp = h("p", { class: "hint", id: "health-updated" });
  const chatModels = h("div", { id: "chat-models" });
  const embeddingModels = h("div", { id: "embedding-models" });
  const collections = h("div", { id: "collections" });
  clear(
    root,
    h("h1", {}, "System"),
    h("h2", {}, "Health"),
    health,
    healthStamp,
    h("h2", {}, "Chat models"),
    chatModels,
    h("h2", {}, "Embedding models"),
    embeddingModels,
    h("h2", {}, "Collections"),
    collections,
    h(
      "p",
      { class: "hint" },
      "Rate-limit tiers and the effective configuration are not exposed by the API; see docs/gateway.md and .env.example.",
    ),
  );

  let stopped = false;
  async function poll(): Promise<void> {
    let status = "";
    let components: Record<string, string> = {};
    try {
      const r = await s.client.health({ maxRetries: 0 });
      status = r.status ?? "";
      components = r.components ?? {};
    } catch (err) {
      // A 503 carries the components' states in its ErrorInfo metadata.
      const meta = (err as { metadata?: Record<string, string> }).metadata ?? {};
      status = `DOWN (${describeError(err)})`;
      components = meta;
    }
    if (stopped) return;
    clear(
      health,
      h("p", { class: `status ${status === "SERVING" ? "ok" : "error"}`, id: "health-status" }, status),
      table(
        ["component", "state"],
        Object.entries(components)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([name, state]) => [name, h("span", { class: `state ${state === "SERVING" ? "ok" : "error"}` }, state)]),
        { id: "health-table" },
      ),
    );
    healthStamp.textContent = `updated ${new Date().toLocaleTimeString("en-GB")}, every ${POLL_MS / 1000} s`;
  }
  void poll();
  const timer = setInterval(() => void poll(), POLL_MS);

  const missing = (scope: string) => h("p", { class: "hint" }, `Needs the ${scope} scope.`);
  if (s.scopes.has("chat")) {
    void (async () => {
      try {
        const rows = [];
        for await (const m of s.client.chat.models()) {
          rows.push([
            m.name ?? "",
            (m.provider ?? "").replace("CHAT_PROVIDER_", "").toLowerCase(),
            m.available ? "yes" : "no",
            m.context_tokens ?? "",
            m.max_output_tokens ?? "",
            `$${(m.usd_per_million_input_tokens ?? 0).toFixed(2)} / $${(m.usd_per_million_output_tokens ?? 0).toFixed(2)}`,
          ]);
        }
        clear(chatModels, table(["model", "provider", "available", "context", "max output", "USD per 1M in / out"], rows, { id: "chat-models-table" }));
      } catch (err) {
        clear(chatModels, h("p", { class: "notice error" }, describeError(err)));
      }
    })();
  } else clear(chatModels, missing("chat"));
  if (s.scopes.has("embeddings")) {
    void (async () => {
      try {
        const rows = [];
        for await (const m of s.client.embeddings.models()) {
          rows.push([
            m.name ?? "",
            (m.provider ?? "").replace("EMBEDDING_PROVIDER_", "").toLowerCase(),
            m.available ? "yes" : "no",
            m.dimensions ?? "",
            m.max_tokens ?? "",
          ]);
        }
        clear(embeddingModels, table(["model", "provider", "available", "dimensions", "max tokens"], rows, { id: "embedding-models-table" }));
      } catch (err) {
        clear(embeddingModels, h("p", { class: "notice error" }, describeError(err)));
      }
    })();
  } else clear(embeddingModels, missing("embeddings"));
  if (s.scopes.has("ingest")) {
    void (async () => {
      try {
        const rows = [];
        for await (const c of s.client.collections.list()) {
          rows.push([c.name ?? "", c.document_count ?? 0, c.chunk_count ?? 0, c.embedding_model ?? "", c.dimensions ?? ""]);
        }
        clear(collections, table(["collection", "documents", "chunks", "embedding model", "dimensions"], rows, { id: "collections-table" }));
      } catch (err) {
        clear(collections, h("p", { class: "notice error" }, describeError(err)));
      }
    })();
  } else clear(collections, missing("ingest"));

  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
