// The signed-in session. The admin's API key is used once, to mint a short-lived JWT
// (POST /api/v1/tokens), and then dropped; the JWT lives in this module's memory only (no
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

/** A claim of the JWT's payload (read for display only: the gateway verifies the token). */
function claim(token: string, name: string): string {
  try {
    const part = token.split(".")[1] ?? "";
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const value = (JSON.parse(json) as Record<string, unknown>)[name];
    return typeof value === "string" ? value : "";
  } catch {
    return "";
  }
}
