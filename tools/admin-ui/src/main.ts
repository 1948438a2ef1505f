// The admin dashboard: sign-in, then Usage, Keys, Users and System pages (hash routes, so
// nothing but the page name is ever in the URL). docs/dashboard.md.
import "./style.css";
import { auditPage } from "./pages/audit.js";
import { keysPage } from "./pages/keys.js";
import { systemPage } from "./pages/system.js";
import { usagePage } from "./pages/usage.js";
import { apiPaths, usersPage } from "./pages/users.js";
import { type Session, onChange, session, signIn, signInWithToken, signOut } from "./session.js";
import { type SsoConfig, beginSignIn, completeSignIn, isReply, ssoConfig } from "./sso.js";
import { clear, describeError, h, notice } from "./ui.js";

export type Cleanup = () => void;
interface Page {
  id: string;
  title: string;
  /** Shown when the token has this scope (the API refuses the rest anyway). */
  scope: string;
  /** An API path the page needs: offered only when the gateway's OpenAPI document lists it. */
  needs?: string;
  render: (root: HTMLElement, s: Session) => Cleanup | void;
}

const PAGES: Page[] = [
  { id: "usage", title: "Usage", scope: "analytics", render: usagePage },
  { id: "keys", title: "Keys", scope: "admin", render: keysPage },
  { id: "users", title: "Users", scope: "admin", render: usersPage, needs: "/api/v1/users" },
  { id: "audit", title: "Audit", scope: "admin", render: auditPage, needs: "/api/v1/auditEvents" },
  { id: "system", title: "System", scope: "admin", render: systemPage },
];

const app = document.getElementById("app") as HTMLElement;
let cleanup: Cleanup | void;
let served = new Set<string>();
let sso: SsoConfig | undefined;

function visible(s: Session): Page[] {
  return PAGES.filter((p) => s.scopes.has(p.scope) && (!p.needs || served.has(p.needs)));
}

function route(): void {
  if (cleanup) cleanup();
  cleanup = undefined;
  const s = session();
  if (!s) return renderSignIn();
  const pages = visible(s);
  const wanted = window.location.hash.replace(/^#\/?/, "");
  const page = pages.find((p) => p.id === wanted) ?? pages[0];
  const main = h("main", { id: "page" });
  const nav = h(
    "nav",
    {},
    h("span", { class: "brand" }, "ragline admin"),
    pages.map((p) =>
      h("a", { href: `#/${p.id}`, class: p === page ? "active" : "", "data-page": p.id }, p.title),
    ),
    h(
      "span",
      { class: "who" },
      `tenant ${s.tenant || "?"} · ${[...s.scopes].includes("admin") ? "admin" : "read-only"}`,
    ),
    h("button", { type: "button", id: "sign-out", onclick: () => signOut() }, "Sign out"),
  );
  clear(app, nav, main);
  if (!page) {
    clear(main, h("p", { class: "notice error" }, "This token's scopes give access to no page here."));
    return;
  }
  main.dataset.page = page.id;
  cleanup = page.render(main, s);
}

function renderSignIn(expired = false, problem = ""): void {
  const key = h("input", {
    id: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "rl_live_…",
    required: true,
  });
  const msg = h("p", { class: "notice", hidden: true });
  const form = h(
    "form",
    {
      id: "sign-in",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        notice(msg, "Signing in…");
        try {
          await signIn(key.value.trim());
          key.value = "";
          served = await apiPaths();
          route();
        } catch (err) {
          key.value = "";
          notice(msg, describeError(err), "error");
        }
      },
    },
    h("h1", {}, "ragline admin"),
    h(
      "p",
      {},
      "Sign in with an API key. It is exchanged for a short-lived token kept in this tab's memory only; the key itself is not kept.",
    ),
    h("label", { for: "api-key" }, "API key"),
    key,
    h("button", { type: "submit" }, "Sign in"),
    msg,
  );
  const provider = sso;
  const single = provider
    ? h(
        "section",
        { class: "sso" },
        h("p", {}, `Or sign in through your organisation's identity provider (${new URL(provider.issuer).host}).`),
        h(
          "button",
          {
            type: "button",
            id: "sso-sign-in",
            onclick: async () => {
              notice(msg, "Going to the identity provider…");
              try {
                await beginSignIn(provider);
              } catch (err) {
                notice(msg, describeError(err), "error");
              }
            },
          },
          "Sign in with SSO",
        ),
      )
    : undefined;
  clear(app, h("main", { class: "sign-in" }, form, single));
  if (expired) notice(msg, "Your session has ended: sign in again.", "info");
  if (problem) notice(msg, problem, "error");
  key.focus();
}

/** The provider's reply to a sign-in started here: trade it for a session. */
async function finishSso(config: SsoConfig): Promise<void> {
  try {
    const token = await completeSignIn(config);
    await signInWithToken(token.accessToken, token.expiresIn);
    served = await apiPaths();
    route();
  } catch (err) {
    renderSignIn(false, describeError(err));
  }
}

async function start(): Promise<void> {
  sso = await ssoConfig();
  if (sso && isReply()) await finishSso(sso);
  else route();
}

onChange((s) => {
  if (!s) {
    if (cleanup) cleanup();
    cleanup = undefined;
    window.location.hash = "";
    renderSignIn();
  }
});
window.addEventListener("hashchange", route);
// A token ends on its own: check once a second and return to the sign-in form.
setInterval(() => {
  if (document.getElementById("page") && !session()) renderSignIn(true);
}, 1000);
window.addEventListener("unhandledrejection", (e) => console.warn(describeError(e.reason)));
void start();
