// The Tenantry stack: one DynamoDB table, one Cognito user pool, one REST API, the Lambda
// functions (Rust, provided.al2023 on arm64), the upload bucket, the domain-event queue, the
// SES identity and the alarms. One codebase for both stages (context `stage` = dev | prod).
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
  aws_apigateway as apigw,
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cwActions,
  aws_cognito as cognito,
  aws_dynamodb as dynamodb,
  aws_events as events,
  aws_events_targets as eventTargets,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_s3 as s3,
  aws_s3_notifications as s3n,
  aws_secretsmanager as secretsmanager,
  aws_ses as ses,
  aws_sns as sns,
  aws_sns_subscriptions as snsSubscriptions,
  aws_sqs as sqs,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import {
  INFRA_DIR,
  RouteManifest,
  TableDefinition,
  loadRouteManifest,
  loadTableDefinition,
} from './definitions';
import { DynamoDbAction, FUNCTIONS, FunctionConfig, LOG_LEVEL } from './functions';
import { applyNagSuppressions } from './nag';
import { Settings } from './settings';

/** Stands in for a function that was not built. Tests only: its bootstrap exits with an error. */
export const PLACEHOLDER_ASSET_DIR = path.join(INFRA_DIR, 'test', 'placeholder-asset');

/** The Cognito group of the platform's operators (domain::Identity::PLATFORM_ADMIN_GROUP). */
export const PLATFORM_ADMIN_GROUP = 'platform-admin';

/** The function that serves the user pool's triggers. */
export const COGNITO_TRIGGERS_FUNCTION = 'cognito-triggers';

/** Request bodies: API Gateway REST accepts at most 10 MB (a hard limit, not configurable);
 * the functions themselves reject bodies over 64 KiB with 413 before parsing them. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface TenantryStackProps extends StackProps {
  readonly settings: Settings;
  /** defaults to FUNCTIONS (lib/functions.ts) */
  readonly functions?: Readonly<Record<string, FunctionConfig>>;
  /** defaults to infra/routes.json */
  readonly routes?: RouteManifest;
  /** defaults to shared/store/table.json */
  readonly table?: TableDefinition;
}

export interface DeployedFunction {
  readonly name: string;
  readonly config: FunctionConfig;
  readonly fn: lambda.Function;
  readonly role: iam.Role;
  readonly usesPlaceholderCode: boolean;
}

function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p.length > 0)
    .map((p) => p[0].toUpperCase() + p.slice(1))
    .join('');
}

/** The IAM actions for a function's DynamoDB operations. Transactions have no IAM action of their
 * own: DynamoDB authorizes each part of a TransactWriteItems with the Put/Update/DeleteItem and
 * ConditionCheckItem permissions (and TransactGetItems with GetItem), so those two are listed in
 * the config (what the code calls) but emit nothing. */
export function iamDynamoDbActions(operations: readonly DynamoDbAction[]): string[] {
  const noIamAction: readonly DynamoDbAction[] = ['TransactWriteItems', 'TransactGetItems'];
  return [...new Set(operations)].filter((a) => !noIamAction.includes(a)).map((a) => `dynamodb:${a}`);
}

/** Which functions to deploy: the HTTP functions routes.json names, and every non-HTTP one. */
export function selectFunctions(
  functions: Readonly<Record<string, FunctionConfig>>,
  manifest: RouteManifest,
): string[] {
  const selected: string[] = [];
  for (const route of manifest.routes) {
    const config = functions[route.function];
    if (config === undefined) {
      throw new Error(
        `infra/routes.json: route ${route.method} ${route.path} names function "${route.function}", ` +
          `but infra/lib/functions.ts has no config for it. Add an entry "${route.function}" to FUNCTIONS ` +
          `(memory, timeout, reason, environment, permissions). Known functions: ${Object.keys(functions).sort().join(', ')}.`,
      );
    }
    if (config.kind !== 'http') {
      throw new Error(
        `infra/routes.json: route ${route.method} ${route.path} names function "${route.function}", ` +
          `whose config in infra/lib/functions.ts has kind "${config.kind}", not "http".`,
      );
    }
    if (!selected.includes(route.function)) selected.push(route.function);
  }
  for (const [name, config] of Object.entries(functions)) {
    if (config.kind !== 'http' && !selected.includes(name)) selected.push(name);
  }
  return selected;
}

export class TenantryStack extends Stack {
  readonly settings: Settings;
  readonly table: dynamodb.Table;
  readonly cursorSecret: secretsmanager.Secret;
  readonly userPool: cognito.UserPool;
  readonly userPoolClient: cognito.UserPoolClient;
  readonly api: apigw.RestApi;
  readonly apiAccessLogs: logs.LogGroup;
  readonly uploadBucket: s3.Bucket;
  readonly domainEvents: sqs.Queue;
  readonly domainEventsDlq: sqs.Queue;
  readonly mailIdentity: ses.EmailIdentity;
  readonly alarmTopic?: sns.Topic;
  readonly functions: ReadonlyMap<string, DeployedFunction>;

  constructor(scope: Construct, id: string, props: TenantryStackProps) {
    super(scope, id, props);
    const settings = props.settings;
    this.settings = settings;
    const prod = settings.stage === 'prod';
    /** prod keeps data when the stack or a resource goes away; dev cleans up */
    const dataRemoval = prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const functionConfigs = props.functions ?? FUNCTIONS;
    const manifest = props.routes ?? loadRouteManifest();
    const tableDef = props.table ?? loadTableDefinition();

    Tags.of(this).add('project', 'tenantry');
    Tags.of(this).add('stage', settings.stage);

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

    this.uploadBucket = new s3.Bucket(this, 'UploadBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: settings.bucketVersioning,
      removalPolicy: dataRemoval,
      autoDeleteObjects: !prod,
      // Browsers upload and download with presigned URLs, from the app's origins only.
      cors: [
        {
          allowedMethods: [s3.HttpMethods.GET, s3.HttpMethods.PUT, s3.HttpMethods.HEAD],
          allowedOrigins: [...settings.allowedOrigins],
          allowedHeaders: ['*'],
          exposedHeaders: ['ETag'],
          maxAge: 3600,
        },
      ],
      lifecycleRules: [
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
        ...(settings.bucketVersioning
          ? [{ id: 'expire-noncurrent-versions', noncurrentVersionExpiration: Duration.days(30) }]
          : []),
      ],
    });

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
    const alarmWhenAboveZero = (alarmId: string, metric: cloudwatch.IMetric, description: string): cloudwatch.Alarm => {
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
    const deployedNames = selectFunctions(functionConfigs, manifest);
    if (!deployedNames.includes(COGNITO_TRIGGERS_FUNCTION)) {
      throw new Error(`infra/lib/functions.ts: the user pool needs the "${COGNITO_TRIGGERS_FUNCTION}" function`);
    }
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
      mfa: cognito.Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      // Essentials or Plus: V2 pre-token-generation events (claims in access tokens) need it.
      featurePlan,
      standardThreatProtectionMode:
        featurePlan === cognito.FeaturePlan.PLUS ? cognito.StandardThreatProtectionMode.FULL_FUNCTION : undefined,
      deletionProtection: prod,
      removalPolicy: dataRemoval,
    });

    const deployed = new Map<string, DeployedFunction>();
    for (const name of deployedNames) {
      deployed.set(name, this.createFunction(name, functionConfigs[name], alarmWhenAboveZero));
    }
    this.functions = deployed;

    const triggers = deployed.get(COGNITO_TRIGGERS_FUNCTION)!.fn;
    this.userPool.addTrigger(cognito.UserPoolOperation.PRE_SIGN_UP, triggers);
    this.userPool.addTrigger(cognito.UserPoolOperation.POST_CONFIRMATION, triggers);
    this.userPool.addTrigger(cognito.UserPoolOperation.POST_AUTHENTICATION, triggers);
    this.userPool.addTrigger(cognito.UserPoolOperation.CUSTOM_MESSAGE, triggers);
    this.userPool.addTrigger(
      cognito.UserPoolOperation.PRE_TOKEN_GENERATION_CONFIG,
      triggers,
      cognito.LambdaVersion.V2_0,
    );

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
      defaultCorsPreflightOptions: {
        allowOrigins: [...settings.allowedOrigins],
        allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
        allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key'],
        maxAge: Duration.hours(1),
      },
    });
    if (settings.allowedOrigins.length === 1) {
      // Errors that API Gateway answers itself (401 from the authorizer, 429 from throttling)
      // carry the CORS header too, so the browser shows the status instead of a CORS error.
      for (const [gwId, type] of [
        ['Default4xx', apigw.ResponseType.DEFAULT_4XX],
        ['Default5xx', apigw.ResponseType.DEFAULT_5XX],
      ] as const) {
        this.api.addGatewayResponse(gwId, {
          type,
          responseHeaders: { 'Access-Control-Allow-Origin': `'${settings.allowedOrigins[0]}'` },
        });
      }
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

    const integrations = new Map<string, apigw.LambdaIntegration>();
    for (const route of manifest.routes) {
      if (route.path === '/health' || route.path.startsWith('/health/')) {
        throw new Error(`infra/routes.json: ${route.method} ${route.path}: /health is the stack's own unauthenticated route`);
      }
      let integration = integrations.get(route.function);
      if (integration === undefined) {
        integration = new apigw.LambdaIntegration(deployed.get(route.function)!.fn, { proxy: true, allowTestInvoke: false });
        integrations.set(route.function, integration);
      }
      const requestParameters: Record<string, boolean> = {};
      for (const m of route.path.matchAll(/\{([^}+]+)\+?\}/g)) requestParameters[`method.request.path.${m[1]}`] = true;
      this.api.root.resourceForPath(route.path).addMethod(route.method, integration, {
        authorizer,
        authorizationType: apigw.AuthorizationType.COGNITO,
        requestValidator: validator,
        requestParameters,
        operationName: route.operationId,
      });
    }

    alarmWhenAboveZero(
      'Api5xxAlarm',
      this.api.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }),
      'Tenantry: the API answered 5xx',
    );

    // ---- future wiring, present only when its function exists ------------------------------
    for (const { name, config, fn, role } of deployed.values()) {
      if (config.s3Uploads) {
        this.uploadBucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(fn));
        role.addToPolicy(
          new iam.PolicyStatement({
            sid: 'ReadUploads',
            actions: ['s3:GetObject', 's3:DeleteObject'],
            resources: [this.uploadBucket.arnForObjects('*')],
          }),
        );
        fn.addEnvironment('UPLOAD_BUCKET', this.uploadBucket.bucketName);
      }
      for (const schedule of config.schedules ?? []) {
        new events.Rule(this, `${pascal(name)}${pascal(schedule.id)}Schedule`, {
          description: `Tenantry ${name}: ${schedule.description}`,
          schedule: events.Schedule.expression(schedule.expression),
          targets: [new eventTargets.LambdaFunction(fn, { retryAttempts: 2 })],
        });
      }
    }

    // ---- outputs ---------------------------------------------------------------------------
    new CfnOutput(this, 'ApiUrl', { value: this.api.url });
    new CfnOutput(this, 'UserPoolId', { value: this.userPool.userPoolId });
    new CfnOutput(this, 'UserPoolClientId', { value: this.userPoolClient.userPoolClientId });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    new CfnOutput(this, 'UploadBucketName', { value: this.uploadBucket.bucketName });
    new CfnOutput(this, 'DomainEventsQueueUrl', { value: this.domainEvents.queueUrl });
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
  }

  private createFunction(
    name: string,
    config: FunctionConfig,
    alarmWhenAboveZero: (id: string, metric: cloudwatch.IMetric, description: string) => cloudwatch.Alarm,
  ): DeployedFunction {
    const settings = this.settings;
    const prod = settings.stage === 'prod';
    const id = pascal(name);

    const logGroup = new logs.LogGroup(this, `${id}Logs`, {
      retention: settings.logRetentionDays as logs.RetentionDays,
      removalPolicy: prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });

    // Its own role, with exactly the actions of its config.
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Tenantry ${name}: the actions listed for it in infra/lib/functions.ts, nothing else`,
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
      if (p.dynamodb.includes('Query')) {
        role.addToPolicy(
          new iam.PolicyStatement({
            sid: 'TableIndexes',
            actions: ['dynamodb:Query'],
            resources: [`${this.table.tableArn}/index/*`],
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
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'SendMail',
          actions: ['ses:SendEmail'],
          resources: [this.mailIdentity.emailIdentityArn],
        }),
      );
    }

    const environment: Record<string, string> = {
      TABLE_NAME: this.table.tableName,
      CURSOR_SECRET_ARN: this.cursorSecret.secretArn,
      APP_URL: settings.appUrl,
      RUST_LOG: LOG_LEVEL,
    };
    if (config.environment.sesFromAddress) environment.SES_FROM_ADDRESS = settings.sesFromAddress;
    for (const [envName, contextKey] of Object.entries(config.environment.fromContext ?? {})) {
      const value = this.node.tryGetContext(contextKey);
      if (value === undefined || value === null || value === '') continue;
      if (/SECRET|PASSWORD|TOKEN|KEY/.test(envName)) throw new Error(`${name}: ${envName} must not carry a secret`);
      environment[envName] = Array.isArray(value) ? value.join(',') : String(value);
    }

    const { code, placeholder } = this.lambdaCode(name, config);
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
      environment,
    });

    alarmWhenAboveZero(`${id}ErrorsAlarm`, fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }), `Tenantry ${name}: invocation errors`);
    alarmWhenAboveZero(`${id}ThrottlesAlarm`, fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }), `Tenantry ${name}: throttled invocations`);

    return { name, config, fn, role, usesPlaceholderCode: placeholder };
  }

  /** The function's build output (cargo lambda build --release --arm64 [--output-format zip]). */
  private lambdaCode(name: string, config: FunctionConfig): { code: lambda.Code; placeholder: boolean } {
    const dir = path.join(this.settings.lambdaDir, config.binary);
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
        `Is "${config.binary}" in LAMBDA_BINARIES in the Makefile?`,
    );
  }
}
