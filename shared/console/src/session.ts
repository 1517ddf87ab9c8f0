// The signed-in user: the ID token (session storage) and the orgs its `tenantry_orgs` claim
// names. Where to sign in comes from `config.json` beside index.html, which the deployment
// writes (the API's URL and the user pool's web client): with a user pool, through its public
// API (SRP and TOTP, ./cognito.ts); without one, through the local runner's auth routes
// (`make dev`).
import { createClient, type TenantryClient } from "@tenantry/client";
import { cognitoAuth, type SignInStep, type Tokens } from "./cognito";

/** What `config.json` holds on AWS (infra/lib/console.ts writes it). */
export interface ConsoleConfig {
  apiUrl?: string;
  region?: string;
  userPoolId?: string;
  userPoolClientId?: string;
}

export let API_URL: string = (import.meta.env.VITE_API_URL as string | undefined) ?? window.location.origin;
let pool: ReturnType<typeof cognitoAuth> | null = null;
const KEY = "tenantry.session";

/** Reads `config.json` beside index.html (absent locally: the local runner answers 404) before
 * the first render, from the console's base path whatever the page's (`/app/orgs/…`). */
export async function configure(): Promise<void> {
  const res = await fetch(new URL(`${import.meta.env.BASE_URL}config.json`, window.location.origin)).catch(() => null);
  if (!res?.ok || !(res.headers.get("content-type") ?? "").includes("json")) return;
  const config = (await res.json()) as ConsoleConfig;
  if (config.apiUrl) API_URL = config.apiUrl.replace(/\/+$/, "");
  if (config.region && config.userPoolId && config.userPoolClientId) {
    pool = cognitoAuth({ region: config.region, userPoolId: config.userPoolId, clientId: config.userPoolClientId });
  }
}

/** Whether sign-up sends a code by mail (the user pool) or confirms at once (locally). */
export function signUpNeedsCode(): boolean {
  return pool !== null;
}

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
  return createClient({ baseUrl: API_URL, token: () => freshToken(session) });
}

let refreshing: Promise<void> | null = null;

/** The session's ID token, renewed with its refresh token when it expires within a minute (an
 * hour's token on AWS). A refresh that fails leaves the old token: the API's 401 follows, and
 * the user signs in again. */
export async function freshToken(session: Session | null): Promise<string | undefined> {
  if (!session) return undefined;
  const expires = Number(claims(session.idToken).exp ?? 0) * 1000;
  const refreshToken = session.refreshToken;
  if (!refreshToken || expires - Date.now() > 60_000) return session.idToken;
  refreshing ??= (async () => {
    try {
      const tokens = pool ? await pool.refresh(refreshToken) : await post("/local/auth/refresh", { refreshToken });
      session.idToken = String(tokens.idToken);
      session.claims = { ...session.claims, ...claims(session.idToken) };
      save(session);
    } catch {
      // the old token stands; the API answers 401
    } finally {
      refreshing = null;
    }
  })();
  await refreshing;
  return session.idToken;
}

async function post(path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${API_URL}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const data = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new Error(String(data.detail ?? data.title ?? data.message ?? res.statusText));
  return data;
}

/** Sign-up. The user pool mails a code (then `confirm`); locally the pool confirms with any
 * code, so this confirms at once. */
export async function signUp(email: string, password: string): Promise<void> {
  if (pool) {
    await pool.signUp(email, password);
    return;
  }
  await post("/local/auth/signup", { email, password });
  await post("/local/auth/confirm", { email, code: "000000" });
}

export async function confirm(email: string, code: string): Promise<void> {
  if (pool) await pool.confirmSignUp(email, code);
}

/** Sign-out: the user pool revokes the refresh token (and what it issued); locally the session
 * is just forgotten. A revocation that fails still signs out here. */
export async function signOut(session: Session | null): Promise<void> {
  if (pool && session?.refreshToken) await pool.revoke(session.refreshToken).catch(() => undefined);
}

export async function resendCode(email: string): Promise<void> {
  if (pool) await pool.resendCode(email);
}

/** Where sign-in stands: a session, or the next thing the user pool asks for. */
export type SignIn =
  | { kind: "session"; session: Session }
  | Exclude<SignInStep, { kind: "done" }>;

function fromStep(email: string, step: SignInStep): SignIn {
  if (step.kind !== "done") return step;
  return { kind: "session", session: fromTokens(email, step.tokens) };
}

function fromTokens(email: string, tokens: Tokens): Session {
  return { idToken: tokens.idToken, refreshToken: tokens.refreshToken, email, claims: claims(tokens.idToken) };
}

export async function signIn(email: string, password: string): Promise<SignIn> {
  if (pool) return fromStep(email, await pool.signIn(email, password));
  const tokens = await post("/local/auth/login", { email, password });
  const idToken = String(tokens.idToken);
  const extra = (tokens.claims as Record<string, unknown> | undefined) ?? {};
  return { kind: "session", session: { idToken, refreshToken: tokens.refreshToken as string | undefined, email, claims: { ...claims(idToken), ...extra } } };
}

/** The authenticator's code: at sign-in (`totp`), or to finish enrolling one (`mfa-setup`). */
export async function answerChallenge(email: string, step: Exclude<SignIn, { kind: "session" }>, answer: string): Promise<SignIn> {
  if (!pool) throw new Error("no user pool");
  switch (step.kind) {
    case "totp":
      return fromStep(email, await pool.answerTotp(step, answer));
    case "mfa-setup":
      return fromStep(email, await pool.completeMfaSetup(step, answer));
    case "new-password":
      return fromStep(email, await pool.setNewPassword(step, answer));
  }
}

