// Keys: list with filter and search, create (the secret shown once, with copy), rotate with
// a grace period, revoke. Needs the `admin` scope (the page is hidden without it, and the
// API refuses it anyway).
import type { ApiKey } from "@ragline/client";
import type { Session } from "../session.js";
import { clear, copy, describeError, fmtTime, h, notice, table } from "../ui.js";

const SCOPES = ["embeddings", "search", "chat", "ingest", "analytics", "admin"];
const TIERS = ["free", "standard", "enterprise"];

export function keysPage(root: HTMLElement, s: Session): void {
  const msg = h("p", { class: "notice", hidden: true, id: "keys-notice" });
  const secretBox = h("div", { id: "secret", hidden: true });
  const list = h("div", { id: "keys-list" });
  const search = h("input", { id: "keys-search", type: "search", placeholder: "name, id, prefix or tenant" });
  const stateFilter = h(
    "select",
    { id: "keys-state" },
    h("option", { value: "" }, "any state"),
    ["API_KEY_STATE_ACTIVE", "API_KEY_STATE_EXPIRED", "API_KEY_STATE_REVOKED"].map((x) =>
      h("option", { value: x }, x.replace("API_KEY_STATE_", "").toLowerCase()),
    ),
  );
  let keys: ApiKey[] = [];

  // The create form.
  const tenant = h("input", { id: "new-key-tenant", required: true, value: s.tenant, placeholder: "tenant" });
  const name = h("input", { id: "new-key-name", placeholder: "name (optional)" });
  const tier = h("select", { id: "new-key-tier" }, TIERS.map((t) => h("option", { value: t, selected: t === "standard" }, t)));
  const env = h(
    "select",
    { id: "new-key-env" },
    h("option", { value: "KEY_ENVIRONMENT_LIVE" }, "live"),
    h("option", { value: "KEY_ENVIRONMENT_TEST" }, "test"),
  );
  const ttl = h("input", { id: "new-key-ttl", type: "number", min: 0, placeholder: "expires in days (empty: never)" });
  const scopeBoxes = SCOPES.map((sc) =>
    h("input", { type: "checkbox", value: sc, name: "scope", id: `scope-${sc}`, checked: sc === "search" }),
  );
  const form = h(
    "form",
    {
      id: "create-key",
      class: "panel",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const scopes = scopeBoxes.filter((b) => b.checked).map((b) => b.value);
        const days = Number(ttl.value || 0);
        try {
          const r = await s.client.keys.create({
            tenant: tenant.value.trim(),
            scopes,
            name: name.value.trim() || undefined,
            tier: tier.value,
            environment: env.value as ApiKey["environment"],
            ttl_seconds: days > 0 ? Math.round(days * 86400) : undefined,
          });
          showSecret(r.key ?? "", `Key ${r.api_key?.key_id ?? ""} created`);
          name.value = "";
          await refresh();
        } catch (err) {
          notice(msg, describeError(err), "error");
        }
      },
    },
    h("h2", {}, "Create a key"),
    h(
      "div",
      { class: "grid" },
      h("label", {}, "Tenant", tenant),
      h("label", {}, "Name", name),
      h("label", {}, "Tier", tier),
      h("label", {}, "Environment", env),
      h("label", {}, "Expiry (days)", ttl),
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Scopes"),
      scopeBoxes.map((b) => h("label", { class: "check" }, b, b.value)),
    ),
    h("button", { type: "submit", id: "create-key-submit" }, "Create key"),
  );

  /** The plaintext key, shown once: it is in this box until dismissed and nowhere else. */
  function showSecret(key: string, title: string): void {
    const field = h("input", { id: "secret-value", readonly: true, value: key, spellcheck: "false" });
    const copied = h("span", { class: "hint", id: "secret-copied" });
    clear(
      secretBox,
      h("h2", {}, title),
      h("p", {}, "Copy the key now: it is shown only once and cannot be read again."),
      h(
        "div",
        { class: "secret-row" },
        field,
        h(
          "button",
          {
            type: "button",
            id: "secret-copy",
            onclick: async () => {
              copied.textContent = (await copy(key, field)) ? "copied" : "selected: press Ctrl+C";
            },
          },
          "Copy",
        ),
        h(
          "button",
          {
            type: "button",
            id: "secret-dismiss",
            onclick: () => {
              clear(secretBox);
              secretBox.hidden = true;
            },
          },
          "Done",
        ),
      ),
      copied,
    );
    secretBox.className = "panel secret";
    secretBox.hidden = false;
  }

  function render(): void {
    const q = search.value.trim().toLowerCase();
    const shown = keys.filter(
      (k) =>
        (!stateFilter.value || k.state === stateFilter.value) &&
        (!q || [k.name, k.key_id, k.prefix, k.tenant].some((v) => (v ?? "").toLowerCase().includes(q))),
    );
    clear(
      list,
      table(
        ["name", "id", "prefix", "tenant", "scopes", "tier", "state", "created", "expires", "last used", ""],
        shown.map((k) => [
          k.name || "—",
          h("code", {}, k.key_id ?? ""),
          h("code", {}, k.prefix ?? ""),
          k.tenant ?? "",
          (k.scopes ?? []).join(" "),
          k.tier ?? "",
          h("span", { class: `state ${k.state ?? ""}` }, (k.state ?? "").replace("API_KEY_STATE_", "").toLowerCase()),
          fmtTime(k.create_time),
          fmtTime(k.expire_time),
          fmtTime(k.last_used_time),
          k.state === "API_KEY_STATE_ACTIVE" ? actions(k) : "",
        ]),
        { id: "keys-table" },
      ),
    );
  }

  function actions(k: ApiKey): HTMLElement {
    const id = k.key_id ?? "";
    const grace = h("input", {
      type: "number",
      min: 0,
      step: "any",
      value: 24,
      class: "small",
      title: "hours the old key keeps working (0: it stops at once)",
      "aria-label": "grace hours",
    });
    return h(
      "span",
      { class: "actions", "data-key-id": id },
      h(
        "button",
        {
          type: "button",
          class: "rotate",
          onclick: async () => {
            if (!window.confirm(`Rotate ${k.name || id}? The old key keeps working for ${grace.value} h.`)) return;
            try {
              // The API reads 0 as "the default" (24 h): no grace at all is one second.
              const seconds = Math.max(1, Math.round(Number(grace.value || 0) * 3600));
              const r = await s.client.keys.rotate(id, { grace_period_seconds: seconds });
              showSecret(r.key ?? "", `Key ${id} rotated to ${r.api_key?.key_id ?? ""}`);
              await refresh();
            } catch (err) {
              notice(msg, describeError(err), "error");
            }
          },
        },
        "Rotate",
      ),
      grace,
      "h",
      h(
        "button",
        {
          type: "button",
          class: "revoke danger",
          onclick: async () => {
            if (!window.confirm(`Revoke ${k.name || id}? It stops working within about a second.`)) return;
            try {
              await s.client.keys.revoke(id);
              await refresh();
              notice(msg, `Key ${id} revoked.`, "ok");
            } catch (err) {
              notice(msg, describeError(err), "error");
            }
          },
        },
        "Revoke",
      ),
    );
  }

  async function refresh(): Promise<void> {
    try {
      const all: ApiKey[] = [];
      for await (const k of s.client.keys.list({})) all.push(k);
      keys = all.sort((a, b) => (b.create_time ?? "").localeCompare(a.create_time ?? ""));
      render();
    } catch (err) {
      notice(msg, describeError(err), "error");
    }
  }

  search.addEventListener("input", render);
  stateFilter.addEventListener("change", render);
  clear(
    root,
    h("h1", {}, "API keys"),
    msg,
    secretBox,
    form,
    h("div", { class: "toolbar" }, h("label", {}, "Search ", search), h("label", {}, "State ", stateFilter)),
    list,
  );
  void refresh();
}
