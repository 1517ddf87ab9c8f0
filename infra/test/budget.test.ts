// The resource budget. CloudFormation allows 500 resources per stack; this one stays far below by
// construction: a route costs at most a method, and (when its path is new) the path's resource and
// its OPTIONS preflight; invoke permissions are per function, not per route. Everything else is a
// fixed overhead plus a known cost per function and event source, checked exactly here so that a
// change in what the stack creates per function is a conscious one (update the table below).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FunctionDefinition, FunctionRegistry, RouteManifest } from '../lib/definitions';
import { loadFunctionRegistry, loadRouteManifest } from '../lib/definitions';
import { PROD_CONTEXT, Synth, allSourcesRegistry, methodsByRoute, resourceCount, resources, stage, synth, syntheticApi } from './helpers';

/** CloudFormation's limit; the ceiling this project keeps for the repository's stack; and the one
 * for an API of 80 routes on 8 more functions next to the repository's event-driven functions.
 * Changed on purpose: 300 -> 350 for the larger API, when the files function came (its upload
 * queue, schedule and scan-result target put 23 resources beside its routes, and the bucket's
 * notification handler 4); still 150 below CloudFormation's limit. And 300 -> 350 for the
 * repository when the chat function came: 287 before it (294 with malware protection), then 1
 * vector bucket, 13 for the function (its log group, role, policy, two alarms, invoke permission,
 * and its domain events' queue with the dead-letter queue, their policies, the mapping and the
 * alarm) and 17 for its 8 routes (8 methods, 4 preflights, 5 new path resources): 318 in dev, 325
 * with malware protection. The fan-out and response streaming cost no resource. Still 150 below
 * CloudFormation's limit. And 350 -> 375 for the repository when the exports function came: the
 * exports bucket and its policy, 13 for the function (its log group, role, policy, two alarms,
 * invoke permission, and its work queue with the dead-letter queue, their policies, the mapping
 * and the alarm) and its 6 routes: 352 with malware protection. Still 125 below CloudFormation's
 * limit. The synthetic API of 80 routes keeps the repository's event-driven functions beside
 * its own, so the audit log's queue and the exports bucket and work queue raise it too: 350 ->
 * 375 (358 in prod). And 375 -> 400 for the repository when the operators' rate-limit routes
 * (`GET`/`PUT /admin/orgs/{orgId}/limits`) and the cost routes (`GET /orgs/{orgId}/costs`, `GET
 * /admin/costs`) came: their methods, path resources and preflights, 384 with malware
 * protection; the buckets and the ledger themselves cost no resource. 100 below CloudFormation's
 * limit: the next large addition should move the API's methods into a nested stack. */
const CLOUDFORMATION_LIMIT = 500;
const REPOSITORY_CEILING = 400;
const LARGE_API_CEILING = 375;

/** A route costs at most: its method, its path's OPTIONS preflight, its path's resource. Routes
 * sharing a path share the last two; a new path deeper than one segment below an existing one
 * adds one resource per segment, which the routes of this API never do alone (checked below). */
const PER_ROUTE = 3;

/**
 * Resources that depend neither on routes nor on functions: table, cursor secret, upload bucket
 * and its policy, its access-log bucket and that one's policy, the domain-event queue pair and
 * their policies, SES identity, the user pool, its client and group, the REST API, its account
 * settings and CloudWatch role, deployment, stage, access log group, authorizer, request
 * validator, /health (resource and method), the two gateway responses, the domain-event DLQ alarm
 * and the API 5xx alarm: 28. Plus 4 in dev (the two buckets' auto-delete custom resources, their
 * provider function and role) and 3 with alarmEmail (SNS topic, topic policy, subscription).
 */
function stackOverhead(s: Synth): number {
  return 28 + (s.stack.settings.stage === 'dev' ? 4 : 0) + (s.stack.settings.alarmEmail !== undefined ? 3 : 0);
}

/** CDK's bucket-notification handler (custom resource, function, role, policy), once per stack
 * when any function has an S3 source or the malware protection keeps EventBridge notifications on. */
const S3_NOTIFICATIONS_ONCE = 4;

/** GuardDuty Malware Protection for S3 (context malwareProtection): the plan, its role and the
 * role's policy; and the scan-result rule when a function takes the results. */
const MALWARE_PROTECTION_ONCE = 3;
const MALWARE_SCAN_RULE_ONCE = 1;

/** The SES configuration set and its EventBridge event destination, once per stack when a function
 * names the set (environment.sesConfigurationSet) or takes its feedback (sources.mailFeedback). */
const SES_CONFIGURATION_SET_ONCE = 2;

/** The S3 Vectors buckets (context vectorBuckets, one resource each), once per stack when a function
 * uses them (environment.vectorBuckets or permissions.s3vectors). */
function vectorBucketsOnce(s: Synth, fns: readonly FunctionDefinition[]): number {
  return fns.some((f) => f.environment.vectorBuckets || f.permissions.s3vectors.length > 0) ? s.stack.settings.vectorBuckets : 0;
}

/** The exports bucket and its policy (and in dev its auto-delete custom resource; the provider is
 * shared with the other buckets'), once per stack when a function uses it (environment.exportBucket
 * or permissions.exportBucketS3). Its access logs go to the existing log bucket; the exports
 * function's own queue, its send permission and its Cognito grant are counted per function (a
 * queue) or cost nothing (policy statements). */
function exportBucketOnce(s: Synth, fns: readonly FunctionDefinition[]): number {
  if (!fns.some((f) => f.environment.exportBucket || f.permissions.exportBucketS3.length > 0)) return 0;
  return 2 + (s.stack.settings.stage === 'dev' ? 1 : 0);
}

/** What one function costs, by its registry entry (and whether the malware protection is on). */
function functionCost(f: FunctionDefinition, malwareProtection: boolean): number {
  const src = f.sources;
  const scanResults = src.malwareScanResults && malwareProtection;
  let n = 6; // log group, role, role policy, function, errors alarm, throttles alarm
  if (src.http) n += 1; // one API Gateway invoke permission, whatever the number of routes
  n += src.cognitoTriggers.length; // one Cognito invoke permission per trigger
  if (src.dynamodbStream !== null) n += 4; // mapping, failure queue, its TLS policy, its alarm
  if (src.schedules.length > 0 || src.mailFeedback || scanResults) n += 4; // async-failure queue, its policy, its alarm, EventInvokeConfig
  if (src.schedules.length > 0) n += 2 + src.schedules.length; // scheduler role and policy, one schedule each
  // queue, dead-letter queue, their two policies, mapping, DLQ alarm: per queue, for the S3
  // source's queue (the bucket's permission to send is a statement in the queue's policy) and for
  // the domain events' queue (the fan-out's permission to send is a statement in its role's policy,
  // its EVENT_QUEUES a variable: the fan-out itself costs nothing). Streaming and Bedrock cost
  // nothing either: an integration setting and a policy statement.
  n += 6 * (src.queues.length + (src.s3 !== null ? 1 : 0) + (src.domainEvents !== null ? 1 : 0));
  if (src.mailFeedback) n += 5; // EventBridge rule, its dead-letter queue, that queue's policy, its alarm, the invoke permission
  if (scanResults) n += 4; // its dead-letter queue on the scan-result rule, that queue's policy, its alarm, the invoke permission
  return n;
}

function budget(s: Synth, registry: FunctionRegistry): { fixed: number; routeDriven: number; total: number; routes: number } {
  const fns = registry.functions;
  const malwareProtection = s.stack.settings.malwareProtection;
  const fixed =
    stackOverhead(s) +
    (fns.some((f) => f.sources.s3 !== null) || malwareProtection ? S3_NOTIFICATIONS_ONCE : 0) +
    (fns.some((f) => f.environment.sesConfigurationSet || f.sources.mailFeedback) ? SES_CONFIGURATION_SET_ONCE : 0) +
    (malwareProtection ? MALWARE_PROTECTION_ONCE : 0) +
    (malwareProtection && fns.some((f) => f.sources.malwareScanResults) ? MALWARE_SCAN_RULE_ONCE : 0) +
    vectorBucketsOnce(s, fns) +
    exportBucketOnce(s, fns) +
    fns.reduce((n, f) => n + functionCost(f, malwareProtection), 0);
  const methods = [...methodsByRoute(s.template).keys()].filter((k) => k !== 'GET /health');
  const pathResources = Object.keys(resources(s.template, 'AWS::ApiGateway::Resource')).length - 1; // minus /health
  const routes = methods.filter((k) => !k.startsWith('OPTIONS ')).length;
  return { fixed, routeDriven: methods.length + pathResources, total: resourceCount(s.template), routes };
}

function check(label: string, s: Synth, registry: FunctionRegistry, manifest: RouteManifest): ReturnType<typeof budget> {
  const b = budget(s, registry);
  assert.equal(b.routes, manifest.routes.length, `${label}: one method per route`);
  assert.equal(b.total - b.routeDriven, b.fixed, `${label}: resources beyond the routes' differ from the budget table (fixed overhead + per function)`);
  assert.ok(b.routeDriven <= PER_ROUTE * b.routes, `${label}: ${b.routeDriven} route resources for ${b.routes} routes`);
  assert.ok(b.total <= b.fixed + PER_ROUTE * b.routes);
  return b;
}

describe('resource budget (CloudFormation: 500 per stack)', () => {
  test('repository (functions.json + routes.json): fixed overhead + per-function cost + at most 3 per route', (t) => {
    const withMalwareProtection = synth({ context: { ...PROD_CONTEXT, malwareProtection: 'true' } });
    for (const [label, s] of [
      ['dev', stage('dev')],
      ['prod', stage('prod')],
      ['prod with malware protection', withMalwareProtection],
    ] as const) {
      const b = check(label, s, loadFunctionRegistry(), loadRouteManifest());
      t.diagnostic(`${label}: ${b.total} resources = ${b.fixed} fixed + ${b.routeDriven} for ${b.routes} routes (k = ${(b.routeDriven / b.routes).toFixed(2)})`);
      assert.ok(b.total <= REPOSITORY_CEILING, `${label}: ${b.total} resources, over the ceiling of ${REPOSITORY_CEILING}`);
    }
  });

  test('every event source kind (test registry fixture) costs what the table says, with and without malware protection', (t) => {
    const registry = allSourcesRegistry();
    for (const context of [PROD_CONTEXT, { ...PROD_CONTEXT, malwareProtection: 'true' }]) {
      const s = synth({ context, functions: registry });
      const b = check('fixture', s, registry, loadRouteManifest());
      t.diagnostic(`all source kinds, ${registry.functions.length} functions, malwareProtection=${s.stack.settings.malwareProtection}: ${b.total} resources`);
    }
  });

  test('malware protection alone (no S3 source, no function taking the results): the plan, its role, and the bucket notifications (EventBridge on)', () => {
    const registry = {
      functions: loadFunctionRegistry().functions.map((f) => ({ ...f, sources: { ...f.sources, s3: null, malwareScanResults: false } })),
    };
    const s = synth({ context: { ...PROD_CONTEXT, malwareProtection: 'true' }, functions: registry });
    check('no consumers', s, registry, loadRouteManifest());
    s.template.resourceCountIs('AWS::GuardDuty::MalwareProtectionPlan', 1);
    s.template.resourceCountIs('AWS::Events::Rule', 1); // the SES mail-feedback rule only
  });

  test('invoke permissions from API Gateway: one per HTTP function, however many routes', () => {
    for (const [perFunction] of [[5], [10]]) {
      const { registry, routes } = syntheticApi(8, perFunction);
      const s = synth({ context: PROD_CONTEXT, functions: registry, routes });
      const perms = Object.values(resources(s.template, 'AWS::Lambda::Permission')).filter(
        (p) => p.Properties!.Principal === 'apigateway.amazonaws.com',
      );
      assert.equal(perms.length, 8, `${8 * perFunction} routes`);
    }
  });

  test('measured k: 40 more routes on the same 8 functions cost under 2 resources each', (t) => {
    const sizes = [5, 10].map((perFunction) => {
      const { registry, routes } = syntheticApi(8, perFunction);
      return { routes: routes.routes.length, total: resourceCount(synth({ context: PROD_CONTEXT, functions: registry, routes }).template) };
    });
    const k = (sizes[1].total - sizes[0].total) / (sizes[1].routes - sizes[0].routes);
    t.diagnostic(`${sizes[0].routes} routes: ${sizes[0].total}; ${sizes[1].routes} routes: ${sizes[1].total}; k = ${k.toFixed(2)}`);
    assert.ok(k < 2, `k = ${k}`);
  });

  test(`about 80 routes across 8 functions: under ${LARGE_API_CEILING} resources (limit ${CLOUDFORMATION_LIMIT})`, (t) => {
    const { registry, routes } = syntheticApi(8, 10);
    assert.equal(routes.routes.length, 80);
    for (const context of [PROD_CONTEXT, { stage: 'dev' }]) {
      const s = synth({ context, functions: registry, routes });
      const b = check(`synthetic ${context.stage}`, s, registry, routes);
      t.diagnostic(`${context.stage}: 80 routes, ${registry.functions.length} functions: ${b.total} resources`);
      assert.ok(b.total < LARGE_API_CEILING, `${b.total}`);
    }
  });
});
