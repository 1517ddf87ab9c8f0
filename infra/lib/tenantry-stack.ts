// The Tenantry stack: one DynamoDB table, one Cognito user pool, one REST API, the Lambda
// functions (Rust, provided.al2023 on arm64), the upload bucket, the S3 Vectors buckets, the
// domain-event queues, the SES identity and configuration set, and the alarms. One codebase for
// both stages (context `stage` = dev | prod).
//
// Every function, and everything that invokes it, comes from infra/functions.json (the Rust
// registry of functions) and infra/routes.json: nothing here names a function.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Annotations,
  CfnOutput,
  Duration,
  RemovalPolicy,
  Stack,
  StackProps,
  Tags,
  Token,
  aws_apigateway as apigw,
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cwActions,
  aws_cognito as cognito,
  aws_dynamodb as dynamodb,
  aws_events as events,
  aws_events_targets as eventsTargets,
  aws_guardduty as guardduty,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_lambda_destinations as lambdaDestinations,
  aws_lambda_event_sources as lambdaEventSources,
  aws_logs as logs,
  aws_s3 as s3,
  aws_s3vectors as s3vectors,
  aws_scheduler as scheduler,
  aws_scheduler_targets as schedulerTargets,
  aws_secretsmanager as secretsmanager,
  aws_ses as ses,
  aws_sns as sns,
  aws_sns_subscriptions as snsSubscriptions,
  aws_sqs as sqs,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import {
  CognitoTrigger,
  FunctionDefinition,
  FunctionRegistry,
  INFRA_DIR,
  QueueSource,
  RouteDefinition,
  RouteManifest,
  STREAMING_MAX_TIMEOUT_SECONDS,
  StreamImage,
  TableDefinition,
  loadFunctionRegistry,
  loadRouteManifest,
  loadTableDefinition,
  queueUrlEnvName,
  streamFilterImages,
} from './definitions';
import {
  ASYNC_RETRY_ATTEMPTS,
  CORS_ALLOW_HEADERS,
  CORS_EXPOSE_HEADERS,
  CORS_MAX_AGE,
  DLQ_RETENTION,
  LOG_LEVEL,
  MAIL_FEEDBACK_DETAIL_TYPES,
  MAIL_FEEDBACK_MAX_EVENT_AGE,
  MAIL_FEEDBACK_RETRY_ATTEMPTS,
  MALWARE_SCAN_DETAIL_TYPE,
  MALWARE_SCAN_MAX_EVENT_AGE,
  MALWARE_SCAN_PREFIXES,
  MALWARE_SCAN_RETRY_ATTEMPTS,
  MALWARE_SCAN_SOURCE,
  SCHEDULE_EVENT_SOURCE,
  SCHEDULE_MAX_EVENT_AGE,
  SCHEDULE_RETRY_ATTEMPTS,
  UPLOAD_BUCKET_CLEANUP,
  EXPORT_BUCKET_CLEANUP,
  EXPORT_BUCKET_EXPIRATION,
  exportBucketActionsByResource,
  UPLOAD_BUCKET_PREFIXES,
  bedrockResources,
  executeApiScope,
  iamDynamoDbActions,
  queueVisibilityTimeoutSeconds,
  reservedConcurrency,
  s3ActionsByResource,
  vectorBucketNames,
  vectorBucketPrefix,
} from './functions';
import { applyCheckovSkips } from './checkov';
import { ConsoleHosting } from './console';
import { applyNagSuppressions } from './nag';
import { Settings } from './settings';

/** Stands in for a function that was not built. Tests only: its bootstrap exits with an error. */
export const PLACEHOLDER_ASSET_DIR = path.join(INFRA_DIR, 'test', 'placeholder-asset');

/** The Cognito group of the platform's operators (domain::Identity::PLATFORM_ADMIN_GROUP). */
export const PLATFORM_ADMIN_GROUP = 'platform-admin';

/** Request bodies: API Gateway REST accepts at most 10 MB (a hard limit, not configurable);
 * the functions themselves reject bodies over 64 KiB with 413 before parsing them. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface TenantryStackProps extends StackProps {
  readonly settings: Settings;
  /** defaults to infra/functions.json */
  readonly functions?: FunctionRegistry;
  /** defaults to infra/routes.json */
  readonly routes?: RouteManifest;
  /** defaults to shared/store/table.json */
  readonly table?: TableDefinition;
}

/** The aws-cdk-lib feature flag that delivers S3 server access logs under a bucket policy. */
const S3_ACCESS_LOGS_USE_BUCKET_POLICY = '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy';

/** Where the upload bucket's server access logs go in the log bucket. */
export const UPLOAD_ACCESS_LOG_PREFIX = 'upload-bucket/';
/** Where the exports bucket's server access logs go in the log bucket. */
export const EXPORT_ACCESS_LOG_PREFIX = 'export-bucket/';

export interface QueueResources {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
}

export interface DeployedFunction {
  readonly name: string;
  readonly config: FunctionDefinition;
  readonly fn: lambda.Function;
  readonly role: iam.Role;
  readonly usesPlaceholderCode: boolean;
  /** its routes (sources.http) */
  readonly routes: readonly RouteDefinition[];
  /** failed asynchronous invocations (schedules, the mail-feedback rule, the malware scan-result
   * rule): Scheduler's dead-letter queue and Lambda's on-failure destination */
  asyncFailures?: sqs.Queue;
  /** the EventBridge rule that delivers SES bounces and complaints (sources.mailFeedback) */
  mailFeedbackRule?: events.Rule;
  /** that rule's dead-letter queue: events EventBridge could not deliver to the function */
  mailFeedbackFailures?: sqs.Queue;
  /** the scan-result rule's dead-letter queue for this function (sources.malwareScanResults, with
   * context malwareProtection): results EventBridge could not deliver to it */
  malwareScanFailures?: sqs.Queue;
  /** the queue the upload bucket notifies (sources.s3), with its dead-letter queue */
  uploadQueue?: QueueResources;
  /** stream batches that failed every retry (sources.dynamodbStream) */
  streamFailures?: sqs.Queue;
  /** the scheduler's role for this function (sources.schedules) */
  schedulerRole?: iam.Role;
  /** sources.queues, by id */
  readonly queues: Map<string, QueueResources>;
  /** the queue the fan-out fills with the domain events it subscribes to (sources.domainEvents) */
  eventQueue?: QueueResources;
}

/** sources.cognitoTriggers -> the user pool operation. */
const TRIGGER_OPERATIONS: Readonly<Record<CognitoTrigger, cognito.UserPoolOperation>> = {
  PreSignUp: cognito.UserPoolOperation.PRE_SIGN_UP,
  PostConfirmation: cognito.UserPoolOperation.POST_CONFIRMATION,
  PreAuthentication: cognito.UserPoolOperation.PRE_AUTHENTICATION,
  PostAuthentication: cognito.UserPoolOperation.POST_AUTHENTICATION,
  // V2_0 events (claims in access tokens): wired below with LambdaVersion.V2_0.
  PreTokenGeneration: cognito.UserPoolOperation.PRE_TOKEN_GENERATION_CONFIG,
  CustomMessage: cognito.UserPoolOperation.CUSTOM_MESSAGE,
  DefineAuthChallenge: cognito.UserPoolOperation.DEFINE_AUTH_CHALLENGE,
  CreateAuthChallenge: cognito.UserPoolOperation.CREATE_AUTH_CHALLENGE,
  VerifyAuthChallengeResponse: cognito.UserPoolOperation.VERIFY_AUTH_CHALLENGE_RESPONSE,
  UserMigration: cognito.UserPoolOperation.USER_MIGRATION,
};

/** A schedule's Lambda target whose role the stack writes itself: exactly lambda:InvokeFunction on
 * the unqualified function (CDK's LambdaInvoke would also grant every version and alias, `:*`). */
class InvokeUnqualifiedFunction extends schedulerTargets.LambdaInvoke {
  protected addTargetActionToRole(_role: iam.IRole): void {
    // The role passed in already allows lambda:InvokeFunction on this function's ARN.
  }
}

/** The upload queue as the bucket's notification destination: S3 may send messages to it
 * (sqs:SendMessage only) for this bucket of this account (aws:SourceArn and aws:SourceAccount).
 * CDK's s3n.SqsDestination grants more (GetQueueAttributes, GetQueueUrl) under aws:SourceArn
 * alone. The queue is encrypted with SSE-SQS, which needs no key policy for S3. */
class UploadQueueDestination implements s3.IBucketNotificationDestination {
  /** one policy statement, however many events the source lists (bind runs once per event) */
  private bound = false;

  constructor(
    private readonly queue: sqs.Queue,
    private readonly bucket: s3.Bucket,
    private readonly account: string,
  ) {}

  bind(): s3.BucketNotificationDestinationConfig {
    if (!this.bound) {
      this.queue.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'UploadBucketNotifications',
          principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
          actions: ['sqs:SendMessage'],
          resources: [this.queue.queueArn],
          conditions: {
            ArnLike: { 'aws:SourceArn': this.bucket.bucketArn },
            StringEquals: { 'aws:SourceAccount': this.account },
          },
        }),
      );
      this.bound = true;
    }
    // S3 checks the destination when the configuration is written: the queue and its policy first.
    return { arn: this.queue.queueArn, type: s3.BucketNotificationDestinationType.QUEUE, dependencies: [this.queue] };
  }
}

function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p.length > 0)
    .map((p) => p[0].toUpperCase() + p.slice(1))
    .join('');
}

/** Routes per HTTP function, checking both files against each other: every route names a function
 * of functions.json with sources.http, and every such function has at least one route. */
export function routesByFunction(registry: FunctionRegistry, manifest: RouteManifest): Map<string, RouteDefinition[]> {
  const byName = new Map(registry.functions.map((f) => [f.name, f]));
  const out = new Map<string, RouteDefinition[]>();
  for (const f of registry.functions) if (f.sources.http) out.set(f.name, []);
  for (const route of manifest.routes) {
    const config = byName.get(route.function);
    if (config === undefined) {
      throw new Error(
        `infra/routes.json: route ${route.method} ${route.path} names function "${route.function}", ` +
          `which infra/functions.json does not declare. Declare it in the Rust registry of functions and ` +
          `regenerate the manifests (make manifest). Declared functions: ${[...byName.keys()].sort().join(', ')}.`,
      );
    }
    if (!config.sources.http) {
      throw new Error(
        `infra/routes.json: route ${route.method} ${route.path} names function "${route.function}", ` +
          `whose sources.http is false in infra/functions.json: it does not serve HTTP.`,
      );
    }
    out.get(route.function)!.push(route);
  }
  for (const [name, routes] of out) {
    if (routes.length === 0) {
      throw new Error(
        `infra/functions.json: function "${name}" has sources.http = true, but no route of infra/routes.json ` +
          `names it. Give it routes, or set sources.http to false (regenerate both with make manifest).`,
      );
    }
  }
  return out;
}

type AlarmFactory = (alarmId: string, metric: cloudwatch.IMetric, description: string) => cloudwatch.Alarm;

/** The input of every scheduled invocation: an EventBridge event (aws_lambda_events'
 * EventBridgeEvent deserializes it), filled in by Scheduler's context attributes. */
export function scheduleEvent(stack: Stack, functionName: string, scheduleId: string): Record<string, unknown> {
  return {
    version: '0',
    id: scheduler.ContextAttribute.executionId,
    'detail-type': 'Scheduled Event',
    source: SCHEDULE_EVENT_SOURCE,
    account: stack.account,
    time: scheduler.ContextAttribute.scheduledTime,
    region: stack.region,
    resources: [scheduler.ContextAttribute.scheduleArn],
    detail: { schedule: scheduleId, function: functionName },
  };
}

/** A stream filter on NewImage/OldImage needs a stream that carries that image. Every function
 * and filter that asks for an image the table's stream lacks, one per line (empty when none). */
export function streamViewProblems(registry: FunctionRegistry, tableDef: TableDefinition): string[] {
  const carried: Record<StreamImage, readonly string[]> = {
    NewImage: ['NEW_IMAGE', 'NEW_AND_OLD_IMAGES'],
    OldImage: ['OLD_IMAGE', 'NEW_AND_OLD_IMAGES'],
  };
  const view = tableDef.streamViewType;
  const problems: string[] = [];
  for (const f of registry.functions) {
    f.sources.dynamodbStream?.filters.forEach((pattern, i) => {
      for (const image of streamFilterImages(pattern)) {
        if (!carried[image].includes(view)) {
          problems.push(`function ${f.name}: sources.dynamodbStream.filters[${i}] filters on ${image}, but the table's stream is ${view} (table.json)`);
        }
      }
    });
  }
  return problems;
}

export class TenantryStack extends Stack {
  readonly settings: Settings;
  readonly table: dynamodb.Table;
  /** what the table was built from (shared/store/table.json unless a test passed another) */
  readonly tableDefinition: TableDefinition;
  readonly cursorSecret: secretsmanager.Secret;
  readonly userPool: cognito.UserPool;
  readonly userPoolClient: cognito.UserPoolClient;
  readonly api: apigw.RestApi;
  /** the methods of the routes that routes.json declares public: no authorizer (NONE) */
  readonly publicMethods: readonly apigw.Method[];
  readonly apiAccessLogs: logs.LogGroup;
  readonly uploadBucket: s3.Bucket;
  /** the private exports bucket (zips of an org's or a user's data, downloaded through presigned
   * links), when a function uses it (environment.exportBucket, permissions.exportBucketS3) */
  readonly exportBucket?: s3.Bucket;
  /** the upload bucket's (and the exports bucket's) server access logs */
  readonly accessLogBucket: s3.Bucket;
  /** GuardDuty Malware Protection for S3 on the upload bucket (context malwareProtection) */
  readonly malwareProtectionPlan?: guardduty.CfnMalwareProtectionPlan;
  /** the role GuardDuty assumes to scan and tag the bucket's objects */
  readonly malwareProtectionRole?: iam.Role;
  /** the rule that delivers the plan's scan results to the functions with sources.malwareScanResults
   * (when the plan exists and a function takes them) */
  readonly malwareScanRule?: events.Rule;
  /** the S3 Vectors buckets of the orgs' vector indexes (context vectorBuckets of them), when a
   * function uses them (environment.vectorBuckets, permissions.s3vectors); empty otherwise */
  readonly vectorBuckets: readonly s3vectors.CfnVectorBucket[];
  /** their names' common prefix (VECTOR_BUCKET_PREFIX): bucket n is `${prefix}-${n}` */
  readonly vectorBucketPrefix?: string;
  readonly domainEvents: sqs.Queue;
  readonly domainEventsDlq: sqs.Queue;
  readonly mailIdentity: ses.EmailIdentity;
  /** the SES configuration set that publishes bounces and complaints to EventBridge's default
   * bus; exists when a function asks for it (environment.sesConfigurationSet or
   * sources.mailFeedback) */
  readonly mailConfigurationSet?: ses.ConfigurationSet;
  /** its ARN (ses:SendEmail is authorized on the configuration set too) */
  readonly mailConfigurationSetArn?: string;
  readonly alarmTopic?: sns.Topic;
  readonly functions: ReadonlyMap<string, DeployedFunction>;
  /** reserved concurrency by function name (empty when context reservedConcurrency=off) */
  readonly reservedConcurrency: ReadonlyMap<string, number>;
  /** the hosted console (context console=true) */
  readonly console?: ConsoleHosting;
  /** the browser origins the API and the upload bucket allow: context allowedOrigins, and the
   * hosted console's origin */
  readonly allowedOrigins: readonly string[];
  /** APP_URL: context appUrl, else the hosted console's URL */
  readonly appUrl: string;

  constructor(scope: Construct, id: string, props: TenantryStackProps) {
    super(scope, id, props);
    // S3 server access logs are delivered under a bucket policy, not a log-delivery ACL (the log
    // bucket keeps ACLs disabled): set here so the stack does not depend on cdk.json for it.
    this.node.setContext(S3_ACCESS_LOGS_USE_BUCKET_POLICY, true);
    const settings = props.settings;
    this.settings = settings;
    const prod = settings.stage === 'prod';
    /** prod keeps data when the stack or a resource goes away; dev cleans up */
    const dataRemoval = prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const registry = props.functions ?? loadFunctionRegistry();
    const manifest = props.routes ?? loadRouteManifest();
    const tableDef = props.table ?? loadTableDefinition();
    this.tableDefinition = tableDef;

    Tags.of(this).add('project', 'tenantry');
    Tags.of(this).add('stage', settings.stage);

    // ---- the console (an option) --------------------------------------------------------------
    // First, because its origin is one of the API's and the upload bucket's allowed origins.
    if (settings.console !== undefined) {
      this.console = new ConsoleHosting(this, 'Console', {
        settings: settings.console,
        logRetentionDays: settings.logRetentionDays,
        removalPolicy: dataRemoval,
        autoDeleteObjects: !prod,
        placeholderDir: settings.allowPlaceholderCode ? PLACEHOLDER_ASSET_DIR : undefined,
      });
    }
    // API Gateway's own errors carry the first origin only: the console's when it is the front
    // end (no appUrl given), else after the ones given, whose first is the main app.
    const consoleOrigin = this.console?.origin;
    this.allowedOrigins =
      consoleOrigin === undefined || settings.allowedOrigins.includes('*') || settings.allowedOrigins.includes(consoleOrigin)
        ? settings.allowedOrigins
        : settings.appUrl === undefined
          ? [consoleOrigin, ...settings.allowedOrigins]
          : [...settings.allowedOrigins, consoleOrigin];
    const appUrl = settings.appUrl ?? this.console?.url;
    if (appUrl === undefined) throw new Error('no appUrl: give context appUrl, or host the console (context console=true)');
    this.appUrl = appUrl;

    // ---- data ------------------------------------------------------------------------------
    const S = dynamodb.AttributeType.STRING;
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: tableDef.partitionKey, type: S },
      sortKey: { name: tableDef.sortKey, type: S },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: tableDef.timeToLiveAttribute,
      stream: dynamodb.StreamViewType[tableDef.streamViewType],
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: prod,
      removalPolicy: dataRemoval,
    });
    for (const gsi of tableDef.globalSecondaryIndexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: gsi.indexName,
        partitionKey: { name: gsi.partitionKey, type: S },
        sortKey: { name: gsi.sortKey, type: S },
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }

    // The key that signs pagination cursors. Functions get its ARN, never its value, and read
    // it from Secrets Manager at cold start.
    this.cursorSecret = new secretsmanager.Secret(this, 'CursorSecret', {
      description: 'Tenantry: HMAC key that signs pagination cursors',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: dataRemoval,
    });

    // The upload bucket's server access logs: who read, wrote or deleted which object, with which
    // credentials, from where. S3 delivers them itself (a bucket policy for the logging service,
    // so the bucket keeps ACLs disabled). SSE-S3: the only default encryption S3 supports on a
    // log destination. Kept as long as the other logs (logRetentionDays).
    this.accessLogBucket = new s3.Bucket(this, 'AccessLogBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: dataRemoval,
      autoDeleteObjects: !prod,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: Duration.days(settings.logRetentionDays) },
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });

    this.uploadBucket = new s3.Bucket(this, 'UploadBucket', {
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: UPLOAD_ACCESS_LOG_PREFIX,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Off unless context bucketVersioning says otherwise (every stage): the files function
      // assumes an unversioned bucket. Object keys are unique per file, so versions protect no
      // overwrite; processing is ordered by the S3 event's sequencer; and a delete must really
      // delete, or the bytes of a deleted file (and its thumbnail and text) would stay, billed,
      // while the org's storage quota counts them as freed.
      versioned: settings.bucketVersioning,
      // GuardDuty Malware Protection for S3 reads the bucket's object events from EventBridge and
      // switches S3's EventBridge notifications on itself. The stack writes the bucket's whole
      // notification configuration (the upload queue), so it keeps EventBridge on too: otherwise
      // the next update of the notifications would switch it off and stop the scans silently.
      eventBridgeEnabled: settings.malwareProtection ? true : undefined,
      removalPolicy: dataRemoval,
      autoDeleteObjects: !prod,
      // Browsers upload with a presigned POST (an HTML form policy that allows exactly one key,
      // size and content type) and download with presigned GETs, from the app's origins only:
      // the same list as the API's (context allowedOrigins). A form POST sends its own headers
      // (Content-Type: multipart/form-data, …), so any request header is allowed; the policy
      // decides what S3 accepts. ETag is readable (the upload's identity).
      cors: [
        {
          allowedMethods: [s3.HttpMethods.POST, s3.HttpMethods.GET, s3.HttpMethods.HEAD],
          allowedOrigins: [...this.allowedOrigins],
          allowedHeaders: ['*'],
          exposedHeaders: ['ETag'],
          maxAge: 3600,
        },
      ],
      lifecycleRules: [
        // Presigned POSTs are single requests; a multipart upload left half-way (by a function or
        // an operator) holds billed parts that no file counts: gone after a day.
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: UPLOAD_BUCKET_CLEANUP },
        // Downloads serve the checked copy under derived/; the files function deletes the upload
        // once processed (and scanned). One it could not delete is gone after a day.
        { id: 'expire-uploads', prefix: 'uploads/', expiration: UPLOAD_BUCKET_CLEANUP },
        // With versioning switched on, a deleted file's bytes would stay as noncurrent versions:
        // they expire after a day, and the delete markers left without versions go too.
        ...(settings.bucketVersioning
          ? [{ id: 'expire-noncurrent-versions', noncurrentVersionExpiration: UPLOAD_BUCKET_CLEANUP, expiredObjectDeleteMarker: true }]
          : []),
      ],
    });

    // The exports bucket, when a function uses it: each export is one zip, written by the exports
    // function in parts (multipart upload) and downloaded with presigned GETs that the function
    // signs (no CORS: the browser follows the link, it does not fetch it). Private, SSE-S3, TLS
    // only, access-logged like the upload bucket. Unversioned: an export that is withdrawn or
    // erased must be gone. A zip expires after 7 days (a new export is made on request), and a
    // multipart upload given up half-way is aborted after a day.
    if (registry.functions.some((f) => f.environment.exportBucket || f.permissions.exportBucketS3.length > 0)) {
      this.exportBucket = new s3.Bucket(this, 'ExportBucket', {
        serverAccessLogsBucket: this.accessLogBucket,
        serverAccessLogsPrefix: EXPORT_ACCESS_LOG_PREFIX,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        encryption: s3.BucketEncryption.S3_MANAGED,
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned: false,
        removalPolicy: dataRemoval,
        autoDeleteObjects: !prod,
        lifecycleRules: [
          { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: EXPORT_BUCKET_CLEANUP },
          { id: 'expire-exports', expiration: EXPORT_BUCKET_EXPIRATION },
        ],
      });
    }

    // GuardDuty Malware Protection for S3 (context malwareProtection): scans every new object
    // under uploads/ and tags it with the verdict (GuardDutyMalwareScanStatus); each result is
    // published to the default event bus, where the scan-result rule (below, with the functions)
    // hands it to the functions with sources.malwareScanResults.
    if (settings.malwareProtection) {
      const { plan, role } = this.malwareProtection();
      this.malwareProtectionPlan = plan;
      this.malwareProtectionRole = role;
    }

    // The S3 Vectors buckets of the orgs' vector indexes (one index per org, spread over the
    // buckets by the store's rule: shared/store/src/vectors.rs), when a function uses them:
    // context vectorBuckets of them, named after the stack so that policies can name each one.
    // SSE-S3, S3 Vectors' default, stated. prod keeps them with the stack; dev deletes them, which
    // CloudFormation can do only once they are empty (a purged org's index is deleted with it).
    const usesVectors = registry.functions.some((f) => f.environment.vectorBuckets || f.permissions.s3vectors.length > 0);
    if (usesVectors) {
      if (Token.isUnresolved(this.stackName)) throw new Error('the vector buckets are named after the stack: give the stack a literal name');
      const prefix = vectorBucketPrefix(this.stackName);
      this.vectorBucketPrefix = prefix;
      this.vectorBuckets = vectorBucketNames(prefix, settings.vectorBuckets).map((name, n) => {
        const bucket = new s3vectors.CfnVectorBucket(this, `VectorBucket${n}`, {
          vectorBucketName: name,
          encryptionConfiguration: { sseType: 'AES256' },
        });
        bucket.applyRemovalPolicy(dataRemoval);
        return bucket;
      });
    } else {
      this.vectorBuckets = [];
    }

    // Asynchronous domain events (part of the contract now; producers and consumers arrive
    // with their functions). Messages that fail 5 times land in the dead-letter queue.
    this.domainEventsDlq = new sqs.Queue(this, 'DomainEventsDlq', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.domainEvents = new sqs.Queue(this, 'DomainEvents', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(60),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.domainEventsDlq, maxReceiveCount: 5 },
    });

    // ---- mail ------------------------------------------------------------------------------
    const mail = settings.mailIdentity;
    this.mailIdentity = new ses.EmailIdentity(this, 'MailIdentity', {
      identity: mail.kind === 'domain' ? ses.Identity.domain(mail.domain) : ses.Identity.email(mail.address),
    });
    // The configuration set that the functions name when they send (SES_CONFIGURATION_SET): it
    // publishes hard bounces and complaints to EventBridge's default bus (SES supports no other
    // bus), where the mail-feedback rule hands them to the function that suppresses the
    // addresses. TLS is required to the recipient's server (the mail carries signed unsubscribe
    // links and organization content); SES also suppresses bounced and complained addresses
    // itself; reputation metrics (bounce and complaint rates) go to CloudWatch.
    if (registry.functions.some((f) => f.environment.sesConfigurationSet || f.sources.mailFeedback)) {
      const configurationSet = new ses.ConfigurationSet(this, 'MailConfigurationSet', {
        tlsPolicy: ses.ConfigurationSetTlsPolicy.REQUIRE,
        reputationMetrics: true,
        sendingEnabled: true,
        suppressionReasons: ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
      });
      configurationSet.addEventDestination('MailFeedback', {
        destination: ses.EventDestination.eventBus(events.EventBus.fromEventBusName(this, 'DefaultEventBus', 'default')),
        events: [ses.EmailSendingEvent.BOUNCE, ses.EmailSendingEvent.COMPLAINT],
      });
      this.mailConfigurationSet = configurationSet;
      this.mailConfigurationSetArn = this.formatArn({
        service: 'ses',
        resource: 'configuration-set',
        resourceName: configurationSet.configurationSetName,
      });
    }

    // ---- alarms' destination ---------------------------------------------------------------
    let alarmAction: cwActions.SnsAction | undefined;
    if (settings.alarmEmail !== undefined) {
      this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
        displayName: `Tenantry ${settings.stage} alarms`,
        enforceSSL: true,
      });
      this.alarmTopic.addSubscription(new snsSubscriptions.EmailSubscription(settings.alarmEmail));
      alarmAction = new cwActions.SnsAction(this.alarmTopic);
    }
    const alarmWhenAboveZero: AlarmFactory = (alarmId, metric, description) => {
      const alarm = new cloudwatch.Alarm(this, alarmId, {
        metric,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      if (alarmAction !== undefined) alarm.addAlarmAction(alarmAction);
      return alarm;
    };
    alarmWhenAboveZero(
      'DomainEventsDlqDepthAlarm',
      this.domainEventsDlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
      'Tenantry: domain events failed 5 times and wait in the dead-letter queue',
    );

    // ---- functions -------------------------------------------------------------------------
    const routes = routesByFunction(registry, manifest);
    const streamProblems = streamViewProblems(registry, tableDef);
    if (streamProblems.length > 0) throw new Error(streamProblems.join('\n'));
    // The user pool is created before the functions that need its id; the triggers function
    // is attached to it afterwards.
    const featurePlan = settings.cognitoFeaturePlan === 'plus' ? cognito.FeaturePlan.PLUS : cognito.FeaturePlan.ESSENTIALS;
    this.userPool = new cognito.UserPool(this, 'UserPool', {
      selfSignUpEnabled: true,
      // Username = email (no separate user name), matched case-insensitively.
      signInAliases: { email: true },
      signInCaseSensitive: false,
      autoVerify: { email: true },
      keepOriginal: { email: true },
      userVerification: { emailStyle: cognito.VerificationEmailStyle.CODE },
      standardAttributes: {
        email: { required: true, mutable: true },
        fullname: { required: false, mutable: true },
      },
      passwordPolicy: {
        minLength: 12,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: false,
        tempPasswordValidity: Duration.days(3),
      },
      // TOTP only (no SMS). prod: every user enrolls an authenticator (platform operators must use
      // MFA, and Cognito cannot require it for one group only); dev: optional. See infra/README.md.
      mfa: settings.mfa === 'required' ? cognito.Mfa.REQUIRED : cognito.Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      email: this.userPoolEmail(),
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      // Essentials or Plus: V2 pre-token-generation events (claims in access tokens) need it.
      featurePlan,
      standardThreatProtectionMode:
        featurePlan === cognito.FeaturePlan.PLUS ? cognito.StandardThreatProtectionMode.FULL_FUNCTION : undefined,
      deletionProtection: prod,
      removalPolicy: dataRemoval,
    });
    // Cognito checks the SES identity when the pool is configured: create the identity first.
    if (settings.userPoolEmail === 'ses') this.userPool.node.addDependency(this.mailIdentity);

    this.reservedConcurrency = reservedConcurrency(
      registry.functions.map((f) => f.name),
      settings.reservedConcurrency,
    );
    const deployed = new Map<string, DeployedFunction>();
    for (const config of registry.functions) {
      deployed.set(config.name, this.createFunction(config, routes.get(config.name) ?? [], alarmWhenAboveZero));
    }
    this.functions = deployed;

    // sources.cognitoTriggers (the registry gives each trigger at most one function).
    for (const { fn, config } of deployed.values()) {
      for (const trigger of config.sources.cognitoTriggers) {
        if (trigger === 'PreTokenGeneration') {
          this.userPool.addTrigger(TRIGGER_OPERATIONS[trigger], fn, cognito.LambdaVersion.V2_0);
        } else {
          this.userPool.addTrigger(TRIGGER_OPERATIONS[trigger], fn);
        }
      }
    }

    new cognito.UserPoolGroup(this, 'PlatformAdminGroup', {
      userPool: this.userPool,
      groupName: PLATFORM_ADMIN_GROUP,
      description: 'Platform operators: the /admin routes',
      precedence: 0,
    });

    // The single-page app's client: no secret (a browser cannot keep one), SRP sign-in, and
    // users may write only their own email and name. Tenancy and roles live in the table and
    // reach tokens through the pre-token-generation trigger, never through user attributes.
    this.userPoolClient = this.userPool.addClient('WebClient', {
      userPoolClientName: 'tenantry-web',
      generateSecret: false,
      authFlows: { userSrp: true },
      disableOAuth: true,
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
      // A sign-in's session lasts long enough to enrol an authenticator app (MFA_SETUP).
      authSessionValidity: Duration.minutes(10),
      accessTokenValidity: Duration.hours(1),
      idTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.days(30),
      readAttributes: new cognito.ClientAttributes().withStandardAttributes({
        email: true,
        emailVerified: true,
        fullname: true,
      }),
      writeAttributes: new cognito.ClientAttributes().withStandardAttributes({ email: true, fullname: true }),
    });

    for (const { fn, config } of deployed.values()) {
      if (config.environment.userPoolId) fn.addEnvironment('USER_POOL_ID', this.userPool.userPoolId);
    }

    // ---- API -------------------------------------------------------------------------------
    this.apiAccessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: settings.logRetentionDays as logs.RetentionDays,
      removalPolicy: dataRemoval,
    });
    const F = apigw.AccessLogField;
    const accessLogFormat = apigw.AccessLogFormat.custom(
      JSON.stringify({
        requestId: F.contextRequestId(),
        extendedRequestId: F.contextExtendedRequestId(),
        ip: F.contextIdentitySourceIp(),
        userAgent: F.contextIdentityUserAgent(),
        requestTime: F.contextRequestTime(),
        httpMethod: F.contextHttpMethod(),
        resourcePath: F.contextResourcePath(),
        path: F.contextPath(),
        protocol: F.contextProtocol(),
        status: F.contextStatus(),
        responseLength: F.contextResponseLength(),
        responseLatency: F.contextResponseLatency(),
        integrationStatus: F.contextIntegrationStatus(),
        integrationLatency: F.contextIntegrationLatency(),
        errorMessage: F.contextErrorMessage(),
        authorizerError: F.contextAuthorizerError(),
        user: F.contextAuthorizerClaims('sub'),
      }),
    );
    this.api = new apigw.RestApi(this, 'Api', {
      restApiName: `tenantry-${settings.stage}`,
      description: `Tenantry ${settings.stage} API`,
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      // Access and execution logging need the account-wide API Gateway CloudWatch role.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: settings.stage,
        throttlingRateLimit: settings.throttleRateLimit,
        throttlingBurstLimit: settings.throttleBurstLimit,
        accessLogDestination: new apigw.LogGroupLogDestination(this.apiAccessLogs),
        accessLogFormat,
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: true,
        tracingEnabled: settings.tracing,
      },
      // No defaultCorsPreflightOptions: that puts an OPTIONS method on every resource, path
      // prefixes without routes included, each allowing every method. The preflights below sit
      // only on the paths that have routes and allow exactly their methods.
    });
    // Errors that API Gateway answers itself (401 from the authorizer, 403 for an unknown path
    // or method, 429 from throttling, 5xx from an integration failure) carry the CORS headers
    // too, so the browser shows the status instead of a CORS error. A gateway response header
    // is a static value or a copy of a request value; copying the request's Origin
    // (method.request.header.Origin) would answer every origin, unchecked, so with several
    // origins these answers carry the FIRST configured origin (the main app) only; browsers on
    // the other origins then see a CORS error on these errors, but never on the functions' own
    // responses, which check the Origin against ALLOWED_ORIGINS.
    for (const [gwId, type] of [
      ['Default4xx', apigw.ResponseType.DEFAULT_4XX],
      ['Default5xx', apigw.ResponseType.DEFAULT_5XX],
    ] as const) {
      this.api.addGatewayResponse(gwId, {
        type,
        responseHeaders: {
          'Access-Control-Allow-Origin': `'${this.allowedOrigins[0]}'`,
          'Access-Control-Expose-Headers': `'${CORS_EXPOSE_HEADERS.join(', ')}'`,
        },
      });
    }

    const authorizer = new apigw.CognitoUserPoolsAuthorizer(this, 'Authorizer', {
      authorizerName: 'cognito',
      cognitoUserPools: [this.userPool],
      identitySource: 'method.request.header.Authorization',
    });
    // Path parameters are required and checked by API Gateway. Bodies: no JSON models here;
    // the functions validate and size-check (64 KiB, 413) every body themselves.
    const validator = new apigw.RequestValidator(this, 'RequestValidator', {
      restApi: this.api,
      requestValidatorName: 'parameters-and-body',
      validateRequestParameters: true,
      validateRequestBody: true,
    });

    const health = this.api.root.addResource('health');
    health.addMethod(
      'GET',
      new apigw.MockIntegration({
        passthroughBehavior: apigw.PassthroughBehavior.NEVER,
        requestTemplates: { 'application/json': '{"statusCode": 200}' },
        integrationResponses: [{ statusCode: '200', responseTemplates: { 'application/json': '{"status":"ok"}' } }],
      }),
      {
        authorizationType: apigw.AuthorizationType.NONE,
        operationName: 'health',
        methodResponses: [{ statusCode: '200' }],
      },
    );

    // Lambda proxy integrations without CDK's per-method invoke permission (LambdaIntegration
    // adds one AWS::Lambda::Permission per method); each HTTP function gets ONE permission below.
    const integrations = new Map<string, apigw.AwsIntegration>();
    const methodsByPath = new Map<string, string[]>();
    const publicMethods: apigw.Method[] = [];
    for (const route of manifest.routes) {
      if (route.path === '/health' || route.path.startsWith('/health/')) {
        throw new Error(`infra/routes.json: ${route.method} ${route.path}: /health is the stack's own unauthenticated route`);
      }
      let integration = integrations.get(route.function);
      if (integration === undefined) {
        const { fn, config } = deployed.get(route.function)!;
        integration = config.sources.streaming
          ? // Response streaming: API Gateway calls Lambda's InvokeWithResponseStream (authorized as
            // lambda:InvokeFunction, like Invoke: the one permission below covers it) and passes the
            // bytes on as they come, for up to the function's timeout (REST allows a streamed
            // answer 15 minutes instead of 29 s; idle for 5 minutes at most).
            new apigw.AwsIntegration({
              proxy: true,
              service: 'lambda',
              path: `2021-11-15/functions/${fn.functionArn}/response-streaming-invocations`,
              options: {
                responseTransferMode: apigw.ResponseTransferMode.STREAM,
                timeout: Duration.seconds(Math.min(config.timeoutSeconds, STREAMING_MAX_TIMEOUT_SECONDS)),
              },
            })
          : new apigw.AwsIntegration({
              proxy: true,
              service: 'lambda',
              path: `2015-03-31/functions/${fn.functionArn}/invocations`,
            });
        integrations.set(route.function, integration);
      }
      const requestParameters: Record<string, boolean> = {};
      for (const m of route.path.matchAll(/\{([^}+]+)\+?\}/g)) requestParameters[`method.request.path.${m[1]}`] = true;
      // A public route (an RFC 8058 one-click unsubscribe link, say) has no authorizer: the
      // function checks the credential the request carries itself, and gets no claims.
      const method = this.api.root.resourceForPath(route.path).addMethod(route.method, integration, {
        ...(route.public === true
          ? { authorizationType: apigw.AuthorizationType.NONE }
          : { authorizer, authorizationType: apigw.AuthorizationType.COGNITO }),
        requestValidator: validator,
        requestParameters,
        operationName: route.operationId,
      });
      if (route.public === true) publicMethods.push(method);
      methodsByPath.set(route.path, [...(methodsByPath.get(route.path) ?? []), route.method]);
    }
    this.publicMethods = publicMethods;

    // API_URL: the deployed stage's base URL, built from the API's id and the stage name rather
    // than from api.url, which refers to the stage resource: the stage depends on the deployment,
    // the deployment on the methods, and the methods on the functions' ARNs, so a function that
    // referred to it would close a cycle. The REST API resource itself depends on no function.
    const apiUrl = `https://${this.api.restApiId}.execute-api.${this.region}.${this.urlSuffix}/${settings.stage}`;
    for (const { fn, config } of deployed.values()) {
      if (config.environment.apiUrl) fn.addEnvironment('API_URL', apiUrl);
    }

    // One invoke permission per HTTP function, for the narrowest source ARN that still covers all
    // of its routes on this API's stage (see executeApiScope in lib/functions.ts).
    for (const { fn, routes: fnRoutes } of deployed.values()) {
      if (fnRoutes.length === 0) continue;
      const scope = executeApiScope(fnRoutes);
      fn.addPermission('ApiInvoke', {
        principal: new iam.ServicePrincipal('apigateway.amazonaws.com'),
        action: 'lambda:InvokeFunction',
        sourceArn: this.api.arnForExecuteApi(scope.method, scope.path, this.api.deploymentStage.stageName),
      });
    }

    // CORS preflights, answered by API Gateway (mock integration, no authorizer): on each path
    // that has routes, for that path's methods. With several origins CDK answers with the first
    // origin and a mapping template that echoes the request's Origin when it is one of the
    // others (plus Vary: Origin); an unlisted origin gets the first one, which its browser refuses.
    for (const [routePath, methods] of methodsByPath) {
      this.api.root.resourceForPath(routePath).addCorsPreflight({
        allowOrigins: [...this.allowedOrigins],
        allowMethods: [...new Set(methods)].sort(),
        allowHeaders: [...CORS_ALLOW_HEADERS],
        allowCredentials: false,
        maxAge: CORS_MAX_AGE,
      });
    }

    alarmWhenAboveZero(
      'Api5xxAlarm',
      this.api.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }),
      'Tenantry: the API answered 5xx',
    );

    // ---- event sources: exactly what each function's sources in functions.json ask for ------------
    // The malware scan results of the upload bucket, on the default bus (GuardDuty publishes there
    // only), when the protection plan exists and a function takes them: one rule, each such
    // function one of its targets (wireEventSources).
    if (this.malwareProtectionPlan !== undefined && registry.functions.some((f) => f.sources.malwareScanResults)) {
      this.malwareScanRule = new events.Rule(this, 'MalwareScanRule', {
        description: 'Tenantry: GuardDuty malware scan results of the upload bucket (aws.guardduty on the default bus)',
        eventPattern: {
          source: [MALWARE_SCAN_SOURCE],
          detailType: [MALWARE_SCAN_DETAIL_TYPE],
          detail: { s3ObjectDetails: { bucketName: [this.uploadBucket.bucketName] } },
        },
      });
    }
    for (const f of deployed.values()) this.wireEventSources(f, alarmWhenAboveZero);
    this.wireFanOut(deployed);
    // The bucket's notification configuration (the upload queue, EventBridge on) is written before
    // GuardDuty validates the bucket and manages its own rule on it.
    const notifications = this.uploadBucket.node.tryFindChild('Notifications');
    if (this.malwareProtectionPlan !== undefined && notifications !== undefined) this.malwareProtectionPlan.node.addDependency(notifications);

    // The console's files and config.json; it connects to the API, the user pool and the upload
    // bucket (presigned POSTs and GETs, at the host the files function signs for:
    // <bucket>.s3.<region>.amazonaws.com), nothing else. On CloudFront's generated domain the
    // upload bucket's CORS names the distribution, so the distribution's CSP cannot name the
    // bucket (a dependency cycle): it allows the region's S3 buckets instead. A console domain of
    // your own is known before either exists, and its CSP names the one bucket.
    if (this.console !== undefined) {
      const uploadOrigin = `https://${settings.console?.domain !== undefined ? this.uploadBucket.bucketName : '*'}.s3.${this.region}.${this.urlSuffix}`;
      this.console.deploy(
        { apiUrl, region: this.region, userPoolId: this.userPool.userPoolId, userPoolClientId: this.userPoolClient.userPoolClientId },
        [
          `https://${this.api.restApiId}.execute-api.${this.region}.${this.urlSuffix}`,
          `https://cognito-idp.${this.region}.${this.urlSuffix}`,
          uploadOrigin,
        ],
        [uploadOrigin],
      );
    }

    // ---- outputs ---------------------------------------------------------------------------
    new CfnOutput(this, 'ApiUrl', { value: this.api.url });
    new CfnOutput(this, 'UserPoolId', { value: this.userPool.userPoolId });
    new CfnOutput(this, 'UserPoolClientId', { value: this.userPoolClient.userPoolClientId });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    if (this.console !== undefined) {
      new CfnOutput(this, 'ConsoleUrl', { value: this.console.url });
      // With a domain of your own: the CNAME (or alias) record to point at the distribution.
      new CfnOutput(this, 'ConsoleDistributionDomain', { value: this.console.distribution.distributionDomainName });
    }
    new CfnOutput(this, 'UploadBucketName', { value: this.uploadBucket.bucketName });
    if (this.exportBucket !== undefined) new CfnOutput(this, 'ExportBucketName', { value: this.exportBucket.bucketName });
    new CfnOutput(this, 'DomainEventsQueueUrl', { value: this.domainEvents.queueUrl });
    if (this.vectorBucketPrefix !== undefined) new CfnOutput(this, 'VectorBucketPrefix', { value: this.vectorBucketPrefix });
    new CfnOutput(this, 'CursorSecretArn', { value: this.cursorSecret.secretArn });
    new CfnOutput(this, 'MailIdentityName', { value: this.mailIdentity.emailIdentityName });
    if (mail.kind === 'domain') {
      // The three DKIM CNAME records to publish in the domain's DNS.
      const tokens = [
        [this.mailIdentity.dkimDnsTokenName1, this.mailIdentity.dkimDnsTokenValue1],
        [this.mailIdentity.dkimDnsTokenName2, this.mailIdentity.dkimDnsTokenValue2],
        [this.mailIdentity.dkimDnsTokenName3, this.mailIdentity.dkimDnsTokenValue3],
      ];
      tokens.forEach(([n, v], i) => new CfnOutput(this, `DkimRecord${i + 1}`, { value: `${n} CNAME ${v}` }));
    }

    applyNagSuppressions(this);
    applyCheckovSkips(this);
  }

  /** The user pool's mail: through SES from the stack's identity (prod), or Cognito's default
   * sender (dev; about 50 mails a day). */
  private userPoolEmail(): cognito.UserPoolEmail {
    const settings = this.settings;
    if (settings.userPoolEmail === 'cognito') {
      if (settings.stage === 'prod') {
        Annotations.of(this).addWarningV2(
          'tenantry:user-pool-default-sender',
          "prod: the user pool sends with Cognito's default sender (about 50 mails a day) because of context " +
            'userPoolEmail=cognito. Only for the first deploy, until the SES identity is verified: deploy again without it.',
        );
      }
      return cognito.UserPoolEmail.withCognito();
    }
    const mail = settings.mailIdentity;
    return cognito.UserPoolEmail.withSES({
      fromEmail: settings.sesFromAddress,
      fromName: settings.mailFromName,
      // The identity the SourceArn names: the domain for a domain identity, else the address.
      sesVerifiedDomain: mail.kind === 'domain' ? mail.domain : undefined,
      // The stack is environment-agnostic: SES in the stack's own region.
      sesRegion: Stack.of(this).region,
    });
  }

  /** The value of a context key that the stack itself reads as a setting, as the stack acts on it
   * (checked, default applied), for environment.fromContext; undefined for any other key. So
   * MALWARE_PROTECTION is "true" exactly when the protection plan exists and "false" otherwise,
   * whatever spelling the context used (`-c malwareProtection=1`, `yes`, or nothing at all). */
  private settingFromContext(contextKey: string): string | undefined {
    switch (contextKey) {
      case 'malwareProtection':
        return this.malwareProtectionPlan !== undefined ? 'true' : 'false';
      default:
        return undefined;
    }
  }

  /**
   * GuardDuty Malware Protection for S3 on the upload bucket's uploads/: the plan (tagging each
   * scanned object with its verdict) and the role GuardDuty assumes, holding the permissions AWS
   * documents for it
   * (https://docs.aws.amazon.com/guardduty/latest/ug/malware-protection-s3-iam-policy-prerequisite.html),
   * on this bucket only. The documented KMS statement is left out: the bucket is encrypted with
   * SSE-S3, which needs no key permission.
   */
  private malwareProtection(): { plan: guardduty.CfnMalwareProtectionPlan; role: iam.Role } {
    const bucket = this.uploadBucket;
    const principal = 'malware-protection-plan.guardduty.amazonaws.com';
    const role = new iam.Role(this, 'MalwareProtectionRole', {
      assumedBy: new iam.ServicePrincipal(principal),
      description: "Tenantry: GuardDuty Malware Protection for S3 scans and tags the upload bucket's new objects, nothing else",
    });
    // The EventBridge managed rule through which GuardDuty receives the bucket's object events.
    const managedRule = this.formatArn({
      service: 'events',
      resource: 'rule',
      resourceName: 'DO-NOT-DELETE-AmazonGuardDutyMalwareProtectionS3*',
    });
    const statements: iam.PolicyStatementProps[] = [
      {
        sid: 'AllowManagedRuleToSendS3EventsToGuardDuty',
        actions: ['events:PutRule', 'events:DeleteRule', 'events:PutTargets', 'events:RemoveTargets'],
        resources: [managedRule],
        conditions: { StringLike: { 'events:ManagedBy': principal } },
      },
      {
        sid: 'AllowGuardDutyToMonitorEventBridgeManagedRule',
        actions: ['events:DescribeRule', 'events:ListTargetsByRule'],
        resources: [managedRule],
      },
      {
        sid: 'AllowPostScanTag',
        actions: ['s3:PutObjectTagging', 's3:GetObjectTagging', 's3:PutObjectVersionTagging', 's3:GetObjectVersionTagging'],
        resources: [bucket.arnForObjects('*')],
      },
      {
        sid: 'AllowEnableS3EventBridgeEvents',
        actions: ['s3:PutBucketNotification', 's3:GetBucketNotification'],
        resources: [bucket.bucketArn],
      },
      {
        sid: 'AllowPutValidationObject',
        actions: ['s3:PutObject'],
        resources: [bucket.arnForObjects('malware-protection-resource-validation-object')],
      },
      { sid: 'AllowCheckBucketOwnership', actions: ['s3:ListBucket'], resources: [bucket.bucketArn] },
      { sid: 'AllowMalwareScan', actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: [bucket.arnForObjects('*')] },
    ];
    for (const st of statements) role.addToPolicy(new iam.PolicyStatement(st));
    const plan = new guardduty.CfnMalwareProtectionPlan(this, 'MalwareProtectionPlan', {
      role: role.roleArn,
      protectedResource: { s3Bucket: { bucketName: bucket.bucketName, objectPrefixes: [...MALWARE_SCAN_PREFIXES] } },
      actions: { tagging: { status: 'ENABLED' } },
    });
    // GuardDuty checks the role's permissions when the plan is created: the role's policy first.
    plan.node.addDependency(role);
    return { plan, role };
  }

  private createFunction(config: FunctionDefinition, routes: readonly RouteDefinition[], alarmWhenAboveZero: AlarmFactory): DeployedFunction {
    const settings = this.settings;
    const prod = settings.stage === 'prod';
    const name = config.name;
    const id = pascal(name);

    const logGroup = new logs.LogGroup(this, `${id}Logs`, {
      retention: settings.logRetentionDays as logs.RetentionDays,
      removalPolicy: prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });

    // Its own role, with exactly the actions of its config.
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Tenantry ${name}: the actions infra/functions.json lists for it and its event sources need, nothing else`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'Logs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    const p = config.permissions;
    const tableActions = iamDynamoDbActions(p.dynamodb);
    if (tableActions.length > 0) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'Table',
          actions: tableActions,
          resources: [this.table.tableArn],
        }),
      );
      // Query (only) on the indexes table.json declares, each by name: no index/* wildcard, so
      // an index created outside table.json is out of reach.
      const indexes = this.tableDefinition.globalSecondaryIndexes;
      if (p.dynamodb.includes('Query') && indexes.length > 0) {
        role.addToPolicy(
          new iam.PolicyStatement({
            sid: 'TableIndexes',
            actions: ['dynamodb:Query'],
            resources: indexes.map((gsi) => `${this.table.tableArn}/index/${gsi.indexName}`),
          }),
        );
      }
    }
    if (p.readCursorSecret) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'CursorSecret',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [this.cursorSecret.secretArn],
        }),
      );
    }
    if (p.sesSendEmail) {
      // SES authorizes a SendEmail on the sending identity and, when the mail names one, on the
      // configuration set too.
      const configurationSetArn = config.environment.sesConfigurationSet ? this.mailConfigurationSetArn : undefined;
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'SendMail',
          actions: ['ses:SendEmail'],
          resources: [this.mailIdentity.emailIdentityArn, ...(configurationSetArn !== undefined ? [configurationSetArn] : [])],
        }),
      );
    }

    // The upload bucket: exactly the actions of permissions.s3, nothing implied by an S3 source.
    // Object actions on the objects under uploads/ and derived/ (keys are chosen per org and file,
    // so the statement names the prefixes, not objects); s3:ListBucket on the bucket, for keys
    // under those prefixes only.
    const { objectActions, bucketActions } = s3ActionsByResource(p.s3);
    if (objectActions.length > 0) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'UploadBucketObjects',
          actions: objectActions,
          resources: UPLOAD_BUCKET_PREFIXES.map((prefix) => this.uploadBucket.arnForObjects(`${prefix}*`)),
        }),
      );
    }
    if (bucketActions.length > 0) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'UploadBucketList',
          actions: bucketActions,
          resources: [this.uploadBucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': UPLOAD_BUCKET_PREFIXES.map((prefix) => `${prefix}*`) } },
        }),
      );
    }

    // The exports bucket: exactly the actions of permissions.exportBucketS3. Object actions on its
    // objects (it holds exports only, keyed per org and user by the store);
    // s3:ListBucketMultipartUploads on the bucket itself.
    const exportActions = exportBucketActionsByResource(p.exportBucketS3);
    if (exportActions.objectActions.length > 0) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ExportBucketObjects',
          actions: exportActions.objectActions,
          resources: [this.exportBucket!.arnForObjects('*')],
        }),
      );
    }
    if (exportActions.bucketActions.length > 0) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ExportBucketUploads',
          actions: exportActions.bucketActions,
          resources: [this.exportBucket!.bucketArn],
        }),
      );
    }
    // Cognito: exactly the actions of permissions.cognito, on the stack's user pool only.
    if (p.cognito.length > 0) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'UserPool',
          actions: [...p.cognito],
          resources: [this.userPool.userPoolArn],
        }),
      );
    }

    // The vector buckets: exactly the actions of permissions.s3vectors, on the deployment's buckets
    // and the indexes in them (one per org, named by the store when the org first needs it: so
    // index/* under each bucket, and no other bucket).
    if (p.s3vectors.length > 0) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'VectorIndexes',
          actions: [...p.s3vectors],
          resources: this.vectorBuckets.flatMap((b) => {
            const arn = this.vectorBucketArn(b);
            return [arn, `${arn}/index/*`];
          }),
        }),
      );
    }
    // Bedrock: exactly the actions of permissions.bedrock, on the models of bedrockModels. A
    // cross-region inference profile is authorized on the profile (this region and account) and on
    // its foundation model in whichever region serves the request, so that model is named in every
    // region; a plain model id only in this region.
    if (p.bedrock.length > 0) {
      const { inferenceProfiles, regionalModels, profileModels } = bedrockResources(p.bedrockModels);
      const model = (id: string, region: string) => this.formatArn({ service: 'bedrock', region, account: '', resource: 'foundation-model', resourceName: id });
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'BedrockModels',
          actions: [...p.bedrock],
          resources: [
            ...inferenceProfiles.map((id) => this.formatArn({ service: 'bedrock', resource: 'inference-profile', resourceName: id })),
            ...regionalModels.map((id) => model(id, this.region)),
            ...profileModels.map((id) => model(id, '*')),
          ],
        }),
      );
    }

    const environment: Record<string, string> = {
      TABLE_NAME: this.table.tableName,
      CURSOR_SECRET_ARN: this.cursorSecret.secretArn,
      APP_URL: this.appUrl,
      RUST_LOG: LOG_LEVEL,
    };
    if (config.environment.sesFromAddress) environment.SES_FROM_ADDRESS = settings.sesFromAddress;
    if (config.environment.sesConfigurationSet) environment.SES_CONFIGURATION_SET = this.mailConfigurationSet!.configurationSetName;
    if (config.environment.uploadBucket) environment.UPLOAD_BUCKET = this.uploadBucket.bucketName;
    if (config.environment.exportBucket) environment.EXPORT_BUCKET = this.exportBucket!.bucketName;
    if (config.environment.vectorBuckets) {
      environment.VECTOR_BUCKET_PREFIX = this.vectorBucketPrefix!;
      environment.VECTOR_BUCKETS = String(this.vectorBuckets.length);
    }
    // The Lambda responses carry the CORS headers themselves, for these origins ('*' or a list).
    if (config.sources.http) environment.ALLOWED_ORIGINS = this.allowedOrigins.join(',');
    // The registry refuses names that look like secrets or that the stack sets itself. A context
    // key that the stack reads as a setting gives the value the stack acts on, default included
    // (settingFromContext); any other is passed through when given.
    for (const [envName, contextKey] of Object.entries(config.environment.fromContext)) {
      const setting = this.settingFromContext(contextKey);
      if (setting !== undefined) {
        environment[envName] = setting;
        continue;
      }
      const value = this.node.tryGetContext(contextKey);
      if (value === undefined || value === null || value === '') continue;
      environment[envName] = Array.isArray(value) ? value.join(',') : String(value);
    }

    const { code, placeholder } = this.lambdaCode(name);
    const fn = new lambda.Function(this, id, {
      description: config.description,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code,
      memorySize: config.memoryMb,
      timeout: Duration.seconds(config.timeoutSeconds),
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: settings.tracing ? lambda.Tracing.ACTIVE : undefined,
      // Its ceiling (and guarantee) of the account's concurrency: lib/functions.ts.
      reservedConcurrentExecutions: this.reservedConcurrency.get(name),
      environment,
    });

    // The buckets exist before a function that uses them does.
    if (config.environment.vectorBuckets || p.s3vectors.length > 0) fn.node.addDependency(...this.vectorBuckets);

    alarmWhenAboveZero(`${id}ErrorsAlarm`, fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }), `Tenantry ${name}: invocation errors`);
    alarmWhenAboveZero(`${id}ThrottlesAlarm`, fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }), `Tenantry ${name}: throttled invocations`);

    return { name, config, fn, role, usesPlaceholderCode: placeholder, routes, queues: new Map() };
  }

  /** sources.s3, sources.schedules, sources.mailFeedback, sources.malwareScanResults, sources.queues
   * and sources.dynamodbStream of one function. */
  private wireEventSources(f: DeployedFunction, alarmWhenAboveZero: AlarmFactory): void {
    const { name, config, fn, role } = f;
    const id = pascal(name);
    const src = config.sources;
    const failureQueue = (queueId: string) =>
      new sqs.Queue(this, queueId, {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: DLQ_RETENTION,
      });
    const depthAlarm = (alarmId: string, queue: sqs.Queue, description: string) =>
      alarmWhenAboveZero(
        alarmId,
        queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
        description,
      );
    /** An SQS queue the function consumes (sources.queues, and the S3 source's queue): encrypted,
     * TLS only, a dead-letter queue after maxReceiveCount receives (alarmed), and an event source
     * mapping that reports partial batch failures. */
    const consumedQueue = (q: QueueSource, what: string): QueueResources => {
      const qid = `${id}${pascal(q.id)}`;
      const deadLetterQueue = failureQueue(`${qid}Dlq`);
      const queue = new sqs.Queue(this, `${qid}Queue`, {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        // At least 6x the function timeout (AWS guidance for SQS event sources: while Lambda
        // retries a throttled or failed batch, the messages must stay invisible to other
        // pollers), or the registry's value when that is larger.
        visibilityTimeout: Duration.seconds(queueVisibilityTimeoutSeconds(config.timeoutSeconds, q.visibilityTimeoutSeconds)),
        retentionPeriod: Duration.days(4),
        deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: q.maxReceiveCount },
      });
      fn.addEventSource(new lambdaEventSources.SqsEventSource(queue, { batchSize: q.batchSize, reportBatchItemFailures: true }));
      depthAlarm(`${qid}DlqAlarm`, deadLetterQueue, `Tenantry ${name}: ${what} failed ${q.maxReceiveCount} times`);
      return { queue, deadLetterQueue };
    };
    /** The function as a target of an EventBridge rule, with bounded retries and a dead-letter
     * queue of its own (alarmed). CDK's Lambda target adds the invoke permission for this rule's ARN
     * only, and lets this rule only write to the dead-letter queue (queue policy, aws:SourceArn). */
    const ruleTarget = (rule: events.Rule, dlqId: string, retryAttempts: number, maxEventAge: Duration, what: string): sqs.Queue => {
      const deadLetterQueue = failureQueue(`${id}${dlqId}`);
      rule.addTarget(new eventsTargets.LambdaFunction(fn, { deadLetterQueue, retryAttempts, maxEventAge }));
      depthAlarm(`${id}${dlqId}Alarm`, deadLetterQueue, `Tenantry ${name}: ${what} EventBridge could not deliver`);
      return deadLetterQueue;
    };
    const scanRule = src.malwareScanResults ? this.malwareScanRule : undefined;

    // Schedules and the EventBridge rules (mail feedback, malware scan results) invoke the function
    // asynchronously: Lambda retries a failed invocation itself, then drops it. One queue per
    // function keeps what failed: Lambda's on-failure destination, and also the schedules'
    // dead-letter queue (events Scheduler could not deliver at all). S3 events arrive through a
    // queue (a mapping, not an asynchronous invocation): its dead-letter queue keeps them.
    if (src.schedules.length > 0 || src.mailFeedback || scanRule !== undefined) {
      const asyncFailures = failureQueue(`${id}AsyncFailures`);
      fn.configureAsyncInvoke({
        retryAttempts: ASYNC_RETRY_ATTEMPTS,
        onFailure: new lambdaDestinations.SqsDestination(asyncFailures),
      });
      depthAlarm(
        `${id}AsyncFailuresAlarm`,
        asyncFailures,
        `Tenantry ${name}: asynchronous invocations (schedules, mail feedback, malware scan results) failed every retry`,
      );
      f.asyncFailures = asyncFailures;
    }

    // ---- S3: the upload bucket's object events, through an SQS queue ----
    // The bucket notifies the queue (filtered on the prefix), the function consumes it in batches
    // and reports the messages it failed; they come back after the visibility timeout and, after
    // maxReceiveCount receives, wait in the dead-letter queue for a redrive.
    if (src.s3 !== null) {
      const { events: s3Events, prefix, queue: q } = src.s3;
      const uploadQueue = consumedQueue(q, `upload events (queue ${q.id})`);
      const destination = new UploadQueueDestination(uploadQueue.queue, this.uploadBucket, Stack.of(this).account);
      for (const event of s3Events) {
        this.uploadBucket.addEventNotification(event as s3.EventType, destination, ...(prefix !== null ? [{ prefix }] : []));
      }
      f.uploadQueue = uploadQueue;
    }

    // ---- EventBridge Scheduler ----
    if (src.schedules.length > 0) {
      const stack = Stack.of(this);
      // One role per function, assumable by the scheduler for this account's default schedule
      // group only, allowed to invoke this function (and to write to its dead-letter queue).
      const schedulerRole = new iam.Role(this, `${id}SchedulerRole`, {
        assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
          conditions: {
            StringEquals: {
              'aws:SourceAccount': stack.account,
              'aws:SourceArn': stack.formatArn({ service: 'scheduler', resource: 'schedule-group', resourceName: 'default' }),
            },
          },
        }),
        description: `Tenantry ${name}: EventBridge Scheduler invokes the function, nothing else`,
      });
      schedulerRole.addToPolicy(
        new iam.PolicyStatement({ sid: 'Invoke', actions: ['lambda:InvokeFunction'], resources: [fn.functionArn] }),
      );
      f.schedulerRole = schedulerRole;
      for (const schedule of src.schedules) {
        new scheduler.Schedule(this, `${id}${pascal(schedule.id)}Schedule`, {
          description: `Tenantry ${name}: ${schedule.description}`,
          // rate() or cron(), checked by the registry reader; cron() in UTC.
          schedule: scheduler.ScheduleExpression.expression(schedule.expression),
          timeWindow: scheduler.TimeWindow.off(),
          target: new InvokeUnqualifiedFunction(fn, {
            role: schedulerRole,
            deadLetterQueue: f.asyncFailures,
            retryAttempts: SCHEDULE_RETRY_ATTEMPTS,
            maxEventAge: SCHEDULE_MAX_EVENT_AGE,
            input: scheduler.ScheduleTargetInput.fromObject(scheduleEvent(stack, name, schedule.id)),
          }),
        });
      }
    }

    // ---- SES bounces and complaints, through EventBridge ----
    if (src.mailFeedback) {
      // The configuration set's event destination publishes them to the default bus. The rule
      // matches every SES bounce and complaint event of the account and region on that bus, also
      // those of another configuration set (another stage in the same account, say): it does not
      // filter on the event's `resources`, whose shape for SES events is not verified here. The
      // function reads the recipients from the detail and ignores other event types.
      const rule = new events.Rule(this, `${id}MailFeedbackRule`, {
        description: `Tenantry ${name}: SES bounces and complaints (aws.ses on the default bus)`,
        eventPattern: { source: ['aws.ses'], detailType: [...MAIL_FEEDBACK_DETAIL_TYPES] },
      });
      f.mailFeedbackRule = rule;
      f.mailFeedbackFailures = ruleTarget(rule, 'MailFeedbackDlq', MAIL_FEEDBACK_RETRY_ATTEMPTS, MAIL_FEEDBACK_MAX_EVENT_AGE, 'SES bounces or complaints');
    }

    // ---- GuardDuty malware scan results, through EventBridge (context malwareProtection) ----
    if (scanRule !== undefined) {
      f.malwareScanFailures = ruleTarget(
        scanRule,
        'MalwareScanDlq',
        MALWARE_SCAN_RETRY_ATTEMPTS,
        MALWARE_SCAN_MAX_EVENT_AGE,
        'malware scan results of the upload bucket',
      );
    }

    // ---- domain events, through the function's own queue (the fan-out fills it) ----
    if (src.domainEvents !== null) {
      const q = src.domainEvents.queue;
      f.eventQueue = consumedQueue(q, `domain events (${src.domainEvents.kinds.join(', ')}; queue ${q.id})`);
    }

    // ---- SQS queues the function consumes ----
    for (const q of src.queues) {
      const resources = consumedQueue(q, `messages of queue ${q.id}`);
      fn.addEnvironment(queueUrlEnvName(q.id), resources.queue.queueUrl);
      f.queues.set(q.id, resources);
    }
    // A job that hands over to its next pass sends to its own queues (permissions.sendToOwnQueues),
    // to no other (sqs:SendMessage also authorizes SendMessageBatch).
    if (config.permissions.sendToOwnQueues && f.queues.size > 0) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'OwnQueues',
          actions: ['sqs:SendMessage'],
          resources: [...f.queues.values()].map((q) => q.queue.queueArn),
        }),
      );
    }

    // ---- the table's stream ----
    const stream = src.dynamodbStream;
    if (stream !== null) {
      const streamArn = this.table.tableStreamArn;
      if (streamArn === undefined) throw new Error(`function ${name}: sources.dynamodbStream needs the table's stream (table.json streamViewType)`);
      // What Lambda's poller needs, on this table's stream only (CDK's grantStreamRead would also
      // grant dynamodb:ListStreams on *).
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'TableStream',
          actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
          resources: [streamArn],
        }),
      );
      const streamFailures = failureQueue(`${id}StreamFailures`);
      fn.addEventSourceMapping('TableStream', {
        eventSourceArn: streamArn,
        startingPosition: lambda.StartingPosition.LATEST,
        batchSize: stream.batchSize,
        bisectBatchOnError: stream.bisectBatchOnError,
        retryAttempts: stream.maximumRetryAttempts,
        reportBatchItemFailures: true,
        onFailure: new lambdaEventSources.SqsDlq(streamFailures),
        filters: stream.filters.map((pattern) => ({ pattern: JSON.stringify(pattern) })),
      });
      depthAlarm(`${id}StreamFailuresAlarm`, streamFailures, `Tenantry ${name}: table stream batches failed every retry`);
      f.streamFailures = streamFailures;
    }
  }

  /** The domain events' fan-out (sources.fanOut): the function that reads them from the table's
   * stream is told every subscriber's queue and kinds (EVENT_QUEUES) and may send to those queues
   * (sqs:SendMessage, which also authorizes SendMessageBatch), and to no other. */
  private wireFanOut(functions: ReadonlyMap<string, DeployedFunction>): void {
    const subscribers = [...functions.values()].filter((f) => f.eventQueue !== undefined);
    for (const f of functions.values()) {
      if (!f.config.sources.fanOut) continue;
      const queues = subscribers.map((s) => ({ kinds: [...s.config.sources.domainEvents!.kinds], queueUrl: s.eventQueue!.queue.queueUrl }));
      f.fn.addEnvironment('EVENT_QUEUES', Stack.of(this).toJsonString(queues));
      if (subscribers.length === 0) continue;
      f.role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'EventQueues',
          actions: ['sqs:SendMessage'],
          resources: subscribers.map((s) => s.eventQueue!.queue.queueArn),
        }),
      );
    }
  }

  /** A vector bucket's ARN, from its name (what S3 Vectors authorizes). */
  vectorBucketArn(bucket: s3vectors.CfnVectorBucket): string {
    return this.formatArn({ service: 's3vectors', resource: 'bucket', resourceName: bucket.vectorBucketName! });
  }

  /** The function's build output (cargo lambda build --release --arm64 [--output-format zip]). */
  private lambdaCode(name: string): { code: lambda.Code; placeholder: boolean } {
    const dir = path.join(this.settings.lambdaDir, name);
    const zip = path.join(dir, 'bootstrap.zip');
    if (fs.existsSync(zip)) return { code: lambda.Code.fromAsset(zip), placeholder: false };
    if (fs.existsSync(path.join(dir, 'bootstrap'))) return { code: lambda.Code.fromAsset(dir), placeholder: false };
    if (this.settings.allowPlaceholderCode) {
      Annotations.of(this).addWarningV2(
        `tenantry:placeholder-code:${name}`,
        `function ${name}: no build output in ${dir}; using the test placeholder (not deployable)`,
      );
      return { code: lambda.Code.fromAsset(PLACEHOLDER_ASSET_DIR), placeholder: true };
    }
    throw new Error(
      `function ${name}: no build output at ${zip} (nor ${path.join(dir, 'bootstrap')}). ` +
        `Build the functions first: \`make build\` (cargo lambda build --release --arm64 --output-format zip), ` +
        `or point TENANTRY_LAMBDA_DIR (or -c lambdaDir=...) at cargo-lambda's output directory. ` +
        `Does \`make build\` build the binary "${name}" (every function of infra/functions.json)?`,
    );
  }
}
