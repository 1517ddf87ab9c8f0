// CORS on AWS: the functions learn the allowed origins (ALLOWED_ORIGINS), API Gateway answers
// the preflights (OPTIONS, mock) for each routed path, and API Gateway's own 4xx/5xx answers
// carry the CORS headers too.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadRouteManifest } from '../lib/definitions';
import { CORS_EXPOSE_HEADERS } from '../lib/functions';
import { readSettings } from '../lib/settings';
import { PROD_CONTEXT, Resource, Synth, functionLogicalId, methodsByRoute, resources, stage, synth } from './helpers';

function ctx(values: Record<string, unknown>) {
  return { tryGetContext: (k: string) => values[k] };
}

const TWO_ORIGINS = 'https://app.example.com,https://admin.example.com';

const preflights = (s: Synth): [string, Resource][] =>
  [...methodsByRoute(s.template)].filter(([k]) => k.startsWith('OPTIONS ')).map(([k, m]) => [k.slice('OPTIONS '.length), m]);

const preflightHeaders = (m: Resource): Record<string, string> => {
  const params = m.Properties!.Integration.IntegrationResponses[0].ResponseParameters as Record<string, string>;
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k.replace('method.response.header.', ''), v]));
};

const gatewayResponses = (s: Synth): Map<string, Record<string, string>> =>
  new Map(
    Object.values(resources(s.template, 'AWS::ApiGateway::GatewayResponse')).map((g) => [
      g.Properties!.ResponseType as string,
      Object.fromEntries(
        Object.entries(g.Properties!.ResponseParameters as Record<string, string>).map(([k, v]) => [k.replace('gatewayresponse.header.', ''), v]),
      ),
    ]),
  );

describe('CORS: allowed origins from context allowedOrigins', () => {
  test('dev defaults to *', () => {
    assert.deepEqual(readSettings(ctx({})).allowedOrigins, ['*']);
  });

  test('prod refuses to synthesize without an explicit list', () => {
    const { allowedOrigins: _omitted, ...withoutOrigins } = PROD_CONTEXT;
    assert.throws(() => readSettings(ctx(withoutOrigins)), /allowedOrigins is required for stage prod/);
    assert.throws(() => synth({ context: withoutOrigins }), /allowedOrigins is required for stage prod/);
  });

  test('prod refuses * and http origins', () => {
    assert.throws(() => readSettings(ctx({ ...PROD_CONTEXT, allowedOrigins: '*' })), /prod allows explicit https origins only/);
    assert.throws(() => readSettings(ctx({ ...PROD_CONTEXT, allowedOrigins: 'http://app.example.com' })), /https origins only/);
  });

  test('origins are exact (scheme://host[:port]); * stands alone', () => {
    assert.deepEqual(readSettings(ctx({ allowedOrigins: 'https://a.example.com/, http://localhost:5173' })).allowedOrigins, [
      'https://a.example.com',
      'http://localhost:5173',
    ]);
    assert.throws(() => readSettings(ctx({ allowedOrigins: 'https://a.example.com/app' })), /not an origin/);
    assert.throws(() => readSettings(ctx({ allowedOrigins: 'a.example.com' })), /not an origin/);
    assert.throws(() => readSettings(ctx({ allowedOrigins: '*,https://a.example.com' })), /cannot be combined/);
  });
});

describe('CORS: ALLOWED_ORIGINS for the HTTP functions', () => {
  const envOf = (s: Synth, name: string) =>
    resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, name)].Properties!.Environment.Variables;

  test('dev: * ; prod: the configured list, comma-separated; only on HTTP functions', () => {
    const several = synth({ context: { ...PROD_CONTEXT, allowedOrigins: TWO_ORIGINS } });
    for (const [s, expected] of [
      [stage('dev'), '*'],
      [stage('prod'), 'https://app.example.com'],
      [several, TWO_ORIGINS],
    ] as const) {
      for (const [name, { config }] of s.stack.functions) {
        assert.equal(envOf(s, name).ALLOWED_ORIGINS, config.sources.http ? expected : undefined, name);
      }
    }
  });

  test('the JSON-array form gives the same list', () => {
    const s = synth({ context: { ...PROD_CONTEXT, allowedOrigins: JSON.stringify(TWO_ORIGINS.split(',')) } });
    assert.equal(envOf(s, 'organizations').ALLOWED_ORIGINS, TWO_ORIGINS);
  });
});

describe('CORS: preflights answered by API Gateway', () => {
  const manifest = loadRouteManifest();
  const methodsOf = new Map<string, Set<string>>();
  for (const r of manifest.routes) methodsOf.set(r.path, (methodsOf.get(r.path) ?? new Set()).add(r.method));

  test('one OPTIONS method on every routed path, none elsewhere', () => {
    const paths = preflights(stage('prod')).map(([p]) => p);
    assert.deepEqual([...paths].sort(), [...methodsOf.keys()].sort());
  });

  test("each allows exactly its path's methods, the request headers the API reads, a max age, no credentials", () => {
    for (const [p, m] of preflights(stage('prod'))) {
      const h = preflightHeaders(m);
      assert.equal(h['Access-Control-Allow-Methods'], `'${[...methodsOf.get(p)!].sort().join(',')}'`, p);
      const allowHeaders = h['Access-Control-Allow-Headers'].replace(/'/g, '').split(',');
      for (const header of ['Authorization', 'Content-Type', 'If-Match', 'Idempotency-Key']) assert.ok(allowHeaders.includes(header), `${p}: ${header}`);
      assert.equal(h['Access-Control-Max-Age'], "'3600'", p);
      assert.equal(h['Access-Control-Allow-Credentials'], undefined, p);
    }
  });

  test('mock integration, no authorizer (browsers send preflights without credentials)', () => {
    for (const [p, m] of preflights(stage('dev'))) {
      assert.equal(m.Properties!.Integration.Type, 'MOCK', p);
      assert.equal(m.Properties!.AuthorizationType, 'NONE', p);
    }
  });

  test('one origin: that origin; dev: *', () => {
    for (const [s, expected] of [
      [stage('prod'), "'https://app.example.com'"],
      [stage('dev'), "'*'"],
    ] as const) {
      for (const [p, m] of preflights(s)) assert.equal(preflightHeaders(m)['Access-Control-Allow-Origin'], expected, p);
    }
  });

  test('several origins: the first by default, the request Origin echoed when it is another listed one, Vary: Origin', () => {
    const s = synth({ context: { ...PROD_CONTEXT, allowedOrigins: TWO_ORIGINS } });
    for (const [p, m] of preflights(s)) {
      const h = preflightHeaders(m);
      assert.equal(h['Access-Control-Allow-Origin'], "'https://app.example.com'", p);
      assert.equal(h.Vary, "'Origin'", p);
      const template = m.Properties!.Integration.IntegrationResponses[0].ResponseTemplates['application/json'] as string;
      assert.match(template, /\$origin == "https:\/\/admin\.example\.com"/);
      assert.match(template, /responseOverride\.header\.Access-Control-Allow-Origin = \$origin/);
    }
  });
});

describe("CORS: API Gateway's own 4xx and 5xx answers", () => {
  const expose = `'${CORS_EXPOSE_HEADERS.join(', ')}'`;

  test('DEFAULT_4XX and DEFAULT_5XX carry Allow-Origin and the exposed headers (authorizer 401, 403, throttling 429)', () => {
    for (const [s, origin] of [
      [stage('dev'), "'*'"],
      [stage('prod'), "'https://app.example.com'"],
    ] as const) {
      const g = gatewayResponses(s);
      assert.deepEqual([...g.keys()].sort(), ['DEFAULT_4XX', 'DEFAULT_5XX']);
      for (const [type, headers] of g) {
        assert.equal(headers['Access-Control-Allow-Origin'], origin, type);
        assert.equal(headers['Access-Control-Expose-Headers'], expose, type);
      }
    }
  });

  test('the exposed headers are exactly ETag, Location, RateLimit, RateLimit-Policy, Retry-After', () => {
    assert.deepEqual([...CORS_EXPOSE_HEADERS], ['ETag', 'Location', 'RateLimit', 'RateLimit-Policy', 'Retry-After']);
  });

  test('several origins: the first one (a request Origin is never copied unchecked)', () => {
    const s = synth({ context: { ...PROD_CONTEXT, allowedOrigins: TWO_ORIGINS } });
    for (const [type, headers] of gatewayResponses(s)) {
      assert.equal(headers['Access-Control-Allow-Origin'], "'https://app.example.com'", type);
      assert.ok(!JSON.stringify(headers).includes('method.request.header'), type);
    }
  });
});

describe('CORS: the upload bucket', () => {
  const corsRules = (s: Synth): any[] =>
    resources(s.template, 'AWS::S3::Bucket')[s.stack.getLogicalId(s.stack.uploadBucket.node.defaultChild as any)].Properties!.CorsConfiguration
      .CorsRules;

  test('allows the same origins', () => {
    const s = synth({ context: { ...PROD_CONTEXT, allowedOrigins: TWO_ORIGINS } });
    // Changed on purpose: the stack has a second bucket now (the upload bucket's access logs).
    assert.deepEqual(corsRules(s)[0].AllowedOrigins, TWO_ORIGINS.split(','));
  });

  // Changed on purpose: browsers upload with a presigned POST (form policy) now, not a PUT.
  test('one rule: POST (presigned form uploads), GET and HEAD (presigned downloads) from the configured origin only; ETag exposed', () => {
    const rules = corsRules(stage('prod'));
    assert.equal(rules.length, 1);
    assert.deepEqual(rules[0], {
      AllowedMethods: ['POST', 'GET', 'HEAD'],
      AllowedOrigins: ['https://app.example.com'],
      AllowedHeaders: ['*'],
      ExposedHeaders: ['ETag'],
      MaxAge: 3600,
    });
    assert.ok(!rules[0].AllowedMethods.includes('PUT') && !rules[0].AllowedMethods.includes('DELETE'));
    // dev: whatever the API allows (its default *)
    assert.deepEqual(corsRules(stage('dev'))[0].AllowedOrigins, ['*']);
  });
});
