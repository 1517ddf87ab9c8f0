// cdk-nag (AwsSolutions pack) acknowledgements: every finding the stack accepts, each with its
// reason. cdk-nag v3 reads CDK's native `Validations.of(construct).acknowledge()`. Anything not
// acknowledged here fails `cdk synth` (bin/tenantry.ts) and the nag test (test/nag.test.ts).
import { CfnElement, Stack, Validations, aws_apigateway as apigw } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { UPLOAD_BUCKET_PREFIXES, bedrockResources, exportBucketActionsByResource, s3ActionsByResource } from './functions';
import type { TenantryStack } from './tenantry-stack';

function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions-${id}`, reason });
}

/** How cdk-nag names a resource's ARN in IAM5 findings: <LogicalId.Arn> */
function arnToken(element: IConstruct): string {
  return `<${Stack.of(element).getLogicalId(element as CfnElement)}.Arn>`;
}

export function applyNagSuppressions(stack: TenantryStack): void {
  const s = stack.settings;

  // ---- Cognito -------------------------------------------------------------------------------
  acknowledge(
    stack.userPool,
    'COG1',
    'Password policy: at least 12 characters with upper case, lower case and digits, no symbol ' +
      'requirement. NIST SP 800-63B advises length over composition rules; the local stack ' +
      '(shared/local-runner) enforces the same policy so behaviour matches everywhere.',
  );
  if (s.mfa !== 'required') {
    acknowledge(
      stack.userPool,
      'COG2',
      'dev: MFA is OPTIONAL (TOTP only, no SMS) so that test users sign up without an authenticator app; ' +
        'prod requires TOTP of every user (context mfa, prod refuses optional): platform operators must use ' +
        'MFA and Cognito cannot require it for one group only. -c mfa=required tries the prod flow in dev.',
    );
  }
  if (s.cognitoFeaturePlan === 'essentials') {
    acknowledge(
      stack.userPool,
      'COG8',
      'The Essentials feature plan is the one V2 pre-token-generation needs; Plus (threat ' +
        'protection) costs more per MAU and is a per-deployment choice: -c cognitoFeaturePlan=plus.',
    );
  }

  // ---- API Gateway ---------------------------------------------------------------------------
  const healthGet = stack.api.root.getResource('health')?.node.tryFindChild('GET') as apigw.Method | undefined;
  if (healthGet !== undefined) {
    const reason =
      'GET /health is deliberately unauthenticated: a mock integration that returns {"status":"ok"} ' +
      'for load balancers and uptime checks; it reaches no function and no data.';
    acknowledge(healthGet, 'APIG4', reason);
    acknowledge(healthGet, 'COG4', reason);
  }
  // The routes that routes.json declares public, and only their methods.
  for (const method of stack.publicMethods) {
    const reason = 'RFC 8058 one-click unsubscribe: the signed token in the link is the credential; mail clients POST without a session';
    acknowledge(method, 'APIG4', reason);
    acknowledge(method, 'COG4', reason);
  }
  acknowledge(
    stack.api.deploymentStage,
    'APIG3',
    'No WAF web ACL by default: WAF costs a fixed monthly fee per ACL that small deployments do ' +
      'not need; stage throttling (context throttleRateLimit/throttleBurstLimit) and Cognito ' +
      'authorization (on every route routes.json does not declare public) protect the API. ' +
      'infra/README.md shows how to attach a web ACL.',
  );
  const cloudWatchRole = stack.api.node.tryFindChild('CloudWatchRole');
  if (cloudWatchRole !== undefined) {
    acknowledge(
      cloudWatchRole,
      'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      'The account-wide API Gateway CloudWatch role that access and execution logging require; ' +
        'AmazonAPIGatewayPushToCloudWatchLogs is the policy AWS documents for exactly this role.',
    );
  }

  // ---- data ----------------------------------------------------------------------------------
  acknowledge(
    stack.cursorSecret,
    'SMG4',
    'The cursor-signing key has no rotation Lambda: rotating it only invalidates pagination ' +
      'cursors in flight (clients restart the listing), so it is rotated by hand when needed ' +
      '(aws secretsmanager put-secret-value), see infra/README.md.',
  );
  acknowledge(
    stack.accessLogBucket,
    'S1',
    'This bucket receives the upload bucket\'s server access logs; logging it too would need another log ' +
      'bucket (and that one another). Only the S3 logging service may write to it (bucket policy).',
  );

  // CDK's own handler that writes the bucket's notification configuration; it exists only
  // once a function subscribes to uploads (sources.s3 in functions.json) or the malware
  // protection keeps the bucket's EventBridge notifications on.
  for (const child of stack.node.children) {
    if (!child.node.id.startsWith('BucketNotificationsHandler')) continue;
    const role = child.node.tryFindChild('Role');
    if (role === undefined) continue;
    acknowledge(
      role,
      'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'CDK-managed singleton that applies S3 bucket notification configuration at deploy time; ' +
        'its role and policy are generated by aws-cdk-lib and only write its own logs.',
    );
  }

  // ---- the hosted console (context console) ----------------------------------------------------
  if (stack.console !== undefined) {
    const distribution = stack.console.distribution;
    acknowledge(
      distribution,
      'CFR1',
      'No geo restriction: the console is the SaaS\'s own front end for its users wherever they are; it serves static ' +
        'files only, and every piece of data stays behind the API and its Cognito authorizer.',
    );
    if (s.console?.webAclArn === undefined) {
      acknowledge(
        distribution,
        'CFR2',
        'No WAF web ACL unless context consoleWebAclArn names one: a web ACL for CloudFront lives in us-east-1 (not in ' +
          'this regional stack) and costs a monthly fee; the distribution serves static files only, cached, from a ' +
          'bucket only it can read.',
      );
    }
    if (s.console?.domain === undefined) {
      acknowledge(
        distribution,
        'CFR4',
        'CloudFront\'s default *.cloudfront.net certificate, whose minimum protocol CloudFront fixes; browsers negotiate ' +
          'TLS 1.2 or 1.3 with it anyway. Context consoleDomain with consoleCertificateArn serves the console on a domain ' +
          'of your own with TLSv1.2_2021 as the minimum.',
      );
    }
    // CDK's own singleton that copies the built console into the bucket and invalidates the
    // distribution's cache at deploy time.
    for (const child of stack.node.children) {
      if (!child.node.id.startsWith('Custom::CDKBucketDeployment')) continue;
      const why = 'CDK-managed singleton (aws-s3-deployment) that copies the built console into its bucket at deploy time ' +
        'and invalidates the distribution; its code, runtime and role come from aws-cdk-lib';
      acknowledge(child, 'L1', `${why}, which chooses the runtime.`);
      const role = child.node.tryFindChild('ServiceRole');
      if (role === undefined) continue;
      acknowledge(role, 'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', `${why}; it writes its own logs.`);
      const policy = role.node.tryFindChild('DefaultPolicy');
      if (policy === undefined) continue;
      for (const finding of [
        'IAM5[Action::s3:GetObject*]',
        'IAM5[Action::s3:GetBucket*]',
        'IAM5[Action::s3:List*]',
        'IAM5[Action::s3:DeleteObject*]',
        'IAM5[Action::s3:Abort*]',
        `IAM5[Resource::${arnToken(stack.console.bucket.node.defaultChild as IConstruct)}/*]`,
        'IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]',
        'IAM5[Resource::*]',
      ]) {
        acknowledge(
          policy,
          finding,
          `${why}: it reads the CDK assets bucket\'s objects and writes (and prunes) the console bucket\'s; ` +
            'cloudfront:CreateInvalidation and GetInvalidation support no narrower resource in the policy CDK writes.',
        );
      }
    }
  }

  // ---- GuardDuty Malware Protection for S3 (context malwareProtection) -------------------------
  const bucketObjects = arnToken(stack.uploadBucket.node.defaultChild as IConstruct);
  const malwareRolePolicy = stack.malwareProtectionRole?.node.tryFindChild('DefaultPolicy');
  if (malwareRolePolicy !== undefined) {
    acknowledge(
      malwareRolePolicy,
      `IAM5[Resource::${bucketObjects}/*]`,
      'GuardDuty Malware Protection for S3: the role AWS documents for the protection plan reads and tags the objects ' +
        'of the protected bucket (this upload bucket only); the plan itself limits the scans to uploads/.',
    );
    acknowledge(
      malwareRolePolicy,
      'IAM5[Resource::arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/DO-NOT-DELETE-AmazonGuardDutyMalwareProtectionS3*]',
      'GuardDuty Malware Protection for S3 manages its own EventBridge rule, whose name it chooses under this prefix; ' +
        'AWS documents exactly this resource, and the write actions also require events:ManagedBy = the GuardDuty principal.',
    );
  }
  // ---- function roles ------------------------------------------------------------------------
  for (const f of stack.functions.values()) {
    const { name, config, role } = f;
    // Queues that receive failure records from Lambda itself (not from a source queue's redrive
    // policy), so cdk-nag cannot see that they are dead-letter queues.
    for (const [queue, what] of [
      [
        f.asyncFailures,
        'the on-failure destination of its asynchronous invocations (schedules, EventBridge rules) and the schedules\' dead-letter queue',
      ],
      [f.streamFailures, 'the on-failure destination of its table stream event source mapping'],
      [f.mailFeedbackFailures, 'the dead-letter queue of the EventBridge rule that delivers SES bounces and complaints to it'],
      [f.malwareScanFailures, 'the dead-letter queue of its target on the EventBridge rule that delivers malware scan results'],
    ] as const) {
      if (queue === undefined) continue;
      acknowledge(
        queue,
        'SQS3',
        `${name}: this queue IS a dead-letter queue: ${what}. Lambda, EventBridge Scheduler or the EventBridge ` +
          'rule write to it directly, which cdk-nag cannot see; an alarm fires on its first message.',
      );
    }

    const policy = role.node.tryFindChild('DefaultPolicy');
    if (policy === undefined) continue;
    // dynamodb:Query on the indexes names each index of table.json (no index/* wildcard): nothing
    // to acknowledge.
    // permissions.s3: object actions on the objects under the upload bucket's prefixes, whose keys
    // are chosen per org and file (uploads/{org}/{file}, derived/{org}/{file}/…).
    if (s3ActionsByResource(config.permissions.s3).objectActions.length > 0) {
      for (const prefix of UPLOAD_BUCKET_PREFIXES) {
        acknowledge(
          policy,
          `IAM5[Resource::${bucketObjects}/${prefix}*]`,
          `${name}: the S3 actions functions.json lists for it (permissions.s3), on the upload bucket's objects under ` +
            `${prefix} only: their keys are chosen per org and file, so the statement names the prefix.`,
        );
      }
    }
    // permissions.exportBucketS3: object actions on the exports bucket's objects, whose keys are
    // chosen per org or user and export.
    if (stack.exportBucket !== undefined && exportBucketActionsByResource(config.permissions.exportBucketS3).objectActions.length > 0) {
      acknowledge(
        policy,
        `IAM5[Resource::${arnToken(stack.exportBucket.node.defaultChild as IConstruct)}/*]`,
        `${name}: the S3 actions functions.json lists for it (permissions.exportBucketS3), on the exports bucket's objects ` +
          'only: the bucket holds nothing but exports, whose keys are chosen per org or user and export.',
      );
    }
    // permissions.s3vectors: the indexes of the deployment's vector buckets, one per org, which the
    // store names when the org first needs one (org-{id}).
    if (config.permissions.s3vectors.length > 0) {
      for (const bucket of stack.vectorBuckets) {
        acknowledge(
          policy,
          `IAM5[Resource::arn:<AWS::Partition>:s3vectors:<AWS::Region>:<AWS::AccountId>:bucket/${bucket.vectorBucketName}/index/*]`,
          `${name}: the S3 Vectors actions functions.json lists for it (permissions.s3vectors), on the indexes of this ` +
            'deployment\'s vector bucket only: one index per org, named after the org when it first needs one.',
        );
      }
    }
    // permissions.bedrock through cross-region inference profiles: the profile sends each request to
    // its model in one of its geography's regions, where Bedrock authorizes the model too. The model
    // is named; only the region is open.
    for (const model of bedrockResources(config.permissions.bedrockModels).profileModels) {
      acknowledge(
        policy,
        `IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/${model}]`,
        `${name}: ${model} is invoked through a cross-region inference profile (permissions.bedrockModels), which serves ` +
          'each request from one of its regions; Bedrock authorizes that region\'s foundation model, so the model is named in any region.',
      );
    }
    if (s.tracing) {
      acknowledge(
        policy,
        'IAM5[Resource::*]',
        `${name}: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions (tracing is on).`,
      );
    }
  }
}
