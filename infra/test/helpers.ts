// Shared by the tests: synthesize the stack in-process with the same feature flags as cdk.json,
// on placeholder code (CI runs these tests without cross-compiling the functions).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { INFRA_DIR, RouteDefinition, RouteManifest, loadRouteManifest } from '../lib/definitions';
import { FUNCTIONS, FunctionConfig } from '../lib/functions';
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
  readonly functions?: Readonly<Record<string, FunctionConfig>>;
  readonly routes?: RouteManifest;
  readonly table?: TenantryStackProps['table'];
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

/** The repository's routes plus the invitation routes the `invites` function will bring. */
export function routesWithInvites(): RouteManifest {
  const extra: RouteDefinition[] = [
    { function: 'invites', method: 'POST', path: '/orgs/{orgId}/invites', operationId: 'createInvite', summary: 'Invite' },
    { function: 'invites', method: 'GET', path: '/orgs/{orgId}/invites', operationId: 'listInvites', summary: 'List' },
    { function: 'invites', method: 'POST', path: '/invites/{token}/accept', operationId: 'acceptInvite', summary: 'Accept' },
  ];
  const base = loadRouteManifest().routes;
  const known = new Set(base.map((r) => `${r.method} ${r.path}`));
  return { routes: [...base, ...extra.filter((r) => !known.has(`${r.method} ${r.path}`))] };
}

/** The repository's functions plus future `files` (S3 uploads) and `notifications` (schedules). */
export function functionsWithFuture(): Record<string, FunctionConfig> {
  return {
    ...FUNCTIONS,
    files: {
      binary: 'files',
      kind: 'worker',
      description: 'test: uploads',
      memoryMb: 256,
      timeoutSeconds: 30,
      sizingReason: 'test',
      environment: { userPoolId: false, sesFromAddress: false },
      permissions: { dynamodb: ['GetItem', 'UpdateItem'], readCursorSecret: false, sesSendEmail: false },
      s3Uploads: true,
    },
    notifications: {
      binary: 'notifications',
      kind: 'worker',
      description: 'test: notifications',
      memoryMb: 256,
      timeoutSeconds: 60,
      sizingReason: 'test',
      environment: { userPoolId: false, sesFromAddress: false },
      permissions: { dynamodb: ['Query', 'UpdateItem'], readCursorSecret: false, sesSendEmail: false },
      schedules: [{ id: 'digest', expression: 'cron(0 8 * * ? *)', description: 'daily digest' }],
    },
  };
}

// ---- template helpers ------------------------------------------------------------------------

export type Resource = { Type: string; Properties?: Record<string, any>; [k: string]: any };

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
