// The signed-in session. The admin's API key is used once, to mint a short-lived JWT
// (POST /api/v1/tokens), and then dropped; or the identity provider's access token comes
// from single sign-on (sso.ts). The token lives in this module's memory only (no
// localStorage, no sessionStorage, no cookie: a reload signs out, and with no cookie there
// is nothing a cross-site request could ride on, so no CSRF surface).
import { Ragline } from "@ragline/client";

export interface Session {
  client: Ragline;
  scopes: Set<string>;
  expiresAt: number;
  /** The tenant the token was minted for (from its claims). */
  tenant: string;
}

let current: Session | undefined;
const listeners: ((s: Session | undefined) => void)[] = [];

export function baseUrl(): string {
  return window.location.origin;
}

export async function signIn(apiKey: string): Promise<Session> {
  const bootstrap = new Ragline({ baseUrl: baseUrl(), apiKey, maxRetries: 1 });
  const t = await bootstrap.tokens.create({});
  const token = t.access_token ?? "";
  const session: Session = {
    client: new Ragline({ baseUrl: baseUrl(), token: () => token }),
    scopes: new Set((t.scope ?? "").split(" ").filter(Boolean)),
    expiresAt: Date.now() + (t.expires_in ?? 0) * 1000,
    tenant: claim(token, "tenant"),
  };
  set(session);
  return session;
}

/** A session on the identity provider's access token: the gateway says what it grants
 * (GET /api/v1/caller), so the pages shown match what the API will allow. */
export async function signInWithToken(token: string, expiresIn: number): Promise<Session> {
  const client = new Ragline({ baseUrl: baseUrl(), token: () => token });
  const caller = await client.caller({ maxRetries: 1 });
  const session: Session = {
    client,
    scopes: new Set(caller.scopes ?? []),
    expiresAt: Date.now() + (expiresIn > 0 ? expiresIn * 1000 : expiryOf(token)),
    tenant: caller.tenant ?? "",
  };
  set(session);
  return session;
}

export function signOut(): void {
  set(undefined);
}

export function session(): Session | undefined {
  if (current && Date.now() >= current.expiresAt) set(undefined);
  return current;
}

export function onChange(fn: (s: Session | undefined) => void): void {
  listeners.push(fn);
}

function set(s: Session | undefined): void {
  current = s;
  for (const fn of listeners) fn(s);
}

export function can(scope: string): boolean {
  return session()?.scopes.has(scope) ?? false;
}

/** The JWT's payload (read for display only: the gateway verifies the token). */
function claims(token: string): Record<string, unknown> {
  try {
    const part = token.split(".")[1] ?? "";
    return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
  } catch {
    return {};
  }
}

function claim(token: string, name: string): string {
  const value = claims(token)[name];
  return typeof value === "string" ? value : "";
}

/** Milliseconds until the token's `exp` (0 when it has none: the session ends at once). */
function expiryOf(token: string): number {
  const exp = claims(token).exp;
  return typeof exp === "number" ? Math.max(0, exp * 1000 - Date.now()) : 0;
}
