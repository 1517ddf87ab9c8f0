// Infrastructure-only policy for the functions. WHAT the functions are (name, sizing, environment
// switches, permissions, event sources) is declared once, in the Rust registry of functions, and
// reaches the stack as infra/functions.json (lib/definitions.ts reads and checks it). What stays
// here is how the stack deploys any function: log level, CORS headers, retry and dead-letter
// settings, and the rules that turn the registry into IAM and API Gateway settings.
import { Duration } from 'aws-cdk-lib';
import type { DynamoDbAction, ExportBucketS3Action, RouteDefinition, S3Action } from './definitions';

export type {
  BedrockAction,
  CognitoTrigger,
  DynamoDbAction,
  CognitoAction,
  DynamoDbStreamSource,
  EventSubscription,
  ExportBucketS3Action,
  FunctionDefinition,
  FunctionEnvironment,
  FunctionPermissions,
  FunctionRegistry,
  FunctionSources,
  QueueSource,
  S3Action,
  S3Source,
  S3VectorsAction,
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

// ---- reserved concurrency ---------------------------------------------------------------------

/**
 * Reserved concurrency per function: each function's ceiling, so that one runaway function (a
 * retry storm, a slow dependency holding invocations open, a flood of stream records) cannot take
 * the account's regional concurrency that the others need. Reserving also guarantees the function
 * that much, and Lambda keeps 100 of the account's limit unreserved for everything else.
 *
 * The numbers (an account limit of 1000, the default for established accounts):
 * - organizations 100: the main API. The stage throttle (100 requests/s, burst 200) bounds its
 *   arrival rate; at its usual tens of milliseconds that is under 10 concurrent invocations, so
 *   100 still serves the full stage rate at 1 s per request (a slow DynamoDB or a cold fleet).
 * - invites 50: invitations are created and accepted far less often than the organization
 *   routes; the SES call adds up to a second.
 * - projects 100: the other half of the main API (projects, tasks, comments: the routes a team
 *   uses all day), under the same stage throttle as organizations, so the same ceiling. A CSV
 *   import holds an invocation for up to 25 s, so a few imports at once must not leave the task
 *   routes without room.
 * - cognito-triggers 50: sign-up, sign-in and token refresh wait on it (Cognito gives a trigger 5 s),
 *   and a throttled trigger is a failed sign-in, so it gets room: Cognito's own request quotas
 *   keep the sign-in rate well below 50 concurrent invocations of tens of milliseconds.
 * - org-purge 10: background work: one stream batch per shard at a time (the table's stream has
 *   a shard per partition, a handful at this size; deleted organizations, project purges and
 *   ended memberships), the hourly sweep and an operator's request fit at once. A runaway purge stays below 10 and never crowds out the API; a purge stopped
 *   half-way is resumed by the hourly sweep.
 * - any other function: DEFAULT_RESERVED_CONCURRENCY, until it gets a line here (today
 *   notifications: its inbox routes, one stream batch per shard, the 15-minute sweep and the
 *   occasional SES bounce or complaint; and files: its routes, batches of 5 upload events from its
 *   queue, whose pollers back off when the function is throttled, the messages waiting in the
 *   queue, the 15-minute sweep and the scan results).
 * Together 350 of 1000: 650 stay unreserved. A throttles alarm fires per function (> 0) when a
 * ceiling is reached, so a number that is too low shows up at once.
 *
 * Override per deployment with context (`-c reservedConcurrency=organizations=200,org-purge=5`),
 * or switch it off (`-c reservedConcurrency=off`, the dev default): new accounts often have a
 * total of only 10, and with 100 kept unreserved they cannot reserve anything.
 */
export const RESERVED_CONCURRENCY: Readonly<Record<string, number>> = {
  organizations: 100,
  invites: 50,
  projects: 100,
  'cognito-triggers': 50,
  'org-purge': 10,
};
export const DEFAULT_RESERVED_CONCURRENCY = 20;
/** Lambda refuses reservations that leave less than this of the account's limit unreserved. */
export const MIN_UNRESERVED_CONCURRENCY = 100;

/** The reserved concurrency of every function (name -> number), or an empty map when switched off.
 * Throws when an override names an unknown function or the total leaves less than 100 of the
 * account's limit unreserved (CloudFormation would fail half-way through the deploy). */
export function reservedConcurrency(
  names: readonly string[],
  settings: { enabled: boolean; overrides: Readonly<Record<string, number>>; accountLimit: number },
): Map<string, number> {
  const out = new Map<string, number>();
  if (!settings.enabled) return out;
  for (const name of Object.keys(settings.overrides)) {
    if (!names.includes(name)) {
      throw new Error(
        `context reservedConcurrency names function "${name}", which infra/functions.json does not declare ` +
          `(functions: ${[...names].sort().join(', ')})`,
      );
    }
  }
  for (const name of names) {
    out.set(name, settings.overrides[name] ?? RESERVED_CONCURRENCY[name] ?? DEFAULT_RESERVED_CONCURRENCY);
  }
  const total = [...out.values()].reduce((a, b) => a + b, 0);
  if (total > settings.accountLimit - MIN_UNRESERVED_CONCURRENCY) {
    throw new Error(
      `reserved concurrency: the functions reserve ${total} in total, but an account limit of ${settings.accountLimit} ` +
        `(context accountConcurrencyLimit) allows at most ${settings.accountLimit - MIN_UNRESERVED_CONCURRENCY} ` +
        `(Lambda keeps ${MIN_UNRESERVED_CONCURRENCY} unreserved). Lower the numbers (-c reservedConcurrency=name=N,...), ` +
        'raise the account limit (Service Quotas) and pass it, or switch reservations off (-c reservedConcurrency=off).',
    );
  }
  return out;
}

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
/** Lambda's own retries of a failed asynchronous invocation (schedules and EventBridge rules are
 * asynchronous; S3 events arrive through a queue); after them the event goes to the same
 * async-failure queue. */
export const ASYNC_RETRY_ATTEMPTS = 2;

/** The SES events that sources.mailFeedback delivers (the configuration set publishes BOUNCE and
 * COMPLAINT to EventBridge's default bus under these detail types, source aws.ses). */
export const MAIL_FEEDBACK_DETAIL_TYPES: readonly string[] = ['Email Bounced', 'Email Complaint Received'];
/** EventBridge's delivery retries of a bounce or complaint to Lambda (throttling, service errors;
 * its default is 185 over 24 hours). Suppressing an address a few hours late costs little, losing
 * it silently would not: after these the event goes to the rule's dead-letter queue (alarmed). */
export const MAIL_FEEDBACK_RETRY_ATTEMPTS = 8;
export const MAIL_FEEDBACK_MAX_EVENT_AGE = Duration.hours(6);

/** GuardDuty publishes each scan result of a protected bucket to the default bus under this
 * detail type, source aws.guardduty (the files function checks the same: SCAN_RESULT_DETAIL_TYPE in
 * functions/files/src/scan.rs). */
export const MALWARE_SCAN_SOURCE = 'aws.guardduty';
export const MALWARE_SCAN_DETAIL_TYPE = 'GuardDuty Malware Protection Object Scan Result';
/** EventBridge's delivery retries of a scan result to Lambda. A lost result leaves a file waiting
 * for its scan (never ready), so the event is kept for a while, then goes to the target's
 * dead-letter queue (alarmed), from where it can be redriven. */
export const MALWARE_SCAN_RETRY_ATTEMPTS = 8;
export const MALWARE_SCAN_MAX_EVENT_AGE = Duration.hours(6);

/** The `source` of the EventBridge-shaped event a schedule delivers. */
export const SCHEDULE_EVENT_SOURCE = 'tenantry.scheduler';

// ---- the upload bucket ------------------------------------------------------------------------

/** The key prefixes of the upload bucket that functions' S3 permissions (permissions.s3) cover:
 * uploads/{org}/{file} holds the bytes as uploaded, derived/{org}/{file}/… what processing makes of
 * them (UPLOAD_PREFIX and DERIVED_PREFIX in shared/store/src/files.rs). */
export const UPLOAD_PREFIX = 'uploads/';
export const DERIVED_PREFIX = 'derived/';
export const UPLOAD_BUCKET_PREFIXES: readonly string[] = [UPLOAD_PREFIX, DERIVED_PREFIX];
/** What GuardDuty Malware Protection scans: what browsers upload. Derived objects are made by the
 * files function from uploads it has read itself. */
export const MALWARE_SCAN_PREFIXES: readonly string[] = [UPLOAD_PREFIX];
/** Days after which S3 aborts an incomplete multipart upload (and frees its parts), and after which
 * a noncurrent version expires when versioning is switched on. */
export const UPLOAD_BUCKET_CLEANUP = Duration.days(1);

/** permissions.s3 split by resource: object actions (on the objects under the prefixes) and
 * bucket actions (s3:ListBucket, on the bucket, with an s3:prefix condition). */
export function s3ActionsByResource(actions: readonly S3Action[]): { objectActions: S3Action[]; bucketActions: S3Action[] } {
  const unique = [...new Set(actions)];
  return {
    objectActions: unique.filter((a) => a !== 's3:ListBucket'),
    bucketActions: unique.filter((a) => a === 's3:ListBucket'),
  };
}

// ---- the exports bucket ------------------------------------------------------------------------

/** Days after which an export's zip expires: a download link is valid minutes, and an export that
 * nobody fetched within a week is made again on request (the export's item expires with it). */
export const EXPORT_BUCKET_EXPIRATION = Duration.days(7);
/** Days after which S3 aborts an incomplete multipart upload of an export (one given up half-way,
 * whose parts no export counts). */
export const EXPORT_BUCKET_CLEANUP = Duration.days(1);

/** permissions.exportBucketS3 split by resource: object actions (on the bucket's objects) and bucket
 * actions (s3:ListBucketMultipartUploads, on the bucket). */
export function exportBucketActionsByResource(actions: readonly ExportBucketS3Action[]): {
  objectActions: ExportBucketS3Action[];
  bucketActions: ExportBucketS3Action[];
} {
  const unique = [...new Set(actions)];
  return {
    objectActions: unique.filter((a) => a !== 's3:ListBucketMultipartUploads'),
    bucketActions: unique.filter((a) => a === 's3:ListBucketMultipartUploads'),
  };
}

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

// ---- S3 Vectors ------------------------------------------------------------------------------

/** How many vector buckets a deployment may ask for (context vectorBuckets). A bucket holds 10,000
 * indexes, one per org (shared/store/src/vectors.rs), so 100 hold a million orgs; each is one
 * CloudFormation resource of the stack's 500. */
export const MAX_VECTOR_BUCKETS = 100;

/** S3 Vectors bucket names: 3 to 63 lowercase letters, digits and hyphens, starting and ending with
 * a letter or digit. */
const VECTOR_BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** The vector buckets' common prefix (VECTOR_BUCKET_PREFIX), from the stack's name: unique per stack
 * in an account and region, as bucket names must be, and known at synth, so that the functions'
 * policies name each bucket. `Tenantry-dev` -> `tenantry-dev-vectors`. */
export function vectorBucketPrefix(stackName: string): string {
  const base = stackName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  // Room for "-vectors-" and the largest bucket number.
  const room = 63 - '-vectors-'.length - String(MAX_VECTOR_BUCKETS - 1).length;
  return `${base.slice(0, room).replace(/-$/, '')}-vectors`;
}

/** Every vector bucket's name: `{prefix}-{n}` for n below the count (the store's rule). */
export function vectorBucketNames(prefix: string, count: number): string[] {
  const names = Array.from({ length: count }, (_, n) => `${prefix}-${n}`);
  for (const name of names) {
    if (!VECTOR_BUCKET_NAME.test(name)) throw new Error(`vector bucket name ${name} is not a valid S3 Vectors bucket name`);
  }
  return names;
}

// ---- Bedrock ---------------------------------------------------------------------------------

/** The geographies of Bedrock's cross-region inference profiles: an id with one of these prefixes
 * (us.anthropic.claude-…) names a system-defined inference profile, which routes each request to
 * the underlying foundation model in one of the geography's regions (global.: any region). */
export const INFERENCE_PROFILE_GEOGRAPHIES: readonly string[] = ['us', 'eu', 'apac', 'global'];

/** Where a Bedrock model or profile id is invoked: the ARN parts the policy names. */
export interface BedrockResources {
  /** inference profiles (in the stack's region and account) */
  readonly inferenceProfiles: readonly string[];
  /** foundation models in the stack's region (plain model ids) */
  readonly regionalModels: readonly string[];
  /** foundation models behind the profiles, in every region (the profile picks one per request) */
  readonly profileModels: readonly string[];
}

/** Splits permissions.bedrockModels into inference profiles (and the models behind them) and plain
 * foundation models. Bedrock authorizes an invocation through a profile on the profile AND on the
 * foundation model in the region that serves it, so a profile's model is granted in every region,
 * by name; a plain id only in the stack's region. Never a wildcard on model names. */
export function bedrockResources(models: readonly string[]): BedrockResources {
  const inferenceProfiles: string[] = [];
  const regionalModels: string[] = [];
  const profileModels: string[] = [];
  for (const id of models) {
    const geography = id.split('.')[0];
    if (INFERENCE_PROFILE_GEOGRAPHIES.includes(geography)) {
      inferenceProfiles.push(id);
      profileModels.push(id.slice(geography.length + 1));
    } else {
      regionalModels.push(id);
    }
  }
  const unique = (xs: string[]) => [...new Set(xs)];
  return { inferenceProfiles: unique(inferenceProfiles), regionalModels: unique(regionalModels), profileModels: unique(profileModels) };
}
