// Infrastructure-only policy for the functions. WHAT the functions are (name, sizing, environment
// switches, permissions, event sources) is declared once, in the Rust registry of functions, and
// reaches the stack as infra/functions.json (lib/definitions.ts reads and checks it). What stays
// here is how the stack deploys any function: log level, CORS headers, retry and dead-letter
// settings, and the rules that turn the registry into IAM and API Gateway settings.
import { Duration } from 'aws-cdk-lib';
import type { DynamoDbAction, RouteDefinition } from './definitions';

export type {
  CognitoTrigger,
  DynamoDbAction,
  DynamoDbStreamSource,
  FunctionDefinition,
  FunctionEnvironment,
  FunctionPermissions,
  FunctionRegistry,
  FunctionSources,
  QueueSource,
  S3Source,
  ScheduleSource,
} from './definitions';

/** RUST_LOG of every function. */
export const LOG_LEVEL = 'info';

// ---- CORS --------------------------------------------------------------------------------------

/** Request headers a browser may send (answered by the API Gateway preflight). */
export const CORS_ALLOW_HEADERS: readonly string[] = ['Authorization', 'Content-Type', 'If-Match', 'Idempotency-Key'];
/** Response headers a browser may read. The Lambda responses expose the same list (the Rust side
 * keeps its own copy); API Gateway's own 4xx/5xx answers carry it too. */
export const CORS_EXPOSE_HEADERS: readonly string[] = ['ETag', 'Location', 'RateLimit', 'RateLimit-Policy', 'Retry-After'];
/** How long a browser may cache a preflight answer (Chromium caps it at 2 hours). */
export const CORS_MAX_AGE = Duration.hours(1);

// ---- event sources -----------------------------------------------------------------------------

/** AWS guidance for SQS event sources: the queue's visibility timeout is at least six times the
 * function's timeout, so a message is not handed to a second invocation while Lambda still
 * retries throttled invocations of the first batch. A larger value from the registry wins. */
export const QUEUE_VISIBILITY_TIMEOUT_FACTOR = 6;
export function queueVisibilityTimeoutSeconds(functionTimeoutSeconds: number, requested: number): number {
  return Math.max(requested, QUEUE_VISIBILITY_TIMEOUT_FACTOR * functionTimeoutSeconds);
}

/** Dead-letter queues keep failures for the longest time SQS allows, so nothing expires before
 * someone looks at the alarm. */
export const DLQ_RETENTION = Duration.days(14);

/** EventBridge Scheduler's delivery retries to Lambda (throttling, service errors); an event that
 * cannot be delivered within the age limit goes to the function's async-failure queue. */
export const SCHEDULE_RETRY_ATTEMPTS = 3;
export const SCHEDULE_MAX_EVENT_AGE = Duration.hours(1);
/** Lambda's own retries of a failed asynchronous invocation (schedules and S3 notifications are
 * asynchronous); after them the event goes to the same async-failure queue. */
export const ASYNC_RETRY_ATTEMPTS = 2;

/** The `source` of the EventBridge-shaped event a schedule delivers. */
export const SCHEDULE_EVENT_SOURCE = 'tenantry.scheduler';

// ---- IAM and API Gateway -----------------------------------------------------------------------

/** The IAM actions for a function's DynamoDB operations. Transactions have no IAM action of their
 * own: DynamoDB authorizes each part of a TransactWriteItems with the Put/Update/DeleteItem and
 * ConditionCheckItem permissions (and TransactGetItems with GetItem), so those two are listed in
 * the registry (what the code calls) but emit nothing. */
export function iamDynamoDbActions(operations: readonly DynamoDbAction[]): string[] {
  const noIamAction: readonly DynamoDbAction[] = ['TransactWriteItems', 'TransactGetItems'];
  return [...new Set(operations)].filter((a) => !noIamAction.includes(a)).map((a) => `dynamodb:${a}`);
}

/** A route path as it appears in an execute-api ARN: path parameters become `*`. */
function arnPath(routePath: string): string {
  return routePath.replace(/\{[^}]*\}/g, '*');
}

/**
 * The narrowest method and path ONE execute-api source ARN can name for a function's routes
 * (`arn:…:execute-api:region:account:apiId/<stage>/<method>/<path>`): the routes' common
 * method, else `*`; their common leading path segments, then `*`. In an ARN pattern `*`
 * matches any characters, `/` included. Examples:
 *   GET /orgs/{orgId}                       -> GET  /orgs/*
 *   GET /orgs, DELETE /orgs/{orgId}         -> *    /orgs*      (matches /orgs and /orgs/…)
 *   POST /invites/accept, GET /orgs/…       -> *    /*
 * One permission per function instead of one per method keeps the stack small; the integrations
 * decide which route reaches which function, the permission only bounds where API Gateway may
 * invoke it from (this API, this stage, these paths).
 */
export function executeApiScope(routes: readonly Pick<RouteDefinition, 'method' | 'path'>[]): { method: string; path: string } {
  if (routes.length === 0) throw new Error('executeApiScope: no routes');
  const methods = new Set(routes.map((r) => r.method));
  const method = methods.size === 1 ? routes[0].method : '*';
  const paths = [...new Set(routes.map((r) => arnPath(r.path)))];
  if (paths.length === 1) return { method, path: paths[0] };
  const split = paths.map((p) => p.split('/').filter((s) => s.length > 0));
  const common: string[] = [];
  for (let i = 0; ; i++) {
    const seg = split[0][i];
    if (seg === undefined || !split.every((s) => s[i] === seg)) break;
    common.push(seg);
  }
  if (common.length === 0) return { method, path: '/*' };
  const prefix = `/${common.join('/')}`;
  // A trailing `*` segment already matches everything below it.
  if (common[common.length - 1] === '*') return { method, path: prefix };
  // When one of the routes IS the common prefix, `prefix/*` would miss it.
  return { method, path: paths.includes(prefix) ? `${prefix}*` : `${prefix}/*` };
}
