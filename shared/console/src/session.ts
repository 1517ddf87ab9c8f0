// The signed-in user: the ID token (session storage) and the orgs its `tenantry_orgs` claim
// names. Local sign-in uses the local runner's auth routes (`make dev`); on AWS the user pool's
// public API takes their place.
import { createClient, type TenantryClient } from "@tenantry/client";

export const API_URL: string = (import.meta.env.VITE_API_URL as string | undefined) ?? window.location.origin;
const KEY = "tenantry.session";

export interface Session {
  idToken: string;
  refreshToken?: string;
  email: string;
  /** The claims PreTokenGeneration added (in the token on AWS; beside it locally). */
  claims: Record<string, unknown>;
}

export interface OrgClaim {
  orgId: string;
  role: string;
}

export function load(): Session | null {
  const raw = sessionStorage.getItem(KEY);
  return raw ? (JSON.parse(raw) as Session) : null;
}

export function save(session: Session | null): void {
  if (session) sessionStorage.setItem(KEY, JSON.stringify(session));
  else sessionStorage.removeItem(KEY);
}

/** The token's claims (its payload; the API verifies the signature, the console only reads). */
export function claims(idToken: string): Record<string, unknown> {
  const payload = idToken.split(".")[1] ?? "";
  const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "="));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0)))) as Record<string, unknown>;
}

/** The orgs of the session's `tenantry_orgs` claim (`orgId:role` items). */
export function orgsOf(session: Session): OrgClaim[] {
  const claim = session.claims.tenantry_orgs ?? claims(session.idToken).tenantry_orgs;
  const items = Array.isArray(claim) ? claim : typeof claim === "string" ? claim.replace(/^\[|\]$/g, "").split(/[\s,]+/) : [];
  return items
    .filter((i): i is string => typeof i === "string" && i.includes(":"))
    .map((i) => {
      const [orgId, role] = i.split(":");
      return { orgId, role };
    });
}

export function apiFor(session: Session | null): TenantryClient {
  return createClient({ baseUrl: API_URL, token: () => session?.idToken });
}

async function post(path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${API_URL}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const data = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new Error(String(data.detail ?? data.title ?? data.message ?? res.statusText));
  return data;
}

/** Local sign-up (the local user pool confirms with the code 000000). */
export async function signUp(email: string, password: string): Promise<void> {
  await post("/local/auth/signup", { email, password });
  await post("/local/auth/confirm", { email, code: "000000" });
}

export async function signIn(email: string, password: string): Promise<Session> {
  const tokens = await post("/local/auth/login", { email, password });
  const idToken = String(tokens.idToken);
  const extra = (tokens.claims as Record<string, unknown> | undefined) ?? {};
  return { idToken, refreshToken: tokens.refreshToken as string | undefined, email, claims: { ...claims(idToken), ...extra } };
}

