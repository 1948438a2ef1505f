// Single sign-on: the OAuth 2.0 authorization code flow with PKCE (RFC 7636, S256) against
// the OpenID Connect provider the gateway trusts (/admin/sso.json names it). The dashboard
// is a public client: no secret, the code is bound to a verifier that never leaves this tab.
// The reply comes in the URL fragment (response_mode=fragment), which the browser never
// sends to a server, and is removed from the address bar before anything else runs. The
// state and verifier live in sessionStorage only across the redirect (a page load is the
// only way back from the provider) and are removed when the reply is read.

export interface SsoConfig {
  issuer: string;
  client_id: string;
  scopes: string;
  audience: string;
}

export interface SsoToken {
  accessToken: string;
  expiresIn: number;
}

const PENDING = "ragline.sso.pending";
const MAX_PENDING_MS = 10 * 60 * 1000;

interface Pending {
  state: string;
  verifier: string;
  at: number;
}

export class SsoError extends Error {}

/** The provider sign-in, or undefined when the gateway has none configured. */
export async function ssoConfig(): Promise<SsoConfig | undefined> {
  try {
    const reply = await fetch(new URL("/admin/sso.json", window.location.origin), { cache: "no-store" });
    if (!reply.ok) return undefined;
    const body = (await reply.json()) as Partial<SsoConfig>;
    return body.issuer && body.client_id ? (body as SsoConfig) : undefined;
  } catch {
    return undefined;
  }
}

/** The redirect URI registered with the provider: this page, without a fragment. */
export function redirectUri(): string {
  return `${window.location.origin}/admin`;
}

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

async function discover(config: SsoConfig): Promise<Discovery> {
  const url = `${config.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
  const reply = await fetch(url, { cache: "no-store" });
  if (!reply.ok) throw new SsoError(`the identity provider's discovery document answered ${reply.status}`);
  const body = (await reply.json()) as Partial<Discovery>;
  if (!body.authorization_endpoint || !body.token_endpoint) {
    throw new SsoError("the identity provider's discovery document names no authorization or token endpoint");
  }
  return body as Discovery;
}

function randomString(bytes: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64url(data: Uint8Array): string {
  let s = "";
  for (const b of data) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** Leaves for the provider's sign-in page; it comes back to /admin#code=…&state=…. */
export async function beginSignIn(config: SsoConfig): Promise<void> {
  const { authorization_endpoint } = await discover(config);
  const pending: Pending = { state: randomString(16), verifier: randomString(48), at: Date.now() };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = new URL(authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    response_mode: "fragment",
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: config.scopes,
    audience: config.audience,
    state: pending.state,
    code_challenge: await challengeOf(pending.verifier),
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(url.toString());
}

/** Whether this page load is the provider's reply (a code or an error in the fragment). */
export function isReply(): boolean {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  return params.has("state") && (params.has("code") || params.has("error"));
}

/** Reads the provider's reply, removes it from the address bar and trades the code for a
 * token. Throws SsoError for a refusal, a wrong state or an expired attempt. */
export async function completeSignIn(config: SsoConfig): Promise<SsoToken> {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  window.history.replaceState(null, "", redirectUri());
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  const pending = raw ? (JSON.parse(raw) as Pending) : undefined;
  if (!pending || params.get("state") !== pending.state) {
    throw new SsoError("this sign-in reply does not belong to a sign-in started here: start again");
  }
  if (Date.now() - pending.at > MAX_PENDING_MS) throw new SsoError("the sign-in took too long: start again");
  const error = params.get("error");
  if (error) {
    const said = params.get("error_description");
    throw new SsoError(`the identity provider refused the sign-in: ${error}${said ? ` (${said})` : ""}`);
  }
  const { token_endpoint } = await discover(config);
  const reply = await fetch(token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code") ?? "",
      redirect_uri: redirectUri(),
      client_id: config.client_id,
      code_verifier: pending.verifier,
    }),
  });
  const body = (await reply.json().catch(() => ({}))) as Record<string, unknown>;
  if (!reply.ok || typeof body.access_token !== "string") {
    const what = typeof body.error === "string" ? body.error : `HTTP ${reply.status}`;
    throw new SsoError(`the identity provider did not issue a token: ${what}`);
  }
  return { accessToken: body.access_token, expiresIn: Number(body.expires_in ?? 0) };
}
