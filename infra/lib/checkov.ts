// checkov acknowledgements: every checkov finding the stack accepts, each with its reason, in one
// place (the cdk-nag ones are in lib/nag.ts). They reach the template as resource metadata, which
// checkov reads:  Metadata: { checkov: { skip: [ { id, comment } ] } }.
// Each is added only where its reason holds (tracing off, reservations off, SSE-SQS on, …), so a
// setting that changes the reason brings the finding back. Anything not acknowledged here fails
// test/checkov.test.ts (checkov over the dev and prod templates). infra/checkov/ holds the
// project's own checks (CKV_TENANTRY_*).
import { CfnResource, Stack, aws_apigateway as apigw, aws_sqs as sqs } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { DeployedFunction, TenantryStack } from './tenantry-stack';

/** The metadata key checkov reads on a CloudFormation resource. */
export const CHECKOV_METADATA_KEY = 'checkov';

export interface CheckovSkip {
  readonly id: string;
  readonly comment: string;
}

function cfnOf(scope: IConstruct): CfnResource {
  if (CfnResource.isCfnResource(scope)) return scope;
  const child = scope.node.defaultChild;
  if (child === undefined || !CfnResource.isCfnResource(child)) throw new Error(`${scope.node.path}: no CloudFormation resource`);
  return child;
}

/** Adds a skip to a resource's checkov metadata (one entry per check id). */
export function acknowledgeCheckov(scope: IConstruct, id: string, comment: string): void {
  const cfn = cfnOf(scope);
  const current = (cfn.getMetadata(CHECKOV_METADATA_KEY) as { skip?: CheckovSkip[] } | undefined)?.skip ?? [];
  const skip = [...current.filter((s) => s.id !== id), { id, comment }];
  cfn.addMetadata(CHECKOV_METADATA_KEY, { skip });
}

/** The checkov skips of a template resource (for the tests). */
export function checkovSkips(resource: { Metadata?: Record<string, unknown>; [k: string]: unknown }): CheckovSkip[] {
  return ((resource.Metadata?.[CHECKOV_METADATA_KEY] as { skip?: CheckovSkip[] } | undefined)?.skip ?? []) as CheckovSkip[];
}

const REASONS = {
  lambdaVpc:
    'No VPC: the functions call only AWS APIs (DynamoDB, Secrets Manager, SES, SQS, S3) over TLS, authorized by IAM; ' +
    'none of them lives in a VPC. A VPC would add NAT gateways or interface endpoints (an hourly cost per zone) and ' +
    'network interfaces to manage, and protect nothing the functions talk to.',
  lambdaEnvironmentKey:
    'The environment holds names, ARNs, URLs and switches, never a secret: the cursor key is read from Secrets ' +
    'Manager by ARN, and a test refuses secret-like variable names. Lambda encrypts it at rest with an AWS-managed ' +
    'key; a customer-managed key would add cost and a key policy to protect no secret.',
  logGroupKey:
    'CloudWatch Logs encrypts every log group at rest with service-managed keys. A customer-managed KMS key adds a ' +
    'monthly key cost, KMS requests and a key policy for the logs service, and guards nothing IAM on the log group ' +
    'does not: the functions log request metadata and errors, no secrets.',
  sqsManagedSse:
    'Encrypted at rest with SSE-SQS (SqsManagedSseEnabled: no key to manage, no KMS charges). CKV_AWS_27 recognizes ' +
    'only a KMS key (KmsMasterKeyId); the project check CKV_TENANTRY_1 (infra/checkov/) requires SSE-SQS or SSE-KMS ' +
    'on every queue instead.',
  tableKey:
    'Encrypted at rest with the AWS owned key, DynamoDB\'s default at no charge. A customer-managed key adds a monthly ' +
    'cost, KMS charges on every request and a key whose loss or policy mistake makes the table unreadable; nothing ' +
    'here needs one (no cross-account access, no key-level audit requirement).',
  secretKey:
    'Encrypted with the AWS-managed key aws/secretsmanager. A customer-managed key is needed only to share a secret ' +
    'with another account, which the cursor key never is; reading it is allowed by IAM on this one secret, to the ' +
    'functions whose registry entry says readCursorSecret.',
  alarmTopicKey:
    'The topic carries alarm notifications only (alarm name, state, metric), no data. CloudWatch cannot publish to a ' +
    'topic encrypted with the AWS-managed key aws/sns (its key policy cannot allow CloudWatch), so encryption would ' +
    'need a customer-managed key and key policy, and a mistake there silently drops every alarm.',
  apiCache:
    'No API cache: every answer depends on the caller\'s token and organization (tenant data, per-user ' +
    'authorization). A stage cache risks serving one tenant\'s answer to another unless every method keys on the ' +
    'Authorization header, and costs per hour; the functions answer fast enough without it.',
  health:
    'GET /health is deliberately unauthenticated: a mock integration that returns {"status":"ok"} for load balancers ' +
    'and uptime checks; it reaches no function and no data. Every other method has the Cognito authorizer, except ' +
    'those of the routes that routes.json declares public.',
  publicRoute:
    'RFC 8058 one-click unsubscribe: the signed token in the link is the credential; mail clients POST without a session',
  logBucketLogging:
    'This bucket receives the upload bucket\'s server access logs. Logging it too would need another log bucket (and ' +
    'that one another); only the S3 logging service may write here (bucket policy), and CloudTrail records the ' +
    'management calls on it.',
  logBucketVersioning:
    'Log objects are written once by S3\'s log delivery and expire with the lifecycle rule; only the logging service ' +
    'may write here and no function role has access, so versioning would only keep copies of expired logs.',
  cdkHandler:
    'A handler that aws-cdk-lib adds and manages, run by CloudFormation during deployments only (it empties a dev ' +
    'bucket before deletion, or writes the bucket\'s notification configuration). No traffic reaches it, so it ' +
    'needs no concurrency ceiling and no dead-letter queue.',
} as const;

/** Why a function has no dead-letter queue (CKV_AWS_116), from what invokes it. */
function dlqReason(f: DeployedFunction): string {
  const src = f.config.sources;
  const sync: string[] = [];
  if (src.http) sync.push('API Gateway');
  if (src.cognitoTriggers.length > 0) sync.push('Cognito triggers');
  const mapped: string[] = [];
  if (src.dynamodbStream !== null) mapped.push('the table stream (failed batches go to its stream-failure queue)');
  if (src.s3 !== null) mapped.push('the upload bucket\'s event queue (failed messages go to its dead-letter queue)');
  if (src.queues.length > 0) mapped.push('SQS queues (failed messages go to each queue\'s dead-letter queue)');
  const parts = [
    sync.length > 0 ? `synchronously by ${sync.join(' and ')} (the caller gets the error)` : '',
    mapped.length > 0 ? `through event source mappings on ${mapped.join(' and ')}` : '',
  ].filter((p) => p.length > 0);
  const invoked = parts.length > 0 ? `${f.name} is invoked ${parts.join(', and ')}.` : `${f.name}:`;
  if (f.asyncFailures !== undefined) {
    return (
      `${invoked} Its asynchronous invocations (schedules, the SES mail-feedback rule, the malware scan-result rule) go to an on-failure destination, its ` +
      'async-failure queue (alarmed on the first message), which supersedes a dead-letter queue and records the error too.'
    );
  }
  return `${invoked} A dead-letter queue applies only to asynchronous invocations, which this function never gets.`;
}

export function applyCheckovSkips(stack: TenantryStack): void {
  const s = stack.settings;
  const ours = new Map<CfnResource, DeployedFunction>();
  for (const f of stack.functions.values()) ours.set(cfnOf(f.fn), f);

  // ---- every resource of a type, where the reason holds for all of them ------------------------
  for (const c of stack.node.findAll()) {
    if (!CfnResource.isCfnResource(c) || Stack.of(c) !== stack) continue;
    switch (c.cfnResourceType) {
      case 'AWS::Lambda::Function': {
        acknowledgeCheckov(c, 'CKV_AWS_117', REASONS.lambdaVpc);
        const f = ours.get(c);
        if (f === undefined) {
          // CDK's own deploy-time handlers (bucket auto-delete in dev, bucket notifications).
          acknowledgeCheckov(c, 'CKV_AWS_115', REASONS.cdkHandler);
          acknowledgeCheckov(c, 'CKV_AWS_116', REASONS.cdkHandler);
          acknowledgeCheckov(c, 'CKV_AWS_173', REASONS.lambdaEnvironmentKey);
          break;
        }
        acknowledgeCheckov(c, 'CKV_AWS_173', REASONS.lambdaEnvironmentKey);
        acknowledgeCheckov(c, 'CKV_AWS_116', dlqReason(f));
        if (!stack.reservedConcurrency.has(f.name)) {
          acknowledgeCheckov(
            c,
            'CKV_AWS_115',
            `${f.name}: reserved concurrency is off (context reservedConcurrency=off, the dev default): an account with ` +
              'a small concurrency limit (often 10 for new accounts) cannot reserve any, as Lambda keeps 100 ' +
              'unreserved. The stage throttle still bounds API traffic; prod reserves per lib/functions.ts.',
          );
        }
        break;
      }
      case 'AWS::Logs::LogGroup':
        acknowledgeCheckov(c, 'CKV_AWS_158', REASONS.logGroupKey);
        break;
      case 'AWS::SQS::Queue':
        // Only where SSE-SQS is really on: an unencrypted queue fails both checks.
        if ((c as sqs.CfnQueue).sqsManagedSseEnabled === true) acknowledgeCheckov(c, 'CKV_AWS_27', REASONS.sqsManagedSse);
        break;
      case 'AWS::DynamoDB::Table':
        acknowledgeCheckov(c, 'CKV_AWS_119', REASONS.tableKey);
        break;
      case 'AWS::SecretsManager::Secret':
        acknowledgeCheckov(c, 'CKV_AWS_149', REASONS.secretKey);
        break;
      case 'AWS::SNS::Topic':
        if (c === stack.alarmTopic?.node.defaultChild) acknowledgeCheckov(c, 'CKV_AWS_26', REASONS.alarmTopicKey);
        break;
      default:
        break;
    }
  }

  // ---- API Gateway -----------------------------------------------------------------------------
  const apiStage = stack.api.deploymentStage;
  acknowledgeCheckov(apiStage, 'CKV_AWS_120', REASONS.apiCache);
  if (!s.tracing) {
    acknowledgeCheckov(
      apiStage,
      'CKV_AWS_73',
      'X-Ray tracing is off by context (tracing=false; the dev default, prod default on): dev traffic needs no ' +
        'traces and no X-Ray charges. -c tracing=true turns it on for the stage and every function.',
    );
  }
  const healthGet = stack.api.root.getResource('health')?.node.tryFindChild('GET') as apigw.Method | undefined;
  if (healthGet !== undefined) acknowledgeCheckov(healthGet, 'CKV_AWS_59', REASONS.health);
  for (const method of stack.publicMethods) acknowledgeCheckov(method, 'CKV_AWS_59', REASONS.publicRoute);

  // ---- buckets ---------------------------------------------------------------------------------
  acknowledgeCheckov(stack.accessLogBucket, 'CKV_AWS_18', REASONS.logBucketLogging);
  acknowledgeCheckov(stack.accessLogBucket, 'CKV_AWS_21', REASONS.logBucketVersioning);
  if (!s.bucketVersioning) {
    acknowledgeCheckov(
      stack.uploadBucket,
      'CKV_AWS_21',
      'Versioning of the upload bucket is off (context bucketVersioning, off in every stage): the files function ' +
        'assumes it. Keys are unique per file, so nothing is overwritten; processing is ordered by the S3 event ' +
        'sequencer; and deleting a file must delete its bytes, or they stay billed while the org quota counts them freed.',
    );
  }
  // ---- the hosted console (context console) ----------------------------------------------------
  if (stack.console !== undefined) {
    const hosted = stack.console;
    acknowledgeCheckov(
      hosted.logBucket,
      'CKV_AWS_18',
      'This bucket receives the console distribution\'s and the console bucket\'s access logs. Logging it too would ' +
        'need another log bucket (and that one another); CloudTrail records the management calls on it.',
    );
    acknowledgeCheckov(hosted.logBucket, 'CKV_AWS_21', REASONS.logBucketVersioning);
    acknowledgeCheckov(
      hosted.bucket,
      'CKV_AWS_21',
      'The console bucket holds the built console only, replaced as a whole by every deploy from the repository: ' +
        'a version would keep a copy of a build that the repository keeps anyway.',
    );
    if (s.console?.webAclArn === undefined) {
      acknowledgeCheckov(
        hosted.distribution,
        'CKV_AWS_68',
        'No WAF web ACL unless context consoleWebAclArn names one: a web ACL for CloudFront lives in us-east-1 (not ' +
          'in this regional stack) and costs a monthly fee; the distribution serves static files only, from a bucket ' +
          'only it can read, and every piece of data stays behind the API and its Cognito authorizer.',
      );
    }
    if (s.console?.domain === undefined) {
      acknowledgeCheckov(
        hosted.distribution,
        'CKV_AWS_174',
        'CloudFront\'s default *.cloudfront.net certificate, whose minimum protocol CloudFront fixes (browsers ' +
          'negotiate TLS 1.2 or 1.3 with it anyway). Context consoleDomain with consoleCertificateArn serves the ' +
          'console on a domain of your own with TLSv1.2_2021 as the minimum.',
      );
    }
    for (const child of stack.node.children) {
      if (!child.node.id.startsWith('Custom::CDKBucketDeployment')) continue;
      const policy = child.node.tryFindChild('ServiceRole')?.node.tryFindChild('DefaultPolicy');
      if (policy === undefined) continue;
      acknowledgeCheckov(
        policy,
        'CKV_AWS_111',
        'aws-cdk-lib\'s deploy-time handler that copies the built console into its bucket: it writes that bucket\'s ' +
          'objects only, and cloudfront:CreateInvalidation, which its policy from aws-cdk-lib grants without a resource.',
      );
    }
  }

  if (stack.exportBucket !== undefined) {
    acknowledgeCheckov(
      stack.exportBucket,
      'CKV_AWS_21',
      'The exports bucket is unversioned: an export is a copy of data kept in the table and the upload bucket, made ' +
        'again on request; one that is withdrawn, expired (7 days) or erased with its account must be gone, not kept ' +
        'as a noncurrent version.',
    );
  }
}
