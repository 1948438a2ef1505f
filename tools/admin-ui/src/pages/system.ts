// System: every component's health (polled every 5 s), the chat and embedding models with
// availability and prices, the collections with their counts, the rate-limit tiers and each
// service's effective configuration (secrets redacted by the server). Each part is shown
// when the token has the scope its API needs.
import type { Session } from "../session.js";
import { type Child, clear, describeError, fmtTime, h, table } from "../ui.js";

const POLL_MS = 5000;
const MAX_INDEX_STATUS = 50;

/** The answering retriever replica's index of a collection, in a word or two: in step with
 * the database, behind it (writes not applied yet), or the gap its last check found. */
async function indexCell(s: Session, collection: string): Promise<HTMLElement> {
  try {
    const st = await s.client.collections.indexStatus(collection, { maxRetries: 0 });
    const lag = Number(st.database_version ?? 0) - Number(st.index_version ?? 0);
    const gap = st.gap_chunks ?? 0;
    const checked = st.reconcile_time ? `, checked ${fmtTime(st.reconcile_time)}` : "";
    const title = `replica ${st.replica}: ${st.indexed_chunks ?? 0} chunks, version ${st.index_version ?? 0} of ${st.database_version ?? 0}${checked}`;
    if (!st.loaded) return h("span", { class: "state", title }, "not loaded yet");
    if (gap > 0) return h("span", { class: "state error", title }, `gap of ${gap} chunks (repaired)`);
    if (lag > 0) return h("span", { class: "state", title }, `${lag} writes behind`);
    return h("span", { class: "state ok", title }, `in step (${st.indexed_chunks ?? 0} chunks)`);
  } catch (err) {
    return h("span", { class: "state error" }, describeError(err));
  }
}

export function systemPage(root: HTMLElement, s: Session): () => void {
  const health = h("div", { id: "health" });
  const healthStamp = h("p", { class: "hint", id: "health-updated" });
  const chatModels = h("div", { id: "chat-models" });
  const embeddingModels = h("div", { id: "embedding-models" });
  const collections = h("div", { id: "collections" });
  const tiers = h("div", { id: "rate-limit-tiers" });
  const config = h("div", { id: "configuration" });
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
    h("h2", {}, "Rate-limit tiers"),
    h("p", { class: "hint" }, "Requests per minute per key, by the key's tier and the endpoint group."),
    tiers,
    h("h2", {}, "Configuration"),
    h(
      "p",
      { class: "hint" },
      "Each service's settings as it reported them when it last started. Secrets show only whether they are set; URLs lose their user, password and query.",
    ),
    config,
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
        const rows: Child[][] = [];
        for await (const c of s.client.collections.list()) {
          const name = c.name ?? "";
          // The index of the first collections only: one request each.
          const index = rows.length < MAX_INDEX_STATUS && s.scopes.has("search") ? await indexCell(s, name) : "—";
          rows.push([name, c.document_count ?? 0, c.chunk_count ?? 0, index, c.embedding_model ?? "", c.dimensions ?? ""]);
        }
        clear(
          collections,
          table(["collection", "documents", "chunks", "index", "embedding model", "dimensions"], rows, { id: "collections-table" }),
        );
      } catch (err) {
        clear(collections, h("p", { class: "notice error" }, describeError(err)));
      }
    })();
  } else clear(collections, missing("ingest"));

  void (async () => {
    try {
      const c = await s.client.configuration();
      const groups = [...new Set((c.rate_limit_tiers ?? []).flatMap((t) => (t.limits ?? []).map((l) => l.endpoint_group ?? "")))];
      clear(
        tiers,
        table(
          ["tier", ...groups],
          (c.rate_limit_tiers ?? []).map((t) => {
            const per = new Map((t.limits ?? []).map((l) => [l.endpoint_group ?? "", l.requests_per_minute ?? 0]));
            return [t.tier ?? "", ...groups.map((g) => per.get(g) ?? "—")];
          }),
          { id: "tiers-table" },
        ),
      );
      const services = c.services ?? [];
      clear(
        config,
        services.length
          ? services.map((svc) =>
              h(
                "details",
                { "data-service": svc.service ?? "" },
                h(
                  "summary",
                  {},
                  `${svc.service} · ${svc.instance} · v${svc.version} · reported ${fmtTime(svc.report_time)}`,
                ),
                table(
                  ["setting", "value"],
                  (svc.settings ?? []).map((x) => [
                    x.name ?? "",
                    x.redacted ? h("span", { class: "redacted" }, x.value ?? "") : (x.value ?? ""),
                  ]),
                ),
              ),
            )
          : h("p", { class: "hint" }, "No service has reported its configuration yet."),
      );
    } catch (err) {
      clear(tiers, h("p", { class: "notice error" }, describeError(err)));
      clear(config);
    }
  })();

  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
