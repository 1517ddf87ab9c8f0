// How the stack is derived from its inputs: functions.json declares the functions, routes.json
// gives the HTTP ones their routes, the context picks the stage, and the build output (or its
// absence) picks the code.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { REPO_ROOT, loadFunctionRegistry, loadRouteManifest, parseRouteManifest, parseTableDefinition } from '../lib/definitions';
import { readSettings } from '../lib/settings';
import { TenantryStack } from '../lib/tenantry-stack';
import {
  PROD_CONTEXT,
  PUBLIC_ROUTE,
  functionLogicalId,
  isCdkHandler,
  methodsByRoute,
  publicRouteManifest,
  registryWith,
  repositoryPublicRoutes,
  resources,
  roleActions,
  roleLogicalId,
  synth,
} from './helpers';

function ctx(values: Record<string, unknown>) {
  return { tryGetContext: (k: string) => values[k] };
}

describe('functions.json declares the functions, routes.json routes the HTTP ones', () => {
  test('the repository routes.json parses and names only functions of functions.json that serve HTTP', () => {
    const manifest = loadRouteManifest();
    const registry = new Map(loadFunctionRegistry().functions.map((f) => [f.name, f]));
    assert.ok(manifest.routes.length > 0);
    for (const r of manifest.routes) {
      assert.ok(registry.get(r.function), `${r.method} ${r.path}: ${r.function} is not in functions.json`);
      assert.equal(registry.get(r.function)!.sources.http, true, r.function);
    }
  });

  test('a function that routes.json names but functions.json does not declare fails synth, naming it', () => {
    const routes = {
      routes: [...loadRouteManifest().routes, { function: 'billing', method: 'GET' as const, path: '/billing', operationId: 'b', summary: '' }],
    };
    assert.throws(() => synth({ routes }), /routes\.json.*"billing".*functions\.json does not declare/s);
  });

  test('a route naming a non-HTTP function fails synth', () => {
    const routes = {
      routes: [...loadRouteManifest().routes, { function: 'cognito-triggers', method: 'GET' as const, path: '/x', operationId: 'x', summary: '' }],
    };
    assert.throws(() => synth({ routes }), /"cognito-triggers", whose sources\.http is false/);
  });

  // Changed on purpose: HTTP functions without routes used to be left out silently; now that the
  // registry declares every function, a function declared as HTTP without any route is a mistake.
  test('an HTTP function that no route names fails synth, naming it', () => {
    const routes = { routes: loadRouteManifest().routes.filter((r) => r.function !== 'invites') };
    assert.throws(() => synth({ routes }), /function "invites" has sources\.http = true, but no route/);
  });

  test('every function of functions.json is deployed', () => {
    const s = synth();
    assert.deepEqual(
      [...s.stack.functions.keys()].sort(),
      loadFunctionRegistry().functions.map((f) => f.name).sort(),
    );
    // A function is a crate under functions/ (its Lambda binary shares its name): one each.
    const crates = fs
      .readdirSync(path.join(REPO_ROOT, 'functions'), { withFileTypes: true })
      .filter((d) => d.isDirectory() && fs.existsSync(path.join(REPO_ROOT, 'functions', d.name, 'Cargo.toml')))
      .map((d) => d.name)
      .sort();
    assert.ok(crates.length > 0);
    assert.deepEqual([...s.stack.functions.keys()].sort(), crates);
  });

  test('a function that functions.json drops is gone from the stack, with its event sources', () => {
    const registry = loadFunctionRegistry();
    const full = synth();
    const fullTemplate = full.template.toJSON();
    for (const dropped of registry.functions) {
      const rest = registry.functions.filter((f) => f.name !== dropped.name);
      const s = synth({
        functions: { functions: rest },
        routes: { routes: loadRouteManifest().routes.filter((r) => r.function !== dropped.name) },
      });
      assert.ok(!s.stack.functions.has(dropped.name), dropped.name);
      // Nothing of it is left: no function, role, log group or alarm of its, and nothing refers to them.
      const text = JSON.stringify(s.template.toJSON());
      for (const id of [functionLogicalId(full, dropped.name), roleLogicalId(full, dropped.name)]) {
        assert.ok(fullTemplate.Resources[id] !== undefined, id);
        assert.ok(!text.includes(`"${id}"`), `${dropped.name}: ${id} is still in the template`);
      }
      // What the others' sources need stays, and only that.
      s.template.resourceCountIs('AWS::Scheduler::Schedule', rest.reduce((n, f) => n + f.sources.schedules.length, 0));
      s.template.resourceCountIs(
        'AWS::Lambda::EventSourceMapping',
        rest.reduce(
          (n, f) =>
            n + (f.sources.dynamodbStream !== null ? 1 : 0) + (f.sources.s3 !== null ? 1 : 0) + f.sources.queues.length + (f.sources.domainEvents !== null ? 1 : 0),
          0,
        ),
      );
      // (CDK's own handlers go with what needed them: the bucket's notification handler with the
      // last S3 source.)
      const ours = (t: typeof s.template) => Object.keys(resources(t, 'AWS::Lambda::Function')).filter((id) => !isCdkHandler(id)).length;
      assert.equal(ours(s.template), ours(full.template) - 1, dropped.name);
      assert.equal(
        Object.keys(resources(s.template, 'Custom::S3BucketNotifications')).length,
        rest.some((f) => f.sources.s3 !== null) ? 1 : 0,
        dropped.name,
      );
    }
  });

  test('invites is deployed with its routes, SES_FROM_ADDRESS and ses:SendEmail', () => {
    const s = synth({ context: PROD_CONTEXT });
    assert.ok(s.stack.functions.has('invites'));
    const methods = methodsByRoute(s.template);
    const m = methods.get('POST /orgs/{orgId}/invites');
    assert.ok(m);
    assert.ok(JSON.stringify(m.Properties!.Integration.Uri).includes(functionLogicalId(s, 'invites')));
    const fn = resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, 'invites')];
    assert.equal(fn.Properties!.Environment.Variables.SES_FROM_ADDRESS, 'no-reply@example.com');
    assert.ok(roleActions(s.template, roleLogicalId(s, 'invites')).includes('ses:SendEmail'));
  });

  test('a duplicated route, a bad path or a route on /health is refused', () => {
    const r = { function: 'organizations', method: 'GET', path: '/orgs', operationId: 'x', summary: '' };
    assert.throws(() => parseRouteManifest({ routes: [r, r] }), /appears twice/);
    assert.throws(() => parseRouteManifest({ routes: [{ ...r, path: 'orgs' }] }), /not an API Gateway resource path/);
    assert.throws(() => parseRouteManifest({ routes: [{ ...r, method: 'TRACE' }] }), /unsupported method/);
    assert.throws(
      () => synth({ routes: { routes: [...loadRouteManifest().routes, { ...r, method: 'GET', path: '/health' } as any] } }),
      /\/health is the stack's own/,
    );
  });

  test('a table definition that is not on-demand or lacks keys is refused', () => {
    assert.throws(() => parseTableDefinition({ partitionKey: 'PK', sortKey: 'SK', globalSecondaryIndexes: [], timeToLiveAttribute: 'ttl', billingMode: 'PROVISIONED', streamViewType: 'NEW_AND_OLD_IMAGES' }), /PAY_PER_REQUEST/);
    assert.throws(() => parseTableDefinition({ sortKey: 'SK', globalSecondaryIndexes: [], timeToLiveAttribute: 'ttl', billingMode: 'PAY_PER_REQUEST', streamViewType: 'NEW_AND_OLD_IMAGES' }), /partitionKey/);
  });
});

describe('public routes: no authorizer', () => {
  const r = { function: 'invites', method: 'POST', path: '/test-public-link', operationId: 'testPublicLink', summary: '' };

  test('"public" is optional (absent: false) and a boolean when present', () => {
    assert.equal(parseRouteManifest({ routes: [r] }).routes[0].public, false);
    assert.equal(parseRouteManifest({ routes: [{ ...r, public: false }] }).routes[0].public, false);
    assert.equal(parseRouteManifest({ routes: [{ ...r, public: true }] }).routes[0].public, true);
    for (const bad of ['true', 1, 0, null, {}, []]) {
      assert.throws(() => parseRouteManifest({ routes: [{ ...r, public: bad }] }), /routes\[0\]\.public must be true or false/, JSON.stringify(bad));
    }
  });

  test('the repository routes.json names "public" only where it is true', () => {
    const raw = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'infra', 'routes.json'), 'utf8')) as { routes: Record<string, unknown>[] };
    for (const route of raw.routes) {
      if ('public' in route) assert.equal(route.public, true, `${route.method} ${route.path}`);
    }
  });

  test('the repository\'s public routes: the one-click unsubscribe of notifications (RFC 8058), nothing else', () => {
    const publicRoutes = loadRouteManifest().routes.filter((x) => x.public === true);
    assert.deepEqual(publicRoutes.map((x) => `${x.method} ${x.path} ${x.function}`).sort(), [
      'GET /unsubscribe notifications',
      'POST /unsubscribe notifications',
    ]);
  });

  test('a public route gets AuthorizationType NONE and no authorizer; every other route keeps the Cognito authorizer', () => {
    const s = synth({ routes: publicRouteManifest() });
    const t = s.template;
    const [authorizerId] = Object.keys(resources(t, 'AWS::ApiGateway::Authorizer'));
    const methods = methodsByRoute(t);
    const open = methods.get(PUBLIC_ROUTE);
    assert.ok(open, PUBLIC_ROUTE);
    assert.equal(open.Properties!.AuthorizationType, 'NONE');
    assert.equal(open.Properties!.AuthorizerId, undefined);
    // otherwise a route like any other: its function's Lambda proxy integration, validated, named
    assert.equal(open.Properties!.Integration.Type, 'AWS_PROXY');
    assert.ok(JSON.stringify(open.Properties!.Integration.Uri).includes(`"${functionLogicalId(s, 'invites')}"`));
    assert.ok(open.Properties!.RequestValidatorId !== undefined);
    assert.equal(open.Properties!.OperationName, 'testPublicLink');
    const publicRoutes = [...repositoryPublicRoutes(), PUBLIC_ROUTE];
    assert.deepEqual(s.stack.publicMethods.map((m) => `${m.httpMethod} ${m.resource.path}`).sort(), [...publicRoutes].sort());
    for (const key of publicRoutes) {
      assert.equal(methods.get(key)!.Properties!.AuthorizationType, 'NONE', key);
      assert.equal(methods.get(key)!.Properties!.AuthorizerId, undefined, key);
    }
    let guarded = 0;
    for (const [key, m] of methods) {
      if (publicRoutes.includes(key) || key === 'GET /health' || key.startsWith('OPTIONS ')) continue;
      assert.equal(m.Properties!.AuthorizationType, 'COGNITO_USER_POOLS', key);
      assert.deepEqual(m.Properties!.AuthorizerId, { Ref: authorizerId }, key);
      guarded++;
    }
    assert.equal(guarded, loadRouteManifest().routes.length - repositoryPublicRoutes().length);
    // its path gets a CORS preflight like any other
    assert.ok(methods.get('OPTIONS /test-public-link'));
    assert.ok(methods.get('OPTIONS /unsubscribe'));
  });
});

describe('stages and context', () => {
  test('stage defaults to dev; anything but dev or prod is refused', () => {
    assert.equal(readSettings(ctx({})).stage, 'dev');
    assert.throws(() => readSettings(ctx({ stage: 'staging' })), /dev or prod/);
  });

  test('prod requires appUrl, a mail identity and an explicit list of https origins', () => {
    assert.throws(() => readSettings(ctx({ stage: 'prod', mailDomain: 'example.com', allowedOrigins: 'https://a.example.com' })), /appUrl is required/);
    assert.throws(() => readSettings(ctx({ stage: 'prod', appUrl: 'https://a.example.com', allowedOrigins: 'https://a.example.com' })), /mailDomain/);
    assert.throws(
      () => readSettings(ctx({ ...PROD_CONTEXT, allowedOrigins: 'http://a.example.com' })),
      /https origins only/,
    );
  });

  test('context values from the command line (strings) are parsed and checked', () => {
    const s = readSettings(ctx({ tracing: 'true', throttleRateLimit: '5', allowedOrigins: '["https://x.example.com"]' }));
    assert.equal(s.tracing, true);
    assert.equal(s.throttleRateLimit, 5);
    assert.deepEqual(s.allowedOrigins, ['https://x.example.com']);
    assert.throws(() => readSettings(ctx({ throttleRateLimit: '-1' })), /positive integer/);
    assert.throws(() => readSettings(ctx({ logRetentionDays: '8' })), /logRetentionDays/);
    assert.throws(() => readSettings(ctx({ mailDomain: 'example.com', mailFromAddress: 'a@other.com' })), /not in mailDomain/);
  });

  test('cognito-triggers sign-up and branding settings come from context, only when given', () => {
    const envOf = (c: Record<string, string>) => {
      const s = synth({ context: c });
      return resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, 'cognito-triggers')].Properties!.Environment
        .Variables;
    };
    const plain = envOf({});
    for (const k of ['BLOCKED_EMAIL_DOMAINS', 'SIGNUP_INVITE_ONLY', 'PERSONAL_ORG', 'PRODUCT_NAME', 'PRODUCT_LOGO_URL']) {
      assert.equal(plain[k], undefined, k);
    }
    const set = envOf({ blockedEmailDomains: 'spam.test,junk.test', signupInviteOnly: 'true', productName: 'Acme' });
    assert.equal(set.BLOCKED_EMAIL_DOMAINS, 'spam.test,junk.test');
    assert.equal(set.SIGNUP_INVITE_ONLY, 'true');
    assert.equal(set.PRODUCT_NAME, 'Acme');
  });

  test('environment-agnostic without CDK_DEFAULT_ACCOUNT/REGION: no account or region in the template', () => {
    const s = synth();
    assert.ok(s.stack.account.startsWith('${Token'), s.stack.account);
    const text = JSON.stringify(s.template.toJSON());
    assert.ok(!/\b\d{12}\b/.test(text.replace(/"[0-9a-f]{64}\.zip"/g, '')), 'an account id is hard-coded');
  });
});

describe('Lambda code', () => {
  test('a changed registry entry changes the function (memory, timeout)', () => {
    const org = loadFunctionRegistry().functions.find((f) => f.name === 'organizations')!;
    const s = synth({ functions: registryWith({ ...org, memoryMb: 512, timeoutSeconds: 20 }) });
    const fn = resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, 'organizations')];
    assert.equal(fn.Properties!.MemorySize, 512);
    assert.equal(fn.Properties!.Timeout, 20);
  });

  test('without build output (and without allowPlaceholderCode), synth fails and says to run make build', () => {
    const app = new App({ context: { lambdaDir: path.join(os.tmpdir(), 'tenantry-no-such-dir') } });
    const settings = readSettings(app.node);
    assert.throws(() => new TenantryStack(app, 'T', { settings }), /no build output.*make build/s);
  });

  test("cargo-lambda's output is used when present (bootstrap.zip, or a bootstrap directory)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-lambda-'));
    try {
      // The binary is the function's name: <lambda dir>/<name>/bootstrap.zip (or bootstrap).
      for (const [i, { name }] of loadFunctionRegistry().functions.entries()) {
        fs.mkdirSync(path.join(dir, name));
        if (i % 2 === 0) fs.writeFileSync(path.join(dir, name, 'bootstrap.zip'), 'not really a zip');
        else fs.writeFileSync(path.join(dir, name, 'bootstrap'), '#!/bin/sh\n');
      }
      const app = new App({ context: { lambdaDir: dir } });
      const stack = new TenantryStack(app, 'T', { settings: readSettings(app.node) });
      for (const f of stack.functions.values()) assert.equal(f.usesPlaceholderCode, false, f.name);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the placeholder is used only when allowed, and marked', () => {
    const s = synth();
    for (const f of s.stack.functions.values()) assert.equal(f.usesPlaceholderCode, true, f.name);
  });
});
