// Deployment settings, from CDK context (`-c key=value` or cdk.json). One codebase, two stages.
// Values given on the command line arrive as strings, so every reader accepts strings.
import * as path from 'node:path';
import { REPO_ROOT } from './definitions';

export type Stage = 'dev' | 'prod';

export type MailIdentity =
  | { readonly kind: 'domain'; readonly domain: string }
  | { readonly kind: 'email'; readonly address: string };

export interface Settings {
  readonly stage: Stage;
  /** the front end's URL (APP_URL: links in emails) */
  readonly appUrl: string;
  /** CORS origins allowed by the API (preflights, API Gateway's own errors, ALLOWED_ORIGINS of the
   * HTTP functions) and the upload bucket: ['*'] (dev default) or a list of exact origins */
  readonly allowedOrigins: readonly string[];
  /** the SES identity mail is sent from */
  readonly mailIdentity: MailIdentity;
  /** SES_FROM_ADDRESS */
  readonly sesFromAddress: string;
  /** stage-wide API throttling (requests per second, burst) */
  readonly throttleRateLimit: number;
  readonly throttleBurstLimit: number;
  /** X-Ray tracing for the API stage and the functions */
  readonly tracing: boolean;
  /** alarm notifications by email (an SNS topic is created only when set) */
  readonly alarmEmail?: string;
  /** S3 versioning of the upload bucket */
  readonly bucketVersioning: boolean;
  /** Cognito feature plan: essentials (needed for V2 pre-token-generation) or plus */
  readonly cognitoFeaturePlan: 'essentials' | 'plus';
  /** days to keep function and API access logs */
  readonly logRetentionDays: number;
  /** where cargo-lambda wrote the functions (…/target/lambda) */
  readonly lambdaDir: string;
  /** use infra/test/placeholder-asset for functions that were not built (tests only) */
  readonly allowPlaceholderCode: boolean;
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
 * (not even the app URL: the list is a security decision, made on purpose). */
function readAllowedOrigins(ctx: ContextSource, prod: boolean): string[] {
  const given = list(ctx, 'allowedOrigins');
  if (given === undefined || given.length === 0) {
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

  const appUrlValue = str(ctx, 'appUrl') ?? (prod ? undefined : 'http://localhost:5173');
  if (appUrlValue === undefined) throw new Error('context appUrl is required for stage prod (-c appUrl=https://app.example.com)');
  const appUrl = url(appUrlValue, 'appUrl');

  const allowedOrigins = readAllowedOrigins(ctx, prod);

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
    throw new Error('context mailDomain (or mailFromAddress) is required for stage prod');
  }
  if (!EMAIL.test(sesFromAddress)) throw new Error(`context mailFromAddress: ${sesFromAddress} is not an email address`);

  const alarmEmail = str(ctx, 'alarmEmail');
  if (alarmEmail !== undefined && !EMAIL.test(alarmEmail)) throw new Error(`context alarmEmail: ${alarmEmail} is not an email address`);

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
    mailIdentity,
    sesFromAddress,
    throttleRateLimit: positiveInt(ctx, 'throttleRateLimit', 100),
    throttleBurstLimit: positiveInt(ctx, 'throttleBurstLimit', 200),
    tracing: bool(ctx, 'tracing', false),
    alarmEmail,
    bucketVersioning: bool(ctx, 'bucketVersioning', prod),
    cognitoFeaturePlan: featurePlan,
    logRetentionDays: retentionDays(ctx, prod ? 90 : 14),
    lambdaDir,
    allowPlaceholderCode: bool(ctx, 'allowPlaceholderCode', false),
  };
}
