// The client's own helpers, against a fetch of the test's (the API itself is proved by the
// console's browser tests and the contract check).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createClient, isProblem, rateLimitOf, serverSentEvents, streamChat, ProblemError } from "../dist/index.js";

function recorder(respond) {
  const seen = [];
  const fetch = async (input, init) => {
    const request = input instanceof Request ? input : new Request(input, init);
    seen.push(request);
    return respond(request);
  };
  return { seen, fetch };
}

test("every request carries the caller's token, and answers are typed JSON", async () => {
  const { seen, fetch } = recorder(() => Response.json({ id: "01ORG", name: "Acme" }, { status: 200 }));
  const api = createClient({ baseUrl: "http://api.test/prod/", token: () => "t0ken", fetch });
  const { data, error, response } = await api.GET("/orgs/{orgId}", { params: { path: { orgId: "01ORG" } } });
  assert.equal(error, undefined);
  assert.equal(data.name, "Acme");
  assert.equal(response.status, 200);
  assert.equal(seen[0].url, "http://api.test/prod/orgs/01ORG");
  assert.equal(seen[0].headers.get("authorization"), "Bearer t0ken");
});

test("a problem is the error, and the rate limit and Retry-After are read", async () => {
  const problem = { type: "https://tenantry.dev/problems/rate-limited", title: "Too many requests", status: 429, detail: "too many requests" };
  const headers = { "content-type": "application/problem+json", "Retry-After": "7", RateLimit: '"user";r=0;t=7', "RateLimit-Policy": '"user";q=300;w=60' };
  const { fetch } = recorder(() => new Response(JSON.stringify(problem), { status: 429, headers }));
  const api = createClient({ baseUrl: "http://api.test", fetch });
  const { data, error, response } = await api.GET("/orgs/{orgId}", { params: { path: { orgId: "01ORG" } } });
  assert.equal(data, undefined);
  assert.ok(isProblem(error));
  assert.equal(error.status, 429);
  assert.deepEqual(rateLimitOf(response), { policy: '"user";q=300;w=60', name: "user", remaining: 0, resetSeconds: 7, retryAfterSeconds: 7 });
});

function streamOf(...chunks) {
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
      controller.close();
    },
  });
}

test("server-sent events are split wherever the chunks fall", async () => {
  const events = [];
  for await (const e of serverSentEvents(streamOf("event: delta\nda", 'ta: {"text":"Hel"}\n\nevent: delta\r\ndata: {"text":"lo"}\r', "\n\r\nevent: done\ndata: {}\n\n"))) {
    events.push(e);
  }
  assert.deepEqual(events.map((e) => e.event), ["delta", "delta", "done"]);
  assert.equal(JSON.parse(events[1].data).text, "lo");
});

test("a chat turn streams its events; a refusal before the stream is a ProblemError", async () => {
  const turn = 'event: delta\ndata: {"text":"Forty-two"}\n\nevent: tool\ndata: {"name":"list_tasks"}\n\nevent: done\ndata: {"answer":{"content":"Forty-two"}}\n\n';
  const { seen, fetch } = recorder(() => new Response(streamOf(turn), { status: 200, headers: { "content-type": "text/event-stream" } }));
  const got = [];
  for await (const e of streamChat({ baseUrl: "http://api.test", token: async () => "tok", fetch }, "01ORG", "01CONV", "The answer?")) got.push(e);
  assert.deepEqual(got.map((e) => e.event), ["delta", "tool", "done"]);
  assert.equal(got[0].data.text, "Forty-two");
  assert.equal(seen[0].headers.get("accept"), "text/event-stream");
  assert.equal(seen[0].headers.get("authorization"), "Bearer tok");
  assert.equal(seen[0].url, "http://api.test/orgs/01ORG/conversations/01CONV/messages");

  const budget = { type: "https://tenantry.dev/problems/budget-exhausted", title: "Chat budget exhausted", status: 429 };
  const refused = recorder(() => new Response(JSON.stringify(budget), { status: 429, headers: { "content-type": "application/problem+json", "Retry-After": "3600" } }));
  await assert.rejects(async () => {
    for await (const _ of streamChat({ baseUrl: "http://api.test", fetch: refused.fetch }, "01ORG", "01CONV", "More?")) {
      // nothing streams
    }
  }, (e) => e instanceof ProblemError && e.problem.status === 429 && e.rateLimit.retryAfterSeconds === 3600);
});
