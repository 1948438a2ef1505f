// Users: invite (create), change role, remove, filter and search, through /api/v1/users
// (the auth service's users API). The page is offered only when the gateway's OpenAPI
// document lists that API, so a gateway without it shows no broken page.
import type { Transport } from "@ragline/client";
import type { Session } from "../session.js";
import { baseUrl } from "../session.js";
import { clear, describeError, fmtTime, h, notice, table } from "../ui.js";

const ROLES = ["ROLE_OWNER", "ROLE_ADMIN", "ROLE_MEMBER", "ROLE_VIEWER"];
// UpdateUser is a PATCH (the SDK's transport takes it since 37bd813; the double cast keeps
// this building against an SDK copy whose method type predates it).
const PATCH = "PATCH" as string as Parameters<Transport["json"]>[0]["method"];

interface User {
  name?: string;
  tenant?: string;
  email?: string;
  role?: string;
  display_name?: string;
  state?: string;
  scopes?: string[];
  create_time?: string;
}

/** The API paths the gateway serves, from its public OpenAPI document (empty if unread). */
export async function apiPaths(): Promise<Set<string>> {
  try {
    const r = await fetch(`${baseUrl()}/openapi.json`, { credentials: "omit" });
    if (!r.ok) return new Set();
    const doc = (await r.json()) as { paths?: Record<string, unknown> };
    return new Set(Object.keys(doc.paths ?? {}));
  } catch {
    return new Set();
  }
}

const roleName = (r: string | undefined) => (r ?? "").replace("ROLE_", "").toLowerCase();

export function usersPage(root: HTMLElement, s: Session): void {
  const t = s.client.transport;
  const msg = h("p", { class: "notice", hidden: true, id: "users-notice" });
  const list = h("div", { id: "users-list" });
  const search = h("input", { id: "users-search", type: "search", placeholder: "email, name or tenant" });
  const roleFilter = h(
    "select",
    { id: "users-role" },
    h("option", { value: "" }, "any role"),
    ROLES.map((r) => h("option", { value: r }, roleName(r))),
  );
  // Users are listed per tenant (an operator's token may name any).
  const listTenant = h("input", { id: "users-tenant", value: s.tenant, placeholder: "tenant" });
  let users: User[] = [];

  const email = h("input", { id: "new-user-email", type: "email", required: true, placeholder: "name@example.com" });
  const display = h("input", { id: "new-user-name", placeholder: "display name (optional)" });
  const tenant = h("input", { id: "new-user-tenant", value: s.tenant, placeholder: "tenant" });
  const role = h("select", { id: "new-user-role" }, ROLES.map((r) => h("option", { value: r, selected: r === "ROLE_VIEWER" }, roleName(r))));
  const form = h(
    "form",
    {
      id: "create-user",
      class: "panel",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        try {
          const u = await t.json<User>({
            method: "POST",
            path: "/api/v1/users",
            json: {
              email: email.value.trim(),
              role: role.value,
              tenant: tenant.value.trim() || undefined,
              display_name: display.value.trim() || undefined,
            },
          });
          email.value = "";
          display.value = "";
          listTenant.value = u.tenant ?? listTenant.value;
          await refresh();
          notice(msg, `User ${u.email ?? ""} added as ${roleName(u.role)}.`, "ok");
        } catch (err) {
          notice(msg, describeError(err), "error");
        }
      },
    },
    h("h2", {}, "Invite a user"),
    h(
      "div",
      { class: "grid" },
      h("label", {}, "Email", email),
      h("label", {}, "Display name", display),
      h("label", {}, "Tenant", tenant),
      h("label", {}, "Role", role),
    ),
    h("button", { type: "submit", id: "create-user-submit" }, "Add user"),
  );

  function render(): void {
    const q = search.value.trim().toLowerCase();
    const shown = users.filter(
      (u) =>
        (!roleFilter.value || u.role === roleFilter.value) &&
        (!q || [u.email, u.display_name, u.tenant, u.name].some((v) => (v ?? "").toLowerCase().includes(q))),
    );
    clear(
      list,
      table(
        ["email", "name", "tenant", "role", "state", "created", ""],
        shown.map((u) => [
          u.email ?? "",
          u.display_name || "—",
          u.tenant ?? "",
          roleSelect(u),
          (u.state ?? "").replace("USER_STATE_", "").toLowerCase(),
          fmtTime(u.create_time),
          h(
            "button",
            {
              type: "button",
              class: "remove danger",
              "data-user": u.name ?? "",
              onclick: async () => {
                if (!window.confirm(`Remove ${u.email ?? u.name}? Their keys are revoked.`)) return;
                try {
                  await t.json({ method: "DELETE", path: `/api/v1/${u.name ?? ""}` });
                  await refresh();
                  notice(msg, `User ${u.email ?? ""} removed.`, "ok");
                } catch (err) {
                  notice(msg, describeError(err), "error");
                }
              },
            },
            "Remove",
          ),
        ]),
        { id: "users-table" },
      ),
    );
  }

  function roleSelect(u: User): HTMLSelectElement {
    const sel = h("select", { "aria-label": `role of ${u.email ?? ""}`, class: "role" }, ROLES.map((r) => h("option", { value: r, selected: r === u.role }, roleName(r))));
    sel.addEventListener("change", async () => {
      try {
        await t.json({
          method: PATCH,
          path: `/api/v1/${u.name ?? ""}`,
          query: { update_mask: "role" },
          json: { role: sel.value },
        });
        await refresh();
        notice(msg, `${u.email ?? ""} is now ${roleName(sel.value)}.`, "ok");
      } catch (err) {
        notice(msg, describeError(err), "error");
        sel.value = u.role ?? "";
      }
    });
    return sel;
  }

  async function refresh(): Promise<void> {
    try {
      const all: User[] = [];
      let page_token: string | undefined;
      do {
        const r = await t.json<{ users?: User[]; next_page_token?: string }>({
          method: "GET",
          path: "/api/v1/users",
          query: { tenant: listTenant.value.trim() || undefined, page_token },
        });
        all.push(...(r.users ?? []));
        page_token = r.next_page_token || undefined;
      } while (page_token);
      users = all;
      render();
    } catch (err) {
      notice(msg, describeError(err), "error");
    }
  }

  search.addEventListener("input", render);
  listTenant.addEventListener("change", () => void refresh());
  roleFilter.addEventListener("change", render);
  clear(
    root,
    h("h1", {}, "Users"),
    msg,
    form,
    h("div", { class: "toolbar" }, h("label", {}, "Tenant ", listTenant), h("label", {}, "Search ", search), h("label", {}, "Role ", roleFilter)),
    list,
  );
  void refresh();
}
