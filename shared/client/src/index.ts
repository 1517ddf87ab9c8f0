// The Tenantry API's typed client: openapi-fetch over the types openapi-typescript generates
// from the API's OpenAPI document (src/schema.d.ts, from openapi.json; `make client`).
// Everything the API answers is typed, its problems (RFC 9457) included; the rate-limit
// headers and Retry-After are read for the caller; the chat's server-sent events have a helper.

import createFetchClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths };

/** A problem answer (`application/problem+json`): `type`, `title`, `status`, `detail`, `errors`. */
export type Problem = components["schemas"]["ApiError"];
/** The answer of a finished chat turn (the `done` event, or the 201 of a turn not streamed). */
export type TurnAnswer = components["schemas"]["TurnAnswer"];
export type TenantryClient = Client<paths>;

export interface ClientOptions {
  /** The API's base URL: the API Gateway stage (`https://…/prod`), or `make dev`'s. */
  baseUrl: string;
  /** The Cognito ID token of the signed-in user, asked for before each request. */
  token?: () => string | undefined | null | Promise<string | undefined | null>;
  /** A fetch of your own (tests, a server); the global one by default. */
  fetch?: typeof globalThis.fetch;
}

function authorization(token: ClientOptions["token"]): Middleware {
  return {
    async onRequest({ request }) {
      const t = token ? await token() : undefined;
      if (t) request.headers.set("Authorization", `Bearer ${t}`);
      return request;
    },
  };
}

/** A client of every operation of the API, typed by path and method. */
export function createClient(options: ClientOptions): TenantryClient {
  const client = createFetchClient<paths>({ baseUrl: options.baseUrl.replace(/\/$/, ""), fetch: options.fetch });
  client.use(authorization(options.token));
  return client;
}

/** What an answer says of the caller's rate limits (draft-ietf-httpapi-ratelimit-headers). */
export interface RateLimit {
  /** `RateLimit-Policy`: the policy reported, e.g. `"user";q=300;w=60`. */
  policy?: string;
  /** The policy's name (`org`, `user`, `org-chat`, …). */
  name?: string;
  /** Requests left in the window. */
  remaining?: number;
  /** Seconds to the window's end. */
  resetSeconds?: number;
  /** `Retry-After` of a 429 or 503, in seconds. */
  retryAfterSeconds?: number;
}

/** The rate-limit headers and Retry-After of a response. */
export function rateLimitOf(response: Response): RateLimit {
  const out: RateLimit = {};
  const policy = response.headers.get("RateLimit-Policy");
  if (policy) out.policy = policy;
  const state = response.headers.get("RateLimit");
  if (state) {
    const name = /^"([^"]+)"/.exec(state);
    const r = /;\s*r=(\d+)/.exec(state);
    const t = /;\s*t=(\d+)/.exec(state);
    if (name) out.name = name[1];
    if (r) out.remaining = Number(r[1]);
    if (t) out.resetSeconds = Number(t[1]);
  }
  const retry = response.headers.get("Retry-After");
  if (retry !== null && /^\d+$/.test(retry.trim())) out.retryAfterSeconds = Number(retry.trim());
  return out;
}

/** Whether a value is a problem answer. */
export function isProblem(value: unknown): value is Problem {
  return typeof value === "object" && value !== null && typeof (value as Problem).type === "string" && typeof (value as Problem).status === "number";
}

/** One server-sent event of a streamed chat turn. */
export type ChatEvent =
  | { event: "delta"; data: { text: string } }
  | { event: "tool"; data: { name: string } }
  | { event: "done"; data: TurnAnswer }
  | { event: "error"; data: Problem };

/** A refusal before the stream began (budget, rate limit, a model not available): the problem. */
export class ProblemError extends Error {
  constructor(readonly problem: Problem, readonly rateLimit: RateLimit) {
    super(problem.detail ?? problem.title);
  }
}

/** Splits a text/event-stream body into its events (`event:` and `data:` lines). */
export async function* serverSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    // A CRLF split across two chunks joins in the buffer before it is normalised.
    buffer = (buffer + decoder.decode(value ?? new Uint8Array(), { stream: !done })).replace(/\r\n/g, "\n");
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length > 0) yield { event, data: data.join("\n") };
    }
    if (done) return;
  }
}

/**
 * Asks the chat and streams its answer: `delta`s as the text arrives, `tool` when the model
 * reads the org's tasks, then `done` (the turn) or `error` (a problem). A refusal before the
 * stream began throws a {@link ProblemError}. Abort with `signal`: the turn is then recorded as
 * cancelled with what had streamed.
 */
export async function* streamChat(
  options: ClientOptions,
  orgId: string,
  conversationId: string,
  content: string,
  signal?: AbortSignal,
): AsyncGenerator<ChatEvent> {
  const doFetch = options.fetch ?? globalThis.fetch;
  const token = options.token ? await options.token() : undefined;
  const headers: Record<string, string> = { "content-type": "application/json", accept: "text/event-stream" };
  if (token) headers.authorization = `Bearer ${token}`;
  const url = `${options.baseUrl.replace(/\/$/, "")}/orgs/${encodeURIComponent(orgId)}/conversations/${encodeURIComponent(conversationId)}/messages`;
  const response = await doFetch(url, { method: "POST", headers, body: JSON.stringify({ content }), signal });
  if (!response.ok || !response.body) {
    const problem = (await response.json().catch(() => ({ type: "about:blank", title: response.statusText, status: response.status }))) as Problem;
    throw new ProblemError(problem, rateLimitOf(response));
  }
  for await (const { event, data } of serverSentEvents(response.body)) {
    if (event === "delta" || event === "tool" || event === "done" || event === "error") {
      yield { event, data: JSON.parse(data) } as ChatEvent;
    }
  }
}
