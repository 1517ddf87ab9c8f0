// Deployment settings, from CDK context (`-c key=value` or cdk.json). One codebase, two stages.
// Values given on the command line arrive as strings, so every reader accepts strings.
import * as path from 'node:path';
import { REPO_ROOT } from './definitions';
import { MAX_VECTOR_BUCKETS } from './functions';

export type Stage = 'dev' | 'prod';

export type MailIdentity =
  | { readonly kind: 'domain'; readonly domain: string }
  | { readonly kind: 'email'; readonly address: string };

export interface Settings {
  readonly stage: Stage;
  /** the front end's URL (APP_URL: links in emails); unset only when the stack hosts the console,
   * whose URL it then is */
  readonly appUrl?: string;
  /** CORS origins allowed by the API (preflights, API Gateway's own errors, ALLOWED_ORIGINS of the
   * HTTP functions) and the upload bucket: ['*'] (dev default) or a list of exact origins. The
   * hosted console's origin is added by the stack (it may be CloudFront's generated domain). */
  readonly allowedOrigins: readonly string[];
  /** the web console in a private S3 bucket behind CloudFront (context console, off by default) */
  readonly console?: ConsoleSettings;
  /** the SES identity mail is sent from */
  readonly mailIdentity: MailIdentity;
  /** SES_FROM_ADDRESS */
  readonly sesFromAddress: string;
  /** stage-wide API throttling (requests per second, burst) */
  readonly throttleRateLimit: number;
  readonly throttleBurstLimit: number;
  /** X-Ray tracing for the API stage and the functions (prod default on) */
  readonly tracing: boolean;
  /** Cognito MFA: optional (TOTP for those who enable it) or required (every user enrolls TOTP) */
  readonly mfa: 'optional' | 'required';
  /** who sends the user pool's mail: SES through the stack's identity, or Cognito's default
   * sender (about 50 mails a day) */
  readonly userPoolEmail: 'ses' | 'cognito';
  /** the display name in the From of the user pool's mail (context productName) */
  readonly mailFromName?: string;
  /** reserved concurrency per function (lib/functions.ts), or none (context reservedConcurrency=off) */
  readonly reservedConcurrency: ReservedConcurrencySettings;
  /** alarm notifications by email (an SNS topic is created only when set) */
  readonly alarmEmail?: string;
  /** S3 versioning of the upload bucket: off by default in every stage. The files function assumes
   * it off: object keys are unique per file, processing is ordered by the event's sequencer, and a
   * delete must really delete so that the org's storage quota is freed. When switched on, noncurrent
   * versions expire after a day (infra/README.md, upload bucket). */
  readonly bucketVersioning: boolean;
  /** GuardDuty Malware Protection for S3 on the upload bucket's uploads/ (a protection plan, its
   * role, and the scan-result rule to the functions with sources.malwareScanResults); off by
   * default. The functions that read context malwareProtection (environment.fromContext) get
   * "true" exactly when the plan exists. */
  readonly malwareProtection: boolean;
  /** how many S3 Vectors buckets hold the orgs' vector indexes (context vectorBuckets, default 1):
   * each holds 10,000 indexes, one per org. The count cannot change without moving indexes (the
   * store spreads the orgs over the buckets by it), so size it for the growth you expect. */
  readonly vectorBuckets: number;
  /** Cognito feature plan: essentials (needed for V2 pre-token-generation) or plus */
  readonly cognitoFeaturePlan: 'essentials' | 'plus';
  /** days to keep function and API access logs */
  readonly logRetentionDays: number;
  /** where cargo-lambda wrote the functions (…/target/lambda) */
  readonly lambdaDir: string;
  /** use infra/test/placeholder-asset for functions that were not built (tests only) */
  readonly allowPlaceholderCode: boolean;
}

export interface ConsoleSettings {
  /** the built console (make console: shared/console/dist; context consoleDir) */
  readonly dir: string;
  /** a domain of your own for it (context consoleDomain), with its ACM certificate in us-east-1
   * (context consoleCertificateArn); unset: CloudFront's generated *.cloudfront.net domain */
  readonly domain?: string;
  readonly certificateArn?: string;
  /** a WAF web ACL (scope CLOUDFRONT, in us-east-1) for the distribution (context consoleWebAclArn) */
  readonly webAclArn?: string;
}

export interface ReservedConcurrencySettings {
  /** false: no function reserves concurrency (accounts whose concurrency limit is below 100+) */
  readonly enabled: boolean;
  /** function name -> reserved concurrency, over the policy in lib/functions.ts */
  readonly overrides: Readonly<Record<string, number>>;
  /** the account's concurrency limit in the region (Lambda keeps 100 of it unreserved) */
  readonly accountLimit: number;
}

/** Something that answers CDK context look-ups (an App's or a Stack's node). */
export interface ContextSource {
  tryGetContext(key: string): unknown;
}

function str(ctx: ContextSource, key: string): string | undefined {
  const v = ctx.tryGetContext(key);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
    throw new Error(`context ${key} must be a string, number or boolean`);
  }
  return String(v);
}

function bool(ctx: ContextSource, key: string, dflt: boolean): boolean {
  const v = str(ctx, key);
  if (v === undefined) return dflt;
  if (['true', '1', 'yes'].includes(v.toLowerCase())) return true;
  if (['false', '0', 'no'].includes(v.toLowerCase())) return false;
  throw new Error(`context ${key} must be true or false (got ${v})`);
}

function positiveInt(ctx: ContextSource, key: string, dflt: number): number {
  const v = str(ctx, key);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`context ${key} must be a positive integer (got ${v})`);
  return n;
}

function list(ctx: ContextSource, key: string): string[] | undefined {
  const v = ctx.tryGetContext(key);
  if (v === undefined || v === null || v === '') return undefined;
  if (Array.isArray(v)) return v.map(String);
  const s = String(v).trim();
  if (s.startsWith('[')) return (JSON.parse(s) as unknown[]).map(String);
  return s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

function url(value: string, key: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`context ${key}: ${value} is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`context ${key}: ${value} is not http(s)`);
  return value.replace(/\/+$/, '');
}

/** An exact browser origin: scheme://host[:port], nothing after it (a trailing slash is dropped). */
function origin(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`context allowedOrigins: ${value} is not an origin (scheme://host[:port])`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.pathname !== '/' || u.search || u.hash || u.username || u.password) {
    throw new Error(`context allowedOrigins: ${value} is not an origin (scheme://host[:port], no path, query or credentials)`);
  }
  return u.origin;
}

/** CORS origins. dev: `*` unless given. prod: an explicit list of https origins, nothing implied
 * (not even the app URL: the list is a security decision, made on purpose), except the console the
 * stack hosts, whose origin the stack adds: with it, prod may list none. */
function readAllowedOrigins(ctx: ContextSource, prod: boolean, hostsConsole: boolean): string[] {
  const given = list(ctx, 'allowedOrigins');
  if (given === undefined || given.length === 0) {
    if (prod && hostsConsole) return [];
    if (prod) {
      throw new Error(
        'context allowedOrigins is required for stage prod: the browser origins that may call the API, ' +
          'comma-separated or a JSON array (-c allowedOrigins=https://app.example.com)',
      );
    }
    return ['*'];
  }
  if (given.includes('*')) {
    if (prod) throw new Error('context allowedOrigins: prod allows explicit https origins only, not *');
    if (given.length > 1) throw new Error('context allowedOrigins: * cannot be combined with other origins');
    return ['*'];
  }
  const origins = [...new Set(given.map(origin))];
  if (prod && origins.some((o) => !o.startsWith('https:'))) {
    throw new Error('context allowedOrigins: prod allows https origins only');
  }
  return origins;
}

/** the retention periods CloudWatch Logs accepts */
const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

function retentionDays(ctx: ContextSource, dflt: number): number {
  const n = positiveInt(ctx, 'logRetentionDays', dflt);
  if (!RETENTION_DAYS.includes(n)) throw new Error(`context logRetentionDays must be one of ${RETENTION_DAYS.join(', ')} (got ${n})`);
  return n;
}

/**
 * reservedConcurrency: `on` (the policy in lib/functions.ts), `off` (no function reserves
 * anything: new accounts often have a total of 10, and Lambda keeps 100 unreserved, so any
 * reservation fails there), or per-function numbers that also switch it on:
 * `organizations=200,org-purge=5` or a JSON object. prod default on, dev default off.
 */
function readReservedConcurrency(ctx: ContextSource, prod: boolean): ReservedConcurrencySettings {
  const accountLimit = positiveInt(ctx, 'accountConcurrencyLimit', 1000);
  const raw = ctx.tryGetContext('reservedConcurrency');
  const given = raw === undefined || raw === null || raw === '' ? undefined : raw;
  if (given === undefined) return { enabled: prod, overrides: {}, accountLimit };
  let entries: [string, unknown][];
  if (typeof given === 'object' && !Array.isArray(given)) {
    entries = Object.entries(given as Record<string, unknown>);
  } else {
    const text = String(given).trim();
    const lower = text.toLowerCase();
    if (['on', 'true', 'yes', '1'].includes(lower)) return { enabled: true, overrides: {}, accountLimit };
    if (['off', 'false', 'no', '0', 'none'].includes(lower)) return { enabled: false, overrides: {}, accountLimit };
    if (text.startsWith('{')) {
      entries = Object.entries(JSON.parse(text) as Record<string, unknown>);
    } else {
      entries = text
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0)
        .map((pair) => {
          const i = pair.indexOf('=');
          if (i <= 0) {
            throw new Error(
              `context reservedConcurrency: ${pair} is not function=number (use on, off, or e.g. organizations=200,org-purge=5)`,
            );
          }
          return [pair.slice(0, i).trim(), pair.slice(i + 1).trim()];
        });
    }
  }
  const overrides: Record<string, number> = {};
  for (const [name, value] of entries) {
    const n = Number(value);
    if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(name)) throw new Error(`context reservedConcurrency: ${name} is not a function name`);
    if (!Number.isInteger(n) || n <= 0) {
      throw new Error(`context reservedConcurrency: ${name} must be a positive integer (got ${String(value)})`);
    }
    overrides[name] = n;
  }
  return { enabled: true, overrides, accountLimit };
}

/** context vectorBuckets: 1 to MAX_VECTOR_BUCKETS (default 1). */
function vectorBucketCount(ctx: ContextSource): number {
  const n = positiveInt(ctx, 'vectorBuckets', 1);
  if (n > MAX_VECTOR_BUCKETS) {
    throw new Error(`context vectorBuckets must be at most ${MAX_VECTOR_BUCKETS} (got ${n}): each holds 10,000 orgs' indexes`);
  }
  return n;
}

function oneOf<T extends string>(ctx: ContextSource, key: string, values: readonly T[], dflt: T): T {
  const v = (str(ctx, key) ?? dflt).toLowerCase();
  if (!(values as readonly string[]).includes(v)) throw new Error(`context ${key} must be ${values.join(' or ')} (got ${v})`);
  return v as T;
}

/** context console (default off): the console's directory and, optionally, its own domain (with
 * its certificate, both or neither) and a web ACL. */
function readConsole(ctx: ContextSource): ConsoleSettings | undefined {
  if (!bool(ctx, 'console', false)) {
    for (const key of ['consoleDomain', 'consoleCertificateArn', 'consoleWebAclArn']) {
      if (str(ctx, key) !== undefined) throw new Error(`context ${key} needs context console=true`);
    }
    return undefined;
  }
  const domain = str(ctx, 'consoleDomain')?.toLowerCase();
  const certificateArn = str(ctx, 'consoleCertificateArn');
  if ((domain === undefined) !== (certificateArn === undefined)) {
    throw new Error('context consoleDomain and consoleCertificateArn go together: the domain and its ACM certificate (in us-east-1)');
  }
  if (domain !== undefined && !DOMAIN.test(domain)) throw new Error(`context consoleDomain: ${domain} is not a domain name`);
  if (certificateArn !== undefined && !/^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate\/[0-9a-f-]+$/.test(certificateArn)) {
    throw new Error(`context consoleCertificateArn: ${certificateArn} is not an ACM certificate ARN in us-east-1 (CloudFront takes only those)`);
  }
  const webAclArn = str(ctx, 'consoleWebAclArn');
  if (webAclArn !== undefined && !/^arn:aws[a-z-]*:wafv2:us-east-1:\d{12}:global\/webacl\/[^/]+\/[0-9a-f-]+$/.test(webAclArn)) {
    throw new Error(`context consoleWebAclArn: ${webAclArn} is not a WAF web ACL ARN of scope CLOUDFRONT (us-east-1, global/webacl/…)`);
  }
  return {
    dir: path.resolve(REPO_ROOT, str(ctx, 'consoleDir') ?? path.join('shared', 'console', 'dist')),
    domain,
    certificateArn,
    webAclArn,
  };
}

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

/** Reads and checks the context. Prod has no defaults for what reaches users. */
export function readSettings(ctx: ContextSource, env: NodeJS.ProcessEnv = process.env): Settings {
  const stageValue = str(ctx, 'stage') ?? 'dev';
  if (stageValue !== 'dev' && stageValue !== 'prod') {
    throw new Error(`context stage must be dev or prod (got ${stageValue})`);
  }
  const stage: Stage = stageValue;
  const prod = stage === 'prod';

  const hostedConsole = readConsole(ctx);
  // With the console hosted, links in mail open it unless appUrl says otherwise.
  const appUrlValue = str(ctx, 'appUrl') ?? (prod || hostedConsole !== undefined ? undefined : 'http://localhost:5173');
  if (appUrlValue === undefined && hostedConsole === undefined) {
    throw new Error('context appUrl is required for stage prod (-c appUrl=https://app.example.com), unless the stack hosts the console (-c console=true)');
  }
  const appUrl = appUrlValue === undefined ? undefined : url(appUrlValue, 'appUrl');

  // The hosted console's origin is added by the stack (TenantryStack.allowedOrigins).
  const allowedOrigins = readAllowedOrigins(ctx, prod, hostedConsole !== undefined);

  const mailDomain = str(ctx, 'mailDomain');
  const mailFromAddress = str(ctx, 'mailFromAddress');
  let mailIdentity: MailIdentity;
  let sesFromAddress: string;
  if (mailDomain !== undefined) {
    if (!DOMAIN.test(mailDomain)) throw new Error(`context mailDomain: ${mailDomain} is not a domain name`);
    mailIdentity = { kind: 'domain', domain: mailDomain.toLowerCase() };
    sesFromAddress = mailFromAddress ?? `no-reply@${mailDomain.toLowerCase()}`;
    if (!sesFromAddress.toLowerCase().endsWith(`@${mailDomain.toLowerCase()}`)) {
      throw new Error(`context mailFromAddress ${sesFromAddress} is not in mailDomain ${mailDomain}`);
    }
  } else if (mailFromAddress !== undefined) {
    mailIdentity = { kind: 'email', address: mailFromAddress };
    sesFromAddress = mailFromAddress;
  } else if (!prod) {
    sesFromAddress = 'no-reply@example.com';
    mailIdentity = { kind: 'email', address: sesFromAddress };
  } else {
    throw new Error(
      'context mailDomain (or mailFromAddress) is required for stage prod: the SES identity that the user pool ' +
        "(sign-up codes, password resets) and the invitations send from; Cognito's default sender allows about " +
        '50 mails a day (-c mailDomain=example.com, mail from no-reply@example.com)',
    );
  }
  if (!EMAIL.test(sesFromAddress)) throw new Error(`context mailFromAddress: ${sesFromAddress} is not an email address`);

  const alarmEmail = str(ctx, 'alarmEmail');
  if (alarmEmail !== undefined && !EMAIL.test(alarmEmail)) throw new Error(`context alarmEmail: ${alarmEmail} is not an email address`);

  // Platform operators must use MFA, and Cognito cannot require it for one group only: prod
  // requires TOTP of every user (infra/README.md, "MFA").
  const mfa = oneOf(ctx, 'mfa', ['optional', 'required'] as const, prod ? 'required' : 'optional');
  if (prod && mfa !== 'required') {
    throw new Error(
      'context mfa: stage prod requires MFA (TOTP) for every user: platform operators must use MFA, and Cognito ' +
        'cannot require it for one group only (infra/README.md, MFA)',
    );
  }

  // prod sends the user pool's mail through SES; Cognito's default sender is for dev, and for the
  // one deploy of a new prod stack before its SES identity is verified (infra/README.md).
  const userPoolEmail = oneOf(ctx, 'userPoolEmail', ['ses', 'cognito'] as const, prod ? 'ses' : 'cognito');

  const featurePlan = (str(ctx, 'cognitoFeaturePlan') ?? 'essentials').toLowerCase();
  if (featurePlan !== 'essentials' && featurePlan !== 'plus') {
    throw new Error(`context cognitoFeaturePlan must be essentials or plus (got ${featurePlan})`);
  }

  const targetDir = env.CARGO_TARGET_DIR ? path.resolve(REPO_ROOT, env.CARGO_TARGET_DIR) : path.join(REPO_ROOT, 'target');
  const lambdaDir = path.resolve(REPO_ROOT, str(ctx, 'lambdaDir') ?? env.TENANTRY_LAMBDA_DIR ?? path.join(targetDir, 'lambda'));

  return {
    stage,
    appUrl,
    allowedOrigins,
    console: hostedConsole,
    mailIdentity,
    sesFromAddress,
    throttleRateLimit: positiveInt(ctx, 'throttleRateLimit', 100),
    throttleBurstLimit: positiveInt(ctx, 'throttleBurstLimit', 200),
    tracing: bool(ctx, 'tracing', prod),
    mfa,
    userPoolEmail,
    mailFromName: str(ctx, 'productName'),
    reservedConcurrency: readReservedConcurrency(ctx, prod),
    alarmEmail,
    // Off in every stage: the files function assumes an unversioned bucket (see Settings).
    bucketVersioning: bool(ctx, 'bucketVersioning', false),
    malwareProtection: bool(ctx, 'malwareProtection', false),
    vectorBuckets: vectorBucketCount(ctx),
    cognitoFeaturePlan: featurePlan,
    logRetentionDays: retentionDays(ctx, prod ? 90 : 14),
    lambdaDir,
    allowPlaceholderCode: bool(ctx, 'allowPlaceholderCode', false),
  };
}
