// Usage: requests, errors, tokens, estimated cost, cache hit rate and mean latency over time
// (hour or day) and per endpoint, from GET /api/v1/analytics/usage; CSV export. A token
// with `admin` may pick any tenant (the tenants of the stored keys); others see their own.
import type { Chart } from "chart.js";
import type { GetUsageResponse } from "@ragline/client";
import { barChart, lineChart } from "../charts.js";
import { toCsv } from "../csv.js";
import type { Session } from "../session.js";
import { clear, describeError, download, h, notice, num, table } from "../ui.js";

const RANGES: Record<string, { hours: number; granularity: "GRANULARITY_HOUR" | "GRANULARITY_DAY" }> = {
  "24h": { hours: 24, granularity: "GRANULARITY_HOUR" },
  "7d": { hours: 24 * 7, granularity: "GRANULARITY_DAY" },
  "30d": { hours: 24 * 30, granularity: "GRANULARITY_DAY" },
};

// p95_latency_ms: estimated from the usage store's latency histogram (within a factor of 2).
type Stats = NonNullable<GetUsageResponse["total"]> & { p95_latency_ms?: number };
// The tenant's paid-model spend today against its daily cap (GetUsageResponse.spend_cap).
interface SpendCap {
  daily_cap_usd?: number;
  spent_today_usd?: number;
  reset_time?: string;
  known?: boolean;
}
type Usage = GetUsageResponse & {
  spend_cap?: SpendCap;
  keys?: { key_id?: string; stats?: Stats }[];
};

function derived(s: Stats | undefined) {
  const requests = num(s?.requests);
  return {
    requests,
    errors: num(s?.errors),
    tokens: num(s?.tokens_in) + num(s?.tokens_out),
    tokensIn: num(s?.tokens_in),
    tokensOut: num(s?.tokens_out),
    cost: num(s?.cost_usd),
    cacheHitRate: num(s?.cache_hit_rate),
    meanMs: requests ? num(s?.duration_ms) / requests : 0,
    p95Ms: num(s?.p95_latency_ms),
  };
}

export function usagePage(root: HTMLElement, s: Session): () => void {
  const admin = s.scopes.has("admin");
  const tenant = h("select", { id: "usage-tenant", disabled: !admin }, h("option", { value: "" }, s.tenant || "own tenant"));
  const range = h(
    "select",
    { id: "usage-range" },
    Object.keys(RANGES).map((r) => h("option", { value: r }, `last ${r}`)),
  );
  const exportBtn = h("button", { type: "button", id: "usage-csv", disabled: true }, "Export CSV");
  const refreshBtn = h("button", { type: "button", id: "usage-refresh" }, "Refresh");
  const msg = h("p", { class: "notice", hidden: true });
  const cards = h("div", { class: "cards", id: "usage-totals" });
  const spend = h("div", { class: "panel", id: "spend-cap" });
  const canvases = {
    traffic: h("canvas", { id: "chart-requests", "aria-label": "requests and errors over time" }),
    tokens: h("canvas", { id: "chart-tokens", "aria-label": "tokens and cost over time" }),
    quality: h("canvas", { id: "chart-latency", "aria-label": "cache hit rate and latency over time" }),
    endpoints: h("canvas", { id: "chart-endpoints", "aria-label": "requests per endpoint" }),
  };
  const endpoints = h("div", { id: "usage-endpoints" });
  const perKey = h("div", { id: "usage-keys" });
  const perUser = h("div", { id: "usage-users" });
  // Key id -> name and owner, from the key list (admin only): the per-user view groups by owner.
  const keyInfo = new Map<string, { name: string; owner: string }>();
  const charts: Chart[] = [];
  let last: Usage | undefined;

  clear(
    root,
    h("h1", {}, "Usage"),
    !admin && h("p", { class: "notice info", id: "read-only" }, "Read-only: your token can read usage, not manage keys."),
    h("div", { class: "toolbar" }, h("label", {}, "Tenant ", tenant), h("label", {}, "Range ", range), refreshBtn, exportBtn),
    msg,
    cards,
    spend,
    h(
      "div",
      { class: "charts" },
      h("figure", {}, h("figcaption", {}, "Requests and errors"), h("div", { class: "chart" }, canvases.traffic)),
      h("figure", {}, h("figcaption", {}, "Tokens and estimated cost (USD)"), h("div", { class: "chart" }, canvases.tokens)),
      h("figure", {}, h("figcaption", {}, "Cache hit rate and latency, mean and p95 (ms)"), h("div", { class: "chart" }, canvases.quality)),
      h("figure", {}, h("figcaption", {}, "Requests per endpoint"), h("div", { class: "chart" }, canvases.endpoints)),
    ),
    h("h2", {}, "Per endpoint"),
    endpoints,
    h("h2", {}, "Per key"),
    perKey,
    admin && h("h2", {}, "Per user (key owner)"),
    admin && perUser,
    h(
      "p",
      { class: "hint" },
      "The usage API reports per tenant, endpoint, key and period; per user is the keys' owners summed (mean latency weighted by requests, p95 the worst key's). p95 latency is estimated from a histogram of doubling buckets (within a factor of 2).",
    ),
  );

  if (admin) {
    // The tenants to choose from: those that have keys.
    void (async () => {
      try {
        const tenants = new Set<string>();
        for await (const k of s.client.keys.list({})) {
          if (k.tenant) tenants.add(k.tenant);
          const owner = (k as { owner?: string }).owner ?? "";
          if (k.key_id) keyInfo.set(k.key_id, { name: k.name ?? "", owner });
        }
        for (const t of [...tenants].sort()) {
          if (t !== s.tenant) tenant.append(h("option", { value: t }, t));
        }
      } catch (err) {
        notice(msg, describeError(err), "error");
      }
    })();
  }

  async function load(): Promise<void> {
    const r = RANGES[range.value] ?? RANGES["24h"]!;
    const end = new Date();
    // Whole periods, so the first bar is not a partial hour or day.
    const start = new Date(end.getTime() - r.hours * 3600_000);
    if (r.granularity === "GRANULARITY_DAY") start.setUTCHours(0, 0, 0, 0);
    else start.setUTCMinutes(0, 0, 0);
    notice(msg, "Loading…");
    try {
      const u: Usage = await s.client.usage.get({
        tenant: tenant.value || undefined,
        start_time: start.toISOString(),
        end_time: end.toISOString(),
        granularity: r.granularity,
      });
      last = u;
      notice(msg, "");
      draw(u, r.granularity === "GRANULARITY_HOUR");
      exportBtn.disabled = false;
    } catch (err) {
      notice(msg, describeError(err), "error");
    }
  }

  function drawSpend(cap: SpendCap | undefined): void {
    const limit = num(cap?.daily_cap_usd);
    const spent = num(cap?.spent_today_usd);
    const share = limit > 0 ? Math.min(1, spent / limit) : 0;
    const state = !cap?.known
      ? "unknown (the spend counter could not be read)"
      : limit > 0
        ? `$${spent.toFixed(4)} of $${limit.toPrecision(3)} today (${(share * 100).toFixed(1)}%)${spent >= limit ? ": paid models refused until the reset" : ""}`
        : `$${spent.toFixed(4)} today, no cap`;
    clear(
      spend,
      h("strong", {}, "Paid-model spend cap: "),
      h("span", { id: "spend-state" }, state),
      limit > 0 && h("progress", { id: "spend-progress", max: 1, value: share.toFixed(4) }),
      cap?.reset_time && h("span", { class: "hint" }, ` resets ${cap.reset_time.replace("T", " ").slice(0, 16)} UTC`),
    );
  }

  function draw(u: Usage, hourly: boolean): void {
    drawSpend(u.spend_cap);
    drawKeys(u);
    for (const c of charts.splice(0)) c.destroy();
    const t = derived(u.total);
    clear(
      cards,
      card("Requests", t.requests.toLocaleString("en"), "total-requests"),
      card("Errors", t.errors.toLocaleString("en"), "total-errors"),
      card("Tokens", t.tokens.toLocaleString("en"), "total-tokens"),
      card("Estimated cost", `$${t.cost.toFixed(4)}`, "total-cost"),
      card("Cache hit rate", `${(t.cacheHitRate * 100).toFixed(1)}%`, "total-cache"),
      card("Mean latency", `${t.meanMs.toFixed(0)} ms`, "total-latency"),
      card("p95 latency", `${t.p95Ms.toFixed(0)} ms`, "total-p95"),
    );
    const series = u.series ?? [];
    const labels = series.map((p) => label(p.start_time, hourly));
    const rows = series.map((p) => derived(p.stats));
    charts.push(
      lineChart(canvases.traffic, labels, [
        { label: "requests", data: rows.map((x) => x.requests), color: "#2563eb" },
        { label: "errors", data: rows.map((x) => x.errors), color: "#dc2626" },
      ]),
      lineChart(canvases.tokens, labels, [
        { label: "tokens", data: rows.map((x) => x.tokens), color: "#7c3aed" },
        { label: "cost USD", data: rows.map((x) => x.cost), color: "#059669", axis: "y1" },
      ]),
      lineChart(canvases.quality, labels, [
        { label: "cache hit %", data: rows.map((x) => x.cacheHitRate * 100), color: "#d97706" },
        { label: "mean ms", data: rows.map((x) => x.meanMs), color: "#0891b2", axis: "y1" },
        { label: "p95 ms", data: rows.map((x) => x.p95Ms), color: "#be185d", axis: "y1" },
      ]),
    );
    const eps = [...(u.endpoints ?? [])].sort((a, b) => num(b.stats?.requests) - num(a.stats?.requests));
    charts.push(
      barChart(
        canvases.endpoints,
        eps.map((e) => e.endpoint ?? "?"),
        [
          { label: "requests", data: eps.map((e) => num(e.stats?.requests)), color: "#2563eb" },
          { label: "errors", data: eps.map((e) => num(e.stats?.errors)), color: "#dc2626" },
        ],
      ),
    );
    clear(
      endpoints,
      table(
        ["endpoint", "requests", "errors", "tokens", "cost USD", "cache hit", "mean ms", "p95 ms"],
        eps.map((e) => {
          const d = derived(e.stats);
          return [
            e.endpoint ?? "?",
            d.requests,
            d.errors,
            d.tokens,
            d.cost.toFixed(4),
            `${(d.cacheHitRate * 100).toFixed(1)}%`,
            d.meanMs.toFixed(0),
            d.p95Ms.toFixed(0),
          ];
        }),
        { id: "endpoint-table" },
      ),
    );
  }

  function drawKeys(u: Usage): void {
    const rows = (u.keys ?? []).map((k) => ({ id: k.key_id ?? "", d: derived(k.stats) }));
    const line = (label: string, d: ReturnType<typeof derived>) => [
      label,
      d.requests,
      d.errors,
      d.tokens,
      d.cost.toFixed(4),
      d.meanMs.toFixed(0),
      d.p95Ms.toFixed(0),
    ];
    const head = ["requests", "errors", "tokens", "cost USD", "mean ms", "p95 ms"];
    clear(
      perKey,
      table(
        ["key", ...head],
        rows.map((r) => {
          const info = keyInfo.get(r.id);
          return line(r.id ? `${r.id}${info?.name ? ` (${info.name})` : ""}` : "(before keys were counted)", r.d);
        }),
        { id: "key-table" },
      ),
    );
    if (!admin) return;
    // Per user: the keys' owners summed (request-weighted means; p95 is the worst key's).
    const owners = new Map<string, ReturnType<typeof derived>>();
    for (const r of rows) {
      const owner = keyInfo.get(r.id)?.owner || "(unknown owner)";
      const o = owners.get(owner);
      if (!o) owners.set(owner, { ...r.d });
      else {
        const n = o.requests + r.d.requests;
        o.meanMs = n ? (o.meanMs * o.requests + r.d.meanMs * r.d.requests) / n : 0;
        o.p95Ms = Math.max(o.p95Ms, r.d.p95Ms);
        o.requests = n;
        o.errors += r.d.errors;
        o.tokens += r.d.tokens;
        o.cost += r.d.cost;
      }
    }
    clear(
      perUser,
      table(["owner", ...head], [...owners].map(([owner, d]) => line(owner, d)), { id: "user-table" }),
    );
  }

  function exportCsv(): void {
    if (!last) return;
    const header = ["kind", "key", "requests", "errors", "tokens_in", "tokens_out", "cost_usd", "cache_hit_rate", "mean_latency_ms", "p95_latency_ms"];
    const row = (kind: string, key: string, st: Stats | undefined) => {
      const d = derived(st);
      return [kind, key, d.requests, d.errors, d.tokensIn, d.tokensOut, d.cost, d.cacheHitRate, Math.round(d.meanMs), Math.round(d.p95Ms)];
    };
    const rows = [
      row("total", last.tenant ?? "", last.total),
      ...(last.series ?? []).map((p) => row("period", p.start_time ?? "", p.stats)),
      ...(last.endpoints ?? []).map((e) => row("endpoint", e.endpoint ?? "", e.stats)),
      ...(last.keys ?? []).map((k) => row("key", k.key_id ?? "", k.stats)),
    ];
    download(`ragline-usage-${last.tenant ?? "tenant"}-${range.value}.csv`, toCsv(header, rows));
  }

  exportBtn.addEventListener("click", exportCsv);
  refreshBtn.addEventListener("click", () => void load());
  range.addEventListener("change", () => void load());
  tenant.addEventListener("change", () => void load());
  void load();
  return () => {
    for (const c of charts.splice(0)) c.destroy();
  };
}

function card(title: string, value: string, id: string): HTMLElement {
  return h("div", { class: "card" }, h("span", {}, title), h("strong", { id }, value));
}

function label(time: string | undefined, hourly: boolean): string {
  if (!time) return "?";
  const iso = new Date(time).toISOString();
  return hourly ? iso.slice(11, 16) : iso.slice(5, 10);
}
