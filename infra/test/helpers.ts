// Shared by the tests: synthesize the stack in-process with the same feature flags as cdk.json,
// on placeholder code (CI runs these tests without cross-compiling the functions).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import {
  FunctionDefinition,
  FunctionRegistry,
  HttpMethod,
  INFRA_DIR,
  RouteDefinition,
  RouteManifest,
  loadFunctionRegistry,
  loadRouteManifest,
  parseFunctionRegistry,
  parseRouteManifest,
} from '../lib/definitions';
import { readSettings } from '../lib/settings';
import { TenantryStack, TenantryStackProps } from '../lib/tenantry-stack';

const CDK_JSON = JSON.parse(fs.readFileSync(path.join(INFRA_DIR, 'cdk.json'), 'utf8')) as {
  context: Record<string, unknown>;
};

/** A directory that never holds build output, so every function uses the placeholder. */
export const NO_BUILD_DIR = path.join(INFRA_DIR, 'test', 'no-build-output');

export const DEV_CONTEXT: Record<string, string> = { stage: 'dev' };
export const PROD_CONTEXT: Record<string, string> = {
  stage: 'prod',
  appUrl: 'https://app.example.com',
  allowedOrigins: 'https://app.example.com',
  mailDomain: 'example.com',
  alarmEmail: 'ops@example.com',
};

export interface Synth {
  readonly app: App;
  readonly stack: TenantryStack;
  readonly template: Template;
}

export interface SynthOptions {
  readonly context?: Record<string, string>;
  readonly functions?: FunctionRegistry;
  readonly routes?: RouteManifest;
  readonly table?: TenantryStackProps['table'];
  /** changes the stack after construction, before the template is synthesized */
  readonly tweak?: (stack: TenantryStack) => void;
}

export function synth(options: SynthOptions = {}): Synth {
  const app = new App({
    // cfn-lint checks the template in its own test (test/cfn-lint.test.ts), which also runs the
    // real `cdk synth` with CDK's built-in validation; in-process it would add ~3 s per synth.
    builtinCloudFormationValidation: false,
    context: {
      ...CDK_JSON.context,
      // Keep the placeholder-code warnings out of the test output.
      '@aws-cdk/core:annotationsInValidationReport': false,
      lambdaDir: NO_BUILD_DIR,
      allowPlaceholderCode: 'true',
      ...(options.context ?? {}),
    },
  });
  const settings = readSettings(app.node);
  const stack = new TenantryStack(app, `Tenantry-${settings.stage}`, {
    settings,
    functions: options.functions,
    routes: options.routes,
    table: options.table,
  });
  options.tweak?.(stack);
  return { app, stack, template: Template.fromStack(stack) };
}

const cache = new Map<string, Synth>();
/** dev and prod with the repository's routes and functions, synthesized once per test file. */
export function stage(name: 'dev' | 'prod'): Synth {
  let s = cache.get(name);
  if (s === undefined) {
    s = synth({ context: name === 'dev' ? DEV_CONTEXT : PROD_CONTEXT });
    cache.set(name, s);
  }
  return s;
}

/** A test registry: the repository's functions plus test-only functions that use the event
 * sources no repository function uses yet (S3 with and without a prefix, queues, schedules). */
export const ALL_SOURCES_FIXTURE = path.join(INFRA_DIR, 'test', 'fixtures', 'functions.all-sources.json');

export function allSourcesRegistry(): FunctionRegistry {
  // Read whole, then checked together: the fixture's subscriber (test-audit) gets its events from
  // the repository's fan-out, which the fixture alone does not have.
  const fixture = JSON.parse(fs.readFileSync(ALL_SOURCES_FIXTURE, 'utf8')) as { functions: unknown[] };
  return parseFunctionRegistry(
    { functions: [...loadFunctionRegistry().functions, ...fixture.functions] },
    'infra/functions.json + test fixture',
  );
}

/** The public routes (no authorizer) that the repository's routes.json declares: "METHOD /path". */
export function repositoryPublicRoutes(): string[] {
  return loadRouteManifest()
    .routes.filter((r) => r.public === true)
    .map((r) => `${r.method} ${r.path}`);
}

/** The test-only public route of {@link publicRouteManifest}, on a path of its own. */
export const PUBLIC_ROUTE = 'POST /test-public-link';

/** The repository's routes (whose public ones are the notifications function's one-click
 * unsubscribe) plus one more public route, served by another HTTP function of the repository
 * (invites): what any function that declares a route `.public()` puts in routes.json. */
export function publicRouteManifest(): RouteManifest {
  const raw = JSON.parse(JSON.stringify({ routes: loadRouteManifest().routes }));
  raw.routes.push({ function: 'invites', method: 'POST', path: '/test-public-link', operationId: 'testPublicLink', summary: 'A link whose signed token is the credential', public: true });
  return parseRouteManifest(raw, 'infra/routes.json + a public route');
}

/** A registry with only the given functions' definitions replaced (the rest as in functions.json). */
export function registryWith(...changed: FunctionDefinition[]): FunctionRegistry {
  const base = loadFunctionRegistry().functions;
  const names = new Set(changed.map((f) => f.name));
  return { functions: [...base.filter((f) => !names.has(f.name)), ...changed] };
}

/**
 * A larger API for the resource budget: the repository's functions that have event sources other
 * than HTTP (kept, with HTTP off, so their wiring counts), plus `functions` HTTP functions with
 * `routesPerFunction` routes each, shaped like the real ones (a collection, an item, a
 * sub-collection, a sub-item, and actions on the item).
 */
export function syntheticApi(functions: number, routesPerFunction: number): { registry: FunctionRegistry; routes: RouteManifest } {
  const repo = loadFunctionRegistry().functions;
  const template = repo.find((f) => f.sources.http)!;
  const shapes: [HttpMethod, string][] = [
    ['GET', ''],
    ['POST', ''],
    ['GET', '/{id}'],
    ['PATCH', '/{id}'],
    ['DELETE', '/{id}'],
    ['GET', '/{id}/items'],
    ['POST', '/{id}/items'],
    ['GET', '/{id}/items/{itemId}'],
    ['PUT', '/{id}/items/{itemId}'],
    ['DELETE', '/{id}/items/{itemId}'],
  ];
  const registry: FunctionDefinition[] = repo
    .filter((f) => {
      const o = f.sources;
      return (
        o.cognitoTriggers.length > 0 ||
        o.dynamodbStream !== null ||
        o.s3 !== null ||
        o.schedules.length > 0 ||
        o.queues.length > 0 ||
        o.mailFeedback ||
        o.malwareScanResults ||
        o.domainEvents !== null
      );
    })
    .map((f) => ({ ...f, sources: { ...f.sources, http: false, streaming: false } }));
  const routes: RouteDefinition[] = [];
  for (let i = 1; i <= functions; i++) {
    const name = `area${i}`;
    registry.push({ ...template, name, description: `synthetic ${name}` });
    for (let j = 0; j < routesPerFunction; j++) {
      const [method, suffix] = j < shapes.length ? shapes[j] : (['POST', `/{id}/action${j}`] as [HttpMethod, string]);
      routes.push({ function: name, method, path: `/${name}${suffix}`, operationId: `${name}Op${j}`, summary: '' });
    }
  }
  return { registry: { functions: registry }, routes: { routes } };
}

// ---- template helpers ------------------------------------------------------------------------

/** The Lambda functions aws-cdk-lib adds and manages itself (deploy-time handlers: a dev bucket's
 * auto-delete, the upload bucket's notification configuration), by logical id. */
export function isCdkHandler(logicalId: string): boolean {
  return logicalId.startsWith('CustomS3AutoDeleteObjects') || logicalId.startsWith('BucketNotificationsHandler');
}

export type Resource = { Type: string; Properties?: Record<string, any>; [k: string]: any };

/** The number of resources in a template (CloudFormation allows 500 per stack). */
export function resourceCount(template: Template): number {
  return Object.keys(template.toJSON().Resources ?? {}).length;
}

export function resources(template: Template, type: string): Record<string, Resource> {
  return template.findResources(type) as Record<string, Resource>;
}

/** logical id of a function: Fn::GetAtt [id, Arn] */
export function functionLogicalId(s: Synth, name: string): string {
  const fn = s.stack.functions.get(name);
  if (fn === undefined) throw new Error(`function ${name} is not deployed`);
  return s.stack.getLogicalId(fn.fn.node.defaultChild as any);
}

export function roleLogicalId(s: Synth, name: string): string {
  const fn = s.stack.functions.get(name);
  if (fn === undefined) throw new Error(`function ${name} is not deployed`);
  return s.stack.getLogicalId(fn.role.node.defaultChild as any);
}

/** Every Allow action in the policies attached to a role. */
export function roleActions(template: Template, roleId: string): string[] {
  const actions: string[] = [];
  for (const policy of Object.values(resources(template, 'AWS::IAM::Policy'))) {
    const roles = (policy.Properties?.Roles ?? []) as unknown[];
    if (!roles.some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleId }))) continue;
    for (const st of policy.Properties!.PolicyDocument.Statement) {
      actions.push(...([] as string[]).concat(st.Action));
    }
  }
  return actions;
}

/** The statements of the policies attached to a role. */
export function roleStatements(template: Template, roleId: string): any[] {
  const out: any[] = [];
  for (const policy of Object.values(resources(template, 'AWS::IAM::Policy'))) {
    const roles = (policy.Properties?.Roles ?? []) as unknown[];
    if (roles.some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleId }))) out.push(...policy.Properties!.PolicyDocument.Statement);
  }
  return out;
}

/** "GET /orgs/{orgId}" → the AWS::ApiGateway::Method, rebuilt from the resource tree. */
export function methodsByRoute(template: Template): Map<string, Resource> {
  const apiResources = resources(template, 'AWS::ApiGateway::Resource');
  const pathOf = (ref: unknown): string => {
    if (typeof ref === 'object' && ref !== null && 'Fn::GetAtt' in ref) return ''; // the root
    const id = (ref as { Ref: string }).Ref;
    const r = apiResources[id];
    if (r === undefined) throw new Error(`unknown API resource ${id}`);
    return `${pathOf(r.Properties!.ParentId)}/${r.Properties!.PathPart}`;
  };
  const out = new Map<string, Resource>();
  for (const m of Object.values(resources(template, 'AWS::ApiGateway::Method'))) {
    const p = pathOf(m.Properties!.ResourceId) || '/';
    out.set(`${m.Properties!.HttpMethod} ${p}`, m);
  }
  return out;
}

/**
 * A dependency cycle among a template's resources (CloudFormation refuses such a template with
 * "Circular dependency between resources"), as the list of logical ids around it, or undefined.
 * Edges: Ref, Fn::GetAtt, ${...} in Fn::Sub, and DependsOn.
 */
export function dependencyCycle(template: { Resources?: Record<string, any> }): string[] | undefined {
  const all = template.Resources ?? {};
  const ids = new Set(Object.keys(all));
  const refsOf = (node: unknown, out: Set<string>): void => {
    if (Array.isArray(node)) {
      for (const n of node) refsOf(n, out);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
      if (k === 'Ref' && typeof v === 'string') {
        if (ids.has(v)) out.add(v);
      } else if (k === 'Fn::GetAtt') {
        const target = Array.isArray(v) ? String(v[0]) : String(v).split('.')[0];
        if (ids.has(target)) out.add(target);
      } else if (k === 'Fn::Sub') {
        const text = Array.isArray(v) ? String(v[0]) : String(v);
        for (const m of text.matchAll(/\$\{([^}!.]+)[^}]*\}/g)) if (ids.has(m[1])) out.add(m[1]);
        if (Array.isArray(v)) refsOf(v[1], out);
      } else {
        refsOf(v, out);
      }
    }
  };
  const edges = new Map<string, string[]>();
  for (const [id, r] of Object.entries(all)) {
    const out = new Set<string>();
    refsOf(r.Properties, out);
    for (const d of ([] as string[]).concat(r.DependsOn ?? [])) out.add(d);
    edges.set(id, [...out]);
  }
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    state.set(id, 'open');
    stack.push(id);
    for (const next of edges.get(id) ?? []) {
      if (state.get(next) === 'open') return [...stack.slice(stack.indexOf(next)), next];
      if (state.get(next) === undefined) {
        const found = visit(next);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const id of ids) {
    if (state.get(id) === undefined) {
      const found = visit(id);
      if (found) return found;
    }
  }
  return undefined;
}

/** Asserts that an alarm fires as soon as the queue `queueId` (a logical id) holds any visible message. */
export function expectDepthAlarm(template: Template, queueId: string): void {
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    Namespace: 'AWS/SQS',
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
    Threshold: 0,
    ComparisonOperator: 'GreaterThanThreshold',
  });
}
