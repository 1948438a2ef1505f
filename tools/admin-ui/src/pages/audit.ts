// Audit log: every administrative action of a tenant (keys, users, service accounts, OAuth
// tokens), newest first, from GET /api/v1/auditEvents; filter by action, search the rest.
// Offered when the gateway's OpenAPI document lists that API (like the Users page).
import type { Session } from "../session.js";
import { clear, describeError, fmtTime, h, notice, table } from "../ui.js";

interface AuditEvent {
  name?: string;
  tenant?: string;
  actor?: string;
  actor_credential?: string;
  action?: string;
  target?: string;
  create_time?: string;
  source_ip?: string;
  details?: Record<string, string>;
}

const ACTIONS = [
  "api_key.create",
  "api_key.rotate",
  "api_key.revoke",
  "user.create",
  "user.update",
  "user.delete",
  "service_account.create",
  "service_account.delete",
  "oauth2.token.issue",
];
const PAGES = 5; // at most 5 pages of 200 events: the newest 1000

export function auditPage(root: HTMLElement, s: Session): void {
  const msg = h("p", { class: "notice", hidden: true, id: "audit-notice" });
  const list = h("div", { id: "audit-list" });
  const tenant = h("input", { id: "audit-tenant", value: s.tenant, placeholder: "tenant" });
  const action = h(
    "select",
    { id: "audit-action" },
    h("option", { value: "" }, "any action"),
    ACTIONS.map((a) => h("option", { value: a }, a)),
  );
  const search = h("input", { id: "audit-search", type: "search", placeholder: "actor, target or detail" });
  let events: AuditEvent[] = [];

  function render(): void {
    const q = search.value.trim().toLowerCase();
    const shown = events.filter(
      (e) =>
        !q ||
        [e.actor, e.target, e.actor_credential, e.source_ip, ...Object.values(e.details ?? {})].some((v) =>
          (v ?? "").toLowerCase().includes(q),
        ),
    );
    clear(
      list,
      table(
        ["time", "action", "actor", "credential", "target", "details", "source"],
        shown.map((e) => [
          fmtTime(e.create_time),
          h("code", {}, e.action ?? ""),
          e.actor ?? "",
          e.actor_credential ?? "",
          e.target ?? "",
          Object.entries(e.details ?? {})
            .map(([k, v]) => `${k}=${v}`)
            .join(" "),
          e.source_ip ?? "",
        ]),
        { id: "audit-table" },
      ),
    );
  }

  async function refresh(): Promise<void> {
    try {
      const all: AuditEvent[] = [];
      let page_token: string | undefined;
      for (let i = 0; i < PAGES; i++) {
        const r = await s.client.transport.json<{ audit_events?: AuditEvent[]; next_page_token?: string }>({
          method: "GET",
          path: "/api/v1/auditEvents",
          query: {
            tenant: tenant.value.trim() || undefined,
            filter: action.value ? `action = "${action.value}"` : undefined,
            page_size: 200,
            page_token,
          },
        });
        all.push(...(r.audit_events ?? []));
        page_token = r.next_page_token || undefined;
        if (!page_token) break;
      }
      events = all;
      notice(msg, "");
      render();
    } catch (err) {
      notice(msg, describeError(err), "error");
    }
  }

  tenant.addEventListener("change", () => void refresh());
  action.addEventListener("change", () => void refresh());
  search.addEventListener("input", render);
  clear(
    root,
    h("h1", {}, "Audit log"),
    msg,
    h(
      "div",
      { class: "toolbar" },
      h("label", {}, "Tenant ", tenant),
      h("label", {}, "Action ", action),
      h("label", {}, "Search ", search),
      h("button", { type: "button", id: "audit-refresh", onclick: () => void refresh() }, "Refresh"),
    ),
    list,
  );
  void refresh();
}
