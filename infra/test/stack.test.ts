// What the synthesized stack promises, one test per promise, for dev and prod.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, test } from 'node:test';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { REPO_ROOT, loadFunctionRegistry, loadRouteManifest, loadTableDefinition } from '../lib/definitions';
import {
  DEFAULT_RESERVED_CONCURRENCY,
  MALWARE_SCAN_MAX_EVENT_AGE,
  MALWARE_SCAN_RETRY_ATTEMPTS,
  MAX_VECTOR_BUCKETS,
  RESERVED_CONCURRENCY,
  bedrockResources,
  vectorBucketNames,
  vectorBucketPrefix,
} from '../lib/functions';
import { EXPORT_ACCESS_LOG_PREFIX, UPLOAD_ACCESS_LOG_PREFIX } from '../lib/tenantry-stack';
import {
  PROD_CONTEXT,
  allSourcesRegistry,
  functionLogicalId,
  isCdkHandler,
  methodsByRoute,
  registryWith,
  resources,
  roleActions,
  roleLogicalId,
  roleStatements,
  stage,
  synth,
  expectDepthAlarm,
} from './helpers';

const STAGES = ['dev', 'prod'] as const;

/** A template value as text: Fn::Join flattened, references as <LogicalId> or <LogicalId.Attribute>. */
const asText = (v: any): string => {
  if (typeof v === 'string') return v;
  if (v['Fn::Join'] !== undefined) return (v['Fn::Join'][1] as any[]).map(asText).join(v['Fn::Join'][0]);
  if (v.Ref !== undefined) return `<${v.Ref}>`;
  if (v['Fn::GetAtt'] !== undefined) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
  return assert.fail(`not a text value: ${JSON.stringify(v)}`);
};

/** The ARNs a Bedrock model id is granted on, as text: a cross-region inference profile (us., eu.,
 * apac., global.) here and its model in every region; any other id, the model in this region. */
const expectedModelArns = (id: string): string[] => {
  const geo = /^(us|eu|apac|global)\.(.+)$/.exec(id);
  return geo
    ? [`arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/${id}`, `arn:<AWS::Partition>:bedrock:*::foundation-model/${geo[2]}`]
    : [`arn:<AWS::Partition>:bedrock:<AWS::Region>::foundation-model/${id}`];
};

/** The ARN of one index of the table, as the stack writes it. */
const indexArn = (tableId: string, indexName: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, `/index/${indexName}`]] });

function only<T>(record: Record<string, T>, what: string): [string, T] {
  const entries = Object.entries(record);
  assert.equal(entries.length, 1, `expected exactly one ${what}, found ${entries.length}`);
  return entries[0];
}

// ---- table -----------------------------------------------------------------------------------
describe('table (from shared/store/table.json)', () => {
  const def = loadTableDefinition();

  for (const st of STAGES) {
    test(`${st}: partition and sort key are the string attributes named in table.json`, () => {
      const [, table] = only(resources(stage(st).template, 'AWS::DynamoDB::Table'), 'table');
      assert.deepEqual(table.Properties!.KeySchema, [
        { AttributeName: def.partitionKey, KeyType: 'HASH' },
        { AttributeName: def.sortKey, KeyType: 'RANGE' },
      ]);
      const attrs = table.Properties!.AttributeDefinitions as { AttributeName: string; AttributeType: string }[];
      for (const a of attrs) assert.equal(a.AttributeType, 'S', `${a.AttributeName} must be a string`);
    });

    test(`${st}: every GSI of table.json, with its keys, projecting all attributes`, () => {
      const [, table] = only(resources(stage(st).template, 'AWS::DynamoDB::Table'), 'table');
      const gsis = table.Properties!.GlobalSecondaryIndexes as any[];
      assert.deepEqual(
        gsis.map((g) => g.IndexName).sort(),
        def.globalSecondaryIndexes.map((g) => g.indexName).sort(),
      );
      for (const expected of def.globalSecondaryIndexes) {
        const gsi = gsis.find((g) => g.IndexName === expected.indexName);
        assert.deepEqual(gsi.KeySchema, [
          { AttributeName: expected.partitionKey, KeyType: 'HASH' },
          { AttributeName: expected.sortKey, KeyType: 'RANGE' },
        ]);
        assert.deepEqual(gsi.Projection, { ProjectionType: 'ALL' });
      }
    });

    test(`${st}: TTL on the attribute table.json names (ttl)`, () => {
      stage(st).template.hasResourceProperties('AWS::DynamoDB::Table', {
        TimeToLiveSpecification: { AttributeName: def.timeToLiveAttribute, Enabled: true },
      });
      assert.equal(def.timeToLiveAttribute, 'ttl');
    });

    test(`${st}: point-in-time recovery is on`, () => {
      stage(st).template.hasResourceProperties('AWS::DynamoDB::Table', {
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      });
    });

    test(`${st}: stream NEW_AND_OLD_IMAGES`, () => {
      stage(st).template.hasResourceProperties('AWS::DynamoDB::Table', {
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      });
    });

    test(`${st}: on-demand billing (PAY_PER_REQUEST)`, () => {
      stage(st).template.hasResourceProperties('AWS::DynamoDB::Table', { BillingMode: 'PAY_PER_REQUEST' });
    });
  }

  test('prod: deletion protection on and the table is retained', () => {
    const t = stage('prod').template;
    t.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: true });
    t.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });

  test('dev: no deletion protection and the table is deleted with the stack', () => {
    const t = stage('dev').template;
    t.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false });
    t.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
  });

  test('the table follows the definition file (another definition gives another table)', () => {
    // One index more than table.json has, under a name it does not use yet.
    const names = new Set(def.globalSecondaryIndexes.map((g) => g.indexName));
    let n = def.globalSecondaryIndexes.length + 1;
    while (names.has(`GSI${n}`)) n++;
    const added = { indexName: `GSI${n}`, partitionKey: `GSI${n}PK`, sortKey: `GSI${n}SK` };
    const other = { ...def, partitionKey: 'pk2', globalSecondaryIndexes: [...def.globalSecondaryIndexes, added] };
    const s = synth({ table: other });
    const [tableId, table] = only(resources(s.template, 'AWS::DynamoDB::Table'), 'table');
    assert.deepEqual(table.Properties!.KeySchema, [
      { AttributeName: 'pk2', KeyType: 'HASH' },
      { AttributeName: def.sortKey, KeyType: 'RANGE' },
    ]);
    assert.deepEqual(
      (table.Properties!.GlobalSecondaryIndexes as any[]).map((g) => g.IndexName),
      other.globalSecondaryIndexes.map((g) => g.indexName),
    );
    // and the functions that Query may query the new index too
    const indexes = roleStatements(s.template, roleLogicalId(s, 'organizations')).find((x) => x.Sid === 'TableIndexes');
    assert.deepEqual(indexes.Resource, other.globalSecondaryIndexes.map((g) => indexArn(tableId, g.indexName)));
  });

  test('a table without indexes: no index statement in any role', () => {
    const s = synth({ table: { ...def, globalSecondaryIndexes: [] } });
    const [, table] = only(resources(s.template, 'AWS::DynamoDB::Table'), 'table');
    assert.equal(table.Properties!.GlobalSecondaryIndexes, undefined);
    for (const name of s.stack.functions.keys()) {
      assert.ok(!roleStatements(s.template, roleLogicalId(s, name)).some((x) => x.Sid === 'TableIndexes'), name);
    }
  });
});

// ---- Cognito ---------------------------------------------------------------------------------
describe('Cognito user pool', () => {
  test('sign-in with email: the username is the email address', () => {
    stage('dev').template.hasResourceProperties('AWS::Cognito::UserPool', {
      UsernameAttributes: ['email'],
      AliasAttributes: Match.absent(),
    });
  });

  test('password policy: at least 12 characters, upper and lower case, digits', () => {
    stage('dev').template.hasResourceProperties('AWS::Cognito::UserPool', {
      Policies: {
        PasswordPolicy: Match.objectLike({
          MinimumLength: 12,
          RequireUppercase: true,
          RequireLowercase: true,
          RequireNumbers: true,
        }),
      },
    });
  });

  test('email verification: email is auto-verified', () => {
    stage('dev').template.hasResourceProperties('AWS::Cognito::UserPool', { AutoVerifiedAttributes: ['email'] });
  });

  // Changed on purpose: prod requires MFA now (platform operators must use it; Cognito cannot
  // require it for one group only). dev keeps it optional.
  test('dev: MFA optional, TOTP only (no SMS)', () => {
    stage('dev').template.hasResourceProperties('AWS::Cognito::UserPool', {
      MfaConfiguration: 'OPTIONAL',
      EnabledMfas: ['SOFTWARE_TOKEN_MFA'],
    });
  });

  test('prod: MFA required of every user, TOTP only (no SMS)', () => {
    stage('prod').template.hasResourceProperties('AWS::Cognito::UserPool', {
      MfaConfiguration: 'ON',
      EnabledMfas: ['SOFTWARE_TOKEN_MFA'],
    });
  });

  test('dev can try the prod MFA flow (mfa=required); prod refuses optional MFA', () => {
    synth({ context: { mfa: 'required' } }).template.hasResourceProperties('AWS::Cognito::UserPool', { MfaConfiguration: 'ON' });
    assert.throws(() => synth({ context: { ...PROD_CONTEXT, mfa: 'optional' } }), /context mfa: stage prod requires MFA/);
    assert.throws(() => synth({ context: { mfa: 'sometimes' } }), /context mfa must be optional or required/);
  });

  test('prod: the user pool mails through SES from the stack\'s identity (domain), created before the pool', () => {
    const s = stage('prod');
    const [, pool] = only(resources(s.template, 'AWS::Cognito::UserPool'), 'user pool');
    const mail = pool.Properties!.EmailConfiguration;
    assert.equal(mail.EmailSendingAccount, 'DEVELOPER');
    assert.equal(mail.From, 'no-reply@example.com');
    assert.match(JSON.stringify(mail.SourceArn), /:ses:.*:identity\/example\.com"/);
    const identityId = s.stack.getLogicalId(s.stack.mailIdentity.node.defaultChild as any);
    assert.ok(([] as string[]).concat(pool.DependsOn ?? []).includes(identityId), 'the pool must wait for the SES identity');
  });

  test('prod: an email-address identity (mailFromAddress) and the product name in From', () => {
    const t = synth({
      context: { ...PROD_CONTEXT, mailDomain: '', mailFromAddress: 'hello@acme.test', productName: 'Acme' },
    }).template;
    const [, pool] = only(resources(t, 'AWS::Cognito::UserPool'), 'user pool');
    const mail = pool.Properties!.EmailConfiguration;
    assert.equal(mail.EmailSendingAccount, 'DEVELOPER');
    assert.equal(mail.From, 'Acme <hello@acme.test>');
    assert.match(JSON.stringify(mail.SourceArn), /:identity\/hello@acme\.test"/);
  });

  test('prod refuses to synthesize without an SES identity for the user pool\'s mail, naming the context key', () => {
    const { mailDomain: _omit, ...noMail } = PROD_CONTEXT;
    assert.throws(() => synth({ context: noMail }), /context mailDomain \(or mailFromAddress\) is required for stage prod: .*user pool/);
  });

  test('dev: Cognito\'s default sender, unless userPoolEmail=ses', () => {
    const [, pool] = only(resources(stage('dev').template, 'AWS::Cognito::UserPool'), 'user pool');
    assert.ok([undefined, 'COGNITO_DEFAULT'].includes(pool.Properties!.EmailConfiguration?.EmailSendingAccount));
    synth({ context: { userPoolEmail: 'ses', mailFromAddress: 'team@acme.test' } }).template.hasResourceProperties(
      'AWS::Cognito::UserPool',
      { EmailConfiguration: Match.objectLike({ EmailSendingAccount: 'DEVELOPER', From: 'team@acme.test' }) },
    );
  });

  test('prod with userPoolEmail=cognito (first deploy, identity not yet verified): default sender and a warning', () => {
    const s = synth({ context: { ...PROD_CONTEXT, userPoolEmail: 'cognito' } });
    const [, pool] = only(resources(s.template, 'AWS::Cognito::UserPool'), 'user pool');
    assert.notEqual(pool.Properties!.EmailConfiguration?.EmailSendingAccount, 'DEVELOPER');
    Annotations.fromStack(s.stack).hasWarning('*', Match.stringLikeRegexp("Cognito's default sender"));
  });

  test('the five triggers go to cognito-triggers, pre-token-generation as V2_0', () => {
    const s = stage('dev');
    const arn = { 'Fn::GetAtt': [functionLogicalId(s, 'cognito-triggers'), 'Arn'] };
    s.template.hasResourceProperties('AWS::Cognito::UserPool', {
      LambdaConfig: {
        PreSignUp: arn,
        PostConfirmation: arn,
        PostAuthentication: arn,
        CustomMessage: arn,
        PreTokenGenerationConfig: { LambdaArn: arn, LambdaVersion: 'V2_0' },
      },
    });
  });

  test('Cognito may invoke the triggers function', () => {
    const s = stage('dev');
    const perms = Object.values(resources(s.template, 'AWS::Lambda::Permission')).filter(
      (p) =>
        p.Properties!.Principal === 'cognito-idp.amazonaws.com' &&
        JSON.stringify(p.Properties!.FunctionName).includes(functionLogicalId(s, 'cognito-triggers')),
    );
    assert.ok(perms.length >= 1, 'no lambda permission for cognito-idp');
  });

  test('a feature plan that supports V2 pre-token-generation (Essentials by default, Plus with threat protection by context)', () => {
    stage('dev').template.hasResourceProperties('AWS::Cognito::UserPool', { UserPoolTier: 'ESSENTIALS' });
    synth({ context: { cognitoFeaturePlan: 'plus' } }).template.hasResourceProperties('AWS::Cognito::UserPool', {
      UserPoolTier: 'PLUS',
      UserPoolAddOns: { AdvancedSecurityMode: 'ENFORCED' },
    });
  });

  test('app client: users can write only standard attributes, nothing naming a tenant or role', () => {
    const [, client] = only(resources(stage('dev').template, 'AWS::Cognito::UserPoolClient'), 'app client');
    const writable = client.Properties!.WriteAttributes as string[];
    assert.ok(writable.length > 0);
    for (const attr of writable) {
      assert.ok(!attr.startsWith('custom:'), `${attr} is a custom attribute`);
      assert.ok(!/org|tenant|role|group|plan|admin/i.test(attr), `${attr} names a tenant or role`);
    }
    assert.deepEqual([...writable].sort(), ['email', 'name']);
  });

  test('app client: no user-existence errors, no client secret (SPA), SRP sign-in, no OAuth', () => {
    stage('dev').template.hasResourceProperties('AWS::Cognito::UserPoolClient', {
      PreventUserExistenceErrors: 'ENABLED',
      GenerateSecret: false,
      ExplicitAuthFlows: Match.arrayWith(['ALLOW_USER_SRP_AUTH']),
      AllowedOAuthFlowsUserPoolClient: false,
    });
  });

  test('the platform-admin group exists', () => {
    stage('dev').template.hasResourceProperties('AWS::Cognito::UserPoolGroup', { GroupName: 'platform-admin' });
  });

  test('prod: the user pool has deletion protection and is retained; dev: deleted', () => {
    stage('prod').template.hasResourceProperties('AWS::Cognito::UserPool', { DeletionProtection: 'ACTIVE' });
    stage('prod').template.hasResource('AWS::Cognito::UserPool', { DeletionPolicy: 'Retain' });
    stage('dev').template.hasResourceProperties('AWS::Cognito::UserPool', { DeletionProtection: 'INACTIVE' });
    stage('dev').template.hasResource('AWS::Cognito::UserPool', { DeletionPolicy: 'Delete' });
  });
});

// ---- REST API --------------------------------------------------------------------------------
describe('REST API', () => {
  const manifest = loadRouteManifest();

  for (const st of STAGES) {
    test(`${st}: every route of routes.json exists, integrated (Lambda proxy) with its function`, () => {
      const s = stage(st);
      const methods = methodsByRoute(s.template);
      for (const route of manifest.routes) {
        const m = methods.get(`${route.method} ${route.path}`);
        assert.ok(m, `missing ${route.method} ${route.path}`);
        assert.equal(m.Properties!.Integration.Type, 'AWS_PROXY', `${route.method} ${route.path}`);
        assert.ok(
          JSON.stringify(m.Properties!.Integration.Uri).includes(`"${functionLogicalId(s, route.function)}"`),
          `${route.method} ${route.path} is not integrated with ${route.function}`,
        );
        assert.equal(m.Properties!.OperationName, route.operationId);
      }
    });

    test(`${st}: the Cognito authorizer guards every route but GET /health, the public ones (and CORS preflights)`, () => {
      const t = stage(st).template;
      const [authorizerId, authorizer] = only(resources(t, 'AWS::ApiGateway::Authorizer'), 'authorizer');
      assert.equal(authorizer.Properties!.Type, 'COGNITO_USER_POOLS');
      const open = new Set(manifest.routes.filter((r) => r.public === true).map((r) => `${r.method} ${r.path}`));
      for (const [key, m] of methodsByRoute(t)) {
        if (key === 'GET /health' || key.startsWith('OPTIONS ')) continue;
        if (open.has(key)) {
          assert.equal(m.Properties!.AuthorizationType, 'NONE', key);
          assert.equal(m.Properties!.AuthorizerId, undefined, key);
          continue;
        }
        assert.equal(m.Properties!.AuthorizationType, 'COGNITO_USER_POOLS', key);
        assert.deepEqual(m.Properties!.AuthorizerId, { Ref: authorizerId }, key);
      }
    });
  }

  test('no method beyond the routes, GET /health and the CORS preflights', () => {
    const methods = [...methodsByRoute(stage('dev').template).keys()].filter((k) => !k.startsWith('OPTIONS '));
    assert.equal(methods.length, manifest.routes.length + 1);
  });

  test('GET /health is unauthenticated and answers 200 from a mock integration', () => {
    const m = methodsByRoute(stage('dev').template).get('GET /health');
    assert.ok(m);
    assert.equal(m.Properties!.AuthorizationType, 'NONE');
    assert.equal(m.Properties!.Integration.Type, 'MOCK');
    assert.equal(m.Properties!.Integration.IntegrationResponses[0].StatusCode, '200');
  });

  test('request validation: a validator (parameters and body) on every route, path parameters required', () => {
    const t = stage('dev').template;
    const [validatorId] = only(
      Object.fromEntries(
        Object.entries(resources(t, 'AWS::ApiGateway::RequestValidator')).filter(
          ([, v]) => v.Properties!.ValidateRequestParameters === true && v.Properties!.ValidateRequestBody === true,
        ),
      ),
      'request validator',
    );
    const methods = methodsByRoute(t);
    for (const route of manifest.routes) {
      const m = methods.get(`${route.method} ${route.path}`)!;
      assert.deepEqual(m.Properties!.RequestValidatorId, { Ref: validatorId });
      for (const p of route.path.matchAll(/\{([^}]+)\}/g)) {
        assert.equal(m.Properties!.RequestParameters[`method.request.path.${p[1]}`], true, `${route.path}: ${p[1]}`);
      }
    }
  });

  test('stage throttling defaults: rate 100, burst 200', () => {
    stage('dev').template.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: Match.arrayWith([
        Match.objectLike({ HttpMethod: '*', ResourcePath: '/*', ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 }),
      ]),
    });
  });

  test('stage throttling is configurable by context', () => {
    synth({ context: { throttleRateLimit: '7', throttleBurstLimit: '9' } }).template.hasResourceProperties(
      'AWS::ApiGateway::Stage',
      { MethodSettings: Match.arrayWith([Match.objectLike({ ThrottlingRateLimit: 7, ThrottlingBurstLimit: 9 })]) },
    );
  });

  test('access logs go to a log group, one JSON object per request', () => {
    const t = stage('dev').template;
    const [stageId, apiStage] = only(resources(t, 'AWS::ApiGateway::Stage'), 'stage');
    const setting = apiStage.Properties!.AccessLogSetting;
    assert.ok(setting, `${stageId} has no access logs`);
    const logGroupId = stage('dev').stack.getLogicalId(stage('dev').stack.apiAccessLogs.node.defaultChild as any);
    assert.ok(JSON.stringify(setting.DestinationArn).includes(logGroupId));
    const format = JSON.parse(setting.Format);
    assert.equal(format.requestId, '$context.requestId');
    assert.equal(format.status, '$context.status');
  });

  test('prod: X-Ray tracing on the API stage and every function by default', () => {
    const t = stage('prod').template;
    t.hasResourceProperties('AWS::ApiGateway::Stage', { TracingEnabled: true });
    // every function of functions.json (CDK's deploy-time bucket-notification handler is not traced)
    for (const [id, fn] of Object.entries(resources(t, 'AWS::Lambda::Function'))) {
      if (isCdkHandler(id)) continue;
      assert.deepEqual(fn.Properties!.TracingConfig, { Mode: 'Active' }, id);
    }
  });

  test('tracing is off by default and on with context tracing=true', () => {
    stage('dev').template.hasResourceProperties('AWS::ApiGateway::Stage', { TracingEnabled: false });
    const t = synth({ context: { tracing: 'true' } }).template;
    t.hasResourceProperties('AWS::ApiGateway::Stage', { TracingEnabled: true });
    t.hasResourceProperties('AWS::Lambda::Function', { TracingConfig: { Mode: 'Active' } });
  });

  test('an alarm on API 5xx responses', () => {
    stage('dev').template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway',
      MetricName: '5XXError',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });
});

// ---- functions -------------------------------------------------------------------------------
describe('functions', () => {
  test('provided.al2023 on arm64 with handler bootstrap, every function', () => {
    const fns = resources(stage('dev').template, 'AWS::Lambda::Function');
    const ours = Object.entries(fns).filter(([id]) => !isCdkHandler(id));
    assert.equal(ours.length, stage('dev').stack.functions.size);
    for (const [id, fn] of ours) {
      assert.equal(fn.Properties!.Runtime, 'provided.al2023', id);
      assert.deepEqual(fn.Properties!.Architectures, ['arm64'], id);
      assert.equal(fn.Properties!.Handler, 'bootstrap', id);
    }
  });

  test('memory and timeout come from functions.json (HTTP 256 MB/10 s, triggers 128 MB/5 s, purge 256 MB/300 s)', () => {
    const s = stage('dev');
    for (const [name, { config }] of s.stack.functions) {
      const fn = resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, name)];
      assert.equal(fn.Properties!.MemorySize, config.memoryMb, name);
      assert.equal(fn.Properties!.Timeout, config.timeoutSeconds, name);
      assert.ok(config.sizingReason.length > 20, `${name}: state why`);
    }
    const registry = new Map(loadFunctionRegistry().functions.map((f) => [f.name, f]));
    assert.equal(registry.get('organizations')!.memoryMb, 256);
    assert.equal(registry.get('organizations')!.timeoutSeconds, 10);
    assert.equal(registry.get('cognito-triggers')!.memoryMb, 128);
    assert.equal(registry.get('cognito-triggers')!.timeoutSeconds, 5);
    assert.equal(registry.get('org-purge')!.memoryMb, 256);
    assert.equal(registry.get('org-purge')!.timeoutSeconds, 300);
  });

  test('environment: TABLE_NAME, CURSOR_SECRET_ARN, APP_URL, RUST_LOG=info everywhere; USER_POOL_ID, SES_FROM_ADDRESS, SES_CONFIGURATION_SET, API_URL, UPLOAD_BUCKET and the vector buckets as functions.json says', () => {
    const s = stage('prod');
    const bucketId = s.stack.getLogicalId(s.stack.uploadBucket.node.defaultChild as any);
    const tableId = s.stack.getLogicalId(s.stack.table.node.defaultChild as any);
    const secretId = s.stack.getLogicalId(s.stack.cursorSecret.node.defaultChild as any);
    const poolId = s.stack.getLogicalId(s.stack.userPool.node.defaultChild as any);
    for (const [name, { config }] of s.stack.functions) {
      const env = resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, name)].Properties!.Environment.Variables;
      assert.deepEqual(env.TABLE_NAME, { Ref: tableId }, name);
      assert.deepEqual(env.CURSOR_SECRET_ARN, { Ref: secretId }, name);
      assert.equal(env.APP_URL, 'https://app.example.com', name);
      assert.equal(env.RUST_LOG, 'info', name);
      if (config.environment.userPoolId) assert.deepEqual(env.USER_POOL_ID, { Ref: poolId }, name);
      else assert.equal(env.USER_POOL_ID, undefined, name);
      if (config.environment.sesFromAddress) assert.equal(env.SES_FROM_ADDRESS, 'no-reply@example.com', name);
      else assert.equal(env.SES_FROM_ADDRESS, undefined, `${name} sends no mail`);
      assert.equal(env.SES_CONFIGURATION_SET !== undefined, config.environment.sesConfigurationSet, name);
      assert.equal(env.API_URL !== undefined, config.environment.apiUrl, name);
      if (config.environment.uploadBucket) assert.deepEqual(env.UPLOAD_BUCKET, { Ref: bucketId }, name);
      else assert.equal(env.UPLOAD_BUCKET, undefined, name);
      if (config.environment.vectorBuckets) assert.deepEqual([env.VECTOR_BUCKET_PREFIX, env.VECTOR_BUCKETS], ['tenantry-prod-vectors', '1'], name);
      else assert.deepEqual([env.VECTOR_BUCKET_PREFIX, env.VECTOR_BUCKETS], [undefined, undefined], name);
    }
    // today: invites and notifications send mail; notifications alone names the configuration set
    // and links to the API itself (one-click unsubscribe)
    const withVar = (v: string) =>
      [...s.stack.functions.keys()].filter((name) => resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, name)].Properties!.Environment.Variables[v] !== undefined).sort();
    assert.deepEqual(withVar('SES_FROM_ADDRESS'), ['invites', 'notifications']);
    assert.deepEqual(withVar('SES_CONFIGURATION_SET').sort(), ['invites', 'notifications']);
    assert.deepEqual(withVar('API_URL'), ['notifications']);
    // the files function (presigned uploads and downloads, processing), chat (reads the extracted
    // text it ingests), exports (copies files into an org's export) and org-purge (deletes an
    // org's objects) name the upload bucket
    assert.deepEqual(withVar('UPLOAD_BUCKET'), ['chat', 'exports', 'files', 'org-purge']);
    // exports alone names the exports bucket, and its own work queue
    const exportBucketId = s.stack.getLogicalId(s.stack.exportBucket!.node.defaultChild as any);
    assert.deepEqual(withVar('EXPORT_BUCKET'), ['exports']);
    assert.deepEqual(
      resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, 'exports')].Properties!.Environment.Variables.EXPORT_BUCKET,
      { Ref: exportBucketId },
    );
    assert.deepEqual(withVar('QUEUE_URL_WORK'), ['exports']);
    // chat (its orgs' indexes) and org-purge (deletes a purged org's index) the vector buckets
    assert.deepEqual(withVar('VECTOR_BUCKET_PREFIX'), ['chat', 'org-purge']);
    assert.deepEqual(withVar('VECTOR_BUCKETS'), ['chat', 'org-purge']);
  });

  test('UPLOAD_BUCKET follows environment.uploadBucket, not the S3 source', () => {
    const files = loadFunctionRegistry().functions.find((f) => f.name === 'files')!;
    const s = synth({
      functions: registryWith({ ...files, environment: { ...files.environment, uploadBucket: false }, permissions: { ...files.permissions, s3: [] } }),
    });
    const env = resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, 'files')].Properties!.Environment.Variables;
    assert.equal(env.UPLOAD_BUCKET, undefined);
    assert.ok(s.stack.functions.get('files')!.uploadQueue, 'the S3 source is still wired');
  });

  test('no secret value in any environment: only the secret ARN, no dynamic references', () => {
    for (const st of STAGES) {
      for (const fn of Object.values(resources(stage(st).template, 'AWS::Lambda::Function'))) {
        const env = fn.Properties!.Environment?.Variables ?? {};
        const text = JSON.stringify(env);
        assert.ok(!text.includes('{{resolve:'), text);
        for (const key of Object.keys(env)) {
          assert.ok(!/SECRET|PASSWORD|TOKEN|KEY/.test(key) || key.endsWith('_ARN'), `${key} looks like a secret value`);
        }
      }
    }
  });

  test('the cursor secret is generated by Secrets Manager', () => {
    stage('dev').template.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: Match.objectLike({ PasswordLength: 64 }),
    });
  });

  test('an errors alarm and a throttles alarm per function', () => {
    const s = stage('dev');
    const alarms = Object.values(resources(s.template, 'AWS::CloudWatch::Alarm'));
    for (const name of s.stack.functions.keys()) {
      for (const metric of ['Errors', 'Throttles']) {
        const found = alarms.some(
          (a) =>
            a.Properties!.MetricName === metric &&
            a.Properties!.Namespace === 'AWS/Lambda' &&
            a.Properties!.Threshold === 0 &&
            a.Properties!.ComparisonOperator === 'GreaterThanThreshold' &&
            JSON.stringify(a.Properties!.Dimensions).includes(`"${functionLogicalId(s, name)}"`),
        );
        assert.ok(found, `${name}: no ${metric} > 0 alarm`);
      }
    }
  });
});

describe('reserved concurrency (lib/functions.ts)', () => {
  const reserved = (t: ReturnType<typeof stage>['template'], s: ReturnType<typeof stage>) =>
    new Map(
      [...s.stack.functions.keys()].map((name) => [
        name,
        resources(t, 'AWS::Lambda::Function')[functionLogicalId(s, name)].Properties!.ReservedConcurrentExecutions as number | undefined,
      ]),
    );

  test('prod: every function has its ceiling from the policy', () => {
    const s = stage('prod');
    for (const [name, n] of reserved(s.template, s)) {
      assert.equal(n, RESERVED_CONCURRENCY[name] ?? DEFAULT_RESERVED_CONCURRENCY, name);
    }
  });

  test('the policy names only functions of functions.json and leaves 100 of a 1000 account unreserved', () => {
    const names = loadFunctionRegistry().functions.map((f) => f.name);
    for (const name of Object.keys(RESERVED_CONCURRENCY)) assert.ok(names.includes(name), `${name} is not in functions.json`);
    const total = names.reduce((n, name) => n + (RESERVED_CONCURRENCY[name] ?? DEFAULT_RESERVED_CONCURRENCY), 0);
    assert.ok(total <= 900, `${total}`);
  });

  test('dev: off by default (new accounts often have a concurrency limit of 10); on by context', () => {
    const dev = stage('dev');
    for (const [name, n] of reserved(dev.template, dev)) assert.equal(n, undefined, name);
    const on = synth({ context: { reservedConcurrency: 'on' } });
    assert.equal(reserved(on.template, on).get('organizations'), RESERVED_CONCURRENCY.organizations);
  });

  test('prod: off by context (reservedConcurrency=off)', () => {
    const s = synth({ context: { ...PROD_CONTEXT, reservedConcurrency: 'off' } });
    for (const [name, n] of reserved(s.template, s)) assert.equal(n, undefined, name);
  });

  test('per-function numbers by context; the rest keep the policy', () => {
    for (const value of ['organizations=7,org-purge=3', '{"organizations":7,"org-purge":3}']) {
      const s = synth({ context: { ...PROD_CONTEXT, reservedConcurrency: value } });
      const r = reserved(s.template, s);
      assert.equal(r.get('organizations'), 7, value);
      assert.equal(r.get('org-purge'), 3, value);
      assert.equal(r.get('invites'), RESERVED_CONCURRENCY.invites, value);
    }
  });

  test('refused: an unknown function, a number that is not positive, more than the account allows', () => {
    assert.throws(() => synth({ context: { ...PROD_CONTEXT, reservedConcurrency: 'billing=5' } }), /"billing", which infra\/functions\.json does not declare/);
    assert.throws(() => synth({ context: { ...PROD_CONTEXT, reservedConcurrency: 'organizations=-1' } }), /positive integer/);
    assert.throws(() => synth({ context: { ...PROD_CONTEXT, reservedConcurrency: 'organizations' } }), /function=number/);
    const total = loadFunctionRegistry().functions.reduce((n, f) => n + (RESERVED_CONCURRENCY[f.name] ?? DEFAULT_RESERVED_CONCURRENCY), 0);
    assert.ok(total > 100, `${total}`);
    assert.throws(
      () => synth({ context: { ...PROD_CONTEXT, accountConcurrencyLimit: '200' } }),
      new RegExp(`reserve ${total} in total, but an account limit of 200 .*allows at most 100`),
    );
    // the smallest limit that fits them is accepted
    assert.doesNotThrow(() => synth({ context: { ...PROD_CONTEXT, accountConcurrencyLimit: String(total + 100) } }));
  });
});

// ---- IAM -------------------------------------------------------------------------------------
describe('IAM: one role per function, only the actions it uses', () => {
  const everything = synth({
    context: { stage: 'prod', appUrl: 'https://app.example.com', allowedOrigins: 'https://app.example.com', mailDomain: 'example.com', tracing: 'true' },
    functions: allSourcesRegistry(),
  });

  test('each function has its own role', () => {
    for (const s of [stage('dev'), everything]) {
      const roles = [...s.stack.functions.values()].map((f) => roleLogicalId(s, f.name));
      assert.equal(new Set(roles).size, roles.length);
      for (const [name] of s.stack.functions) {
        const fn = resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, name)];
        assert.deepEqual(fn.Properties!.Role, { 'Fn::GetAtt': [roleLogicalId(s, name), 'Arn'] }, name);
      }
    }
  });

  test('no role uses AWS managed policies (function roles)', () => {
    const s = everything;
    for (const name of s.stack.functions.keys()) {
      const role = resources(s.template, 'AWS::IAM::Role')[roleLogicalId(s, name)];
      assert.equal(role.Properties!.ManagedPolicyArns, undefined, name);
    }
  });

  test('no dynamodb:Scan and no wildcard action in any policy', () => {
    for (const s of [stage('dev'), stage('prod'), everything]) {
      for (const policy of Object.values(resources(s.template, 'AWS::IAM::Policy'))) {
        for (const st of policy.Properties!.PolicyDocument.Statement) {
          for (const action of ([] as string[]).concat(st.Action)) {
            assert.notEqual(action.toLowerCase(), 'dynamodb:scan');
            assert.ok(!action.includes('*'), `wildcard action ${action}`);
          }
        }
      }
    }
  });

  test('organizations: exactly the table actions it uses, Query also on the indexes', () => {
    const s = stage('dev');
    const stmts = roleStatements(s.template, roleLogicalId(s, 'organizations'));
    const table = stmts.find((x) => x.Sid === 'Table');
    assert.deepEqual([...table.Action].sort(), [
      'dynamodb:BatchGetItem',
      'dynamodb:ConditionCheckItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ]);
    const indexes = stmts.find((x) => x.Sid === 'TableIndexes');
    assert.equal(indexes.Action, 'dynamodb:Query');
  });

  test('dynamodb:Query on each index of table.json by name (no index/* wildcard), for exactly the functions that Query', () => {
    const def = loadTableDefinition();
    assert.ok(def.globalSecondaryIndexes.length > 0);
    for (const s of [stage('dev'), stage('prod'), everything]) {
      const tableId = s.stack.getLogicalId(s.stack.table.node.defaultChild as any);
      for (const [name, { config }] of s.stack.functions) {
        const stmts = roleStatements(s.template, roleLogicalId(s, name));
        const indexes = stmts.filter((x) => JSON.stringify(x.Resource).includes('/index/') && JSON.stringify(x.Action).includes('dynamodb:'));
        if (config.permissions.dynamodb.includes('Query')) {
          assert.equal(indexes.length, 1, name);
          assert.equal(indexes[0].Sid, 'TableIndexes');
          assert.equal(indexes[0].Action, 'dynamodb:Query', name);
          assert.deepEqual(indexes[0].Resource, def.globalSecondaryIndexes.map((g) => indexArn(tableId, g.indexName)), name);
        } else {
          assert.equal(indexes.length, 0, `${name} does not Query`);
        }
      }
      // (the vector buckets' index/* is S3 Vectors': one index per org, see the S3 Vectors test)
      for (const policy of Object.values(resources(s.template, 'AWS::IAM::Policy'))) {
        for (const st of policy.Properties!.PolicyDocument.Statement) {
          if (JSON.stringify(st.Action).includes('dynamodb:')) assert.ok(!JSON.stringify(st.Resource).includes('/index/*'), 'no table index wildcard');
        }
      }
    }
  });

  test('projects: the HTTP table actions plus BatchWriteItem (it deletes comments and history in batches)', () => {
    const s = stage('dev');
    const table = roleStatements(s.template, roleLogicalId(s, 'projects')).find((x) => x.Sid === 'Table');
    assert.deepEqual([...table.Action].sort(), [
      'dynamodb:BatchWriteItem',
      'dynamodb:ConditionCheckItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ]);
  });

  test('invites: no batch actions (it calls none)', () => {
    const s = stage('dev');
    const actions = roleActions(s.template, roleLogicalId(s, 'invites'));
    assert.ok(!actions.some((a) => a.startsWith('dynamodb:Batch')), actions.join());
    assert.ok(actions.includes('dynamodb:Query') && actions.includes('dynamodb:ConditionCheckItem'), actions.join());
  });

  test('cognito-triggers: GetItem, PutItem, UpdateItem, Query only; no secret, no mail', () => {
    const s = stage('dev');
    const actions = roleActions(s.template, roleLogicalId(s, 'cognito-triggers'));
    const dynamo = [...new Set(actions.filter((a) => a.startsWith('dynamodb:')))].sort();
    assert.deepEqual(dynamo, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    assert.ok(!actions.some((a) => a.startsWith('secretsmanager:') || a.startsWith('ses:')), actions.join());
  });

  test('transactions emit no IAM action of their own (DynamoDB authorizes their parts)', () => {
    for (const s of [stage('dev'), everything]) {
      for (const policy of Object.values(resources(s.template, 'AWS::IAM::Policy'))) {
        assert.ok(!JSON.stringify(policy).includes('dynamodb:Transact'));
      }
    }
  });

  test('secretsmanager:GetSecretValue on the cursor secret only, for the functions whose permissions say readCursorSecret', () => {
    for (const s of [stage('dev'), everything]) {
      const secretId = s.stack.getLogicalId(s.stack.cursorSecret.node.defaultChild as any);
      for (const [name, { config }] of s.stack.functions) {
        const stmts = roleStatements(s.template, roleLogicalId(s, name)).filter((x) =>
          JSON.stringify(x.Action).includes('secretsmanager:'),
        );
        if (config.permissions.readCursorSecret) {
          assert.equal(stmts.length, 1, name);
          assert.equal(stmts[0].Action, 'secretsmanager:GetSecretValue');
          assert.deepEqual(stmts[0].Resource, { Ref: secretId });
        } else {
          assert.equal(stmts.length, 0, `${name} must not read the secret`);
        }
      }
    }
  });

  test('ses:SendEmail only in the roles whose permissions say sesSendEmail, on the SES identity and (when it names it) the configuration set only', () => {
    for (const s of [stage('dev'), stage('prod'), everything]) {
      const identityArn = s.stack.resolve(s.stack.mailIdentity.emailIdentityArn);
      const setId = s.stack.getLogicalId(s.stack.mailConfigurationSet!.node.defaultChild as any);
      const setArn = {
        'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ses:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':configuration-set/', { Ref: setId }]],
      };
      assert.deepEqual(s.stack.resolve(s.stack.mailConfigurationSetArn), setArn);
      for (const [name, { config }] of s.stack.functions) {
        const ses = roleStatements(s.template, roleLogicalId(s, name)).filter((x) => JSON.stringify(x.Action).includes('ses:'));
        if (config.permissions.sesSendEmail) {
          assert.equal(ses.length, 1, name);
          assert.equal(ses[0].Action, 'ses:SendEmail', name);
          const expected = config.environment.sesConfigurationSet ? [identityArn, setArn] : [identityArn];
          const actual = ([] as unknown[]).concat(ses[0].Resource);
          assert.deepEqual(
            actual.map((r) => JSON.stringify(r)).sort(),
            expected.map((r) => JSON.stringify(r)).sort(),
            name,
          );
          assert.ok(!JSON.stringify(ses[0].Resource).includes('*'), name);
        } else {
          assert.equal(ses.length, 0, `${name} must not send mail`);
        }
      }
    }
    for (const st of STAGES) {
      const s2 = stage(st);
      const senders = [...s2.stack.functions.keys()].filter(
        (name) => roleStatements(s2.template, roleLogicalId(s2, name)).some((x) => JSON.stringify(x.Action).includes('ses:')),
      );
      assert.deepEqual(senders.sort(), ['invites', 'notifications'], st);
      // both send through the configuration set: their SendEmail covers it
      const setId = s2.stack.getLogicalId(s2.stack.mailConfigurationSet!.node.defaultChild as any);
      for (const name of ['invites', 'notifications']) {
        const sendMail = roleStatements(s2.template, roleLogicalId(s2, name)).find((x) => x.Sid === 'SendMail');
        assert.ok(JSON.stringify(sendMail.Resource).includes(`{"Ref":"${setId}"}`), `${st} ${name}`);
      }
    }
  });

  test('S3: exactly the actions of permissions.s3, on the upload bucket\'s uploads/* and derived/* (ListBucket: the bucket, for those prefixes)', () => {
    for (const s of [stage('dev'), stage('prod'), everything]) {
      const bucketId = s.stack.getLogicalId(s.stack.uploadBucket.node.defaultChild as any);
      const bucketArn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
      const objects = (prefix: string) => JSON.stringify({ 'Fn::Join': ['', [bucketArn, `/${prefix}*`]] });
      for (const [name, { config }] of s.stack.functions) {
        // (the exports bucket's statements are checked on their own, below)
        const stmts = roleStatements(s.template, roleLogicalId(s, name)).filter(
          (x) => JSON.stringify(x.Action).includes('s3:') && !String(x.Sid).startsWith('ExportBucket'),
        );
        const declared = [...config.permissions.s3];
        const objectActions = declared.filter((a) => a !== 's3:ListBucket').sort();
        const granted = stmts.flatMap((x) => ([] as string[]).concat(x.Action)).sort();
        assert.deepEqual(granted, [...declared].sort(), `${name}: exactly the declared S3 actions`);
        for (const st of stmts) {
          assert.equal(st.Effect, 'Allow');
          if (st.Sid === 'UploadBucketObjects') {
            assert.deepEqual(([] as string[]).concat(st.Action).sort(), objectActions, name);
            assert.deepEqual(
              ([] as unknown[]).concat(st.Resource).map((r) => JSON.stringify(r)).sort(),
              [objects('derived/'), objects('uploads/')],
              `${name}: objects under uploads/ and derived/ only`,
            );
            assert.equal(st.Condition, undefined, name);
          } else {
            assert.equal(st.Sid, 'UploadBucketList', name);
            assert.equal(st.Action, 's3:ListBucket', name);
            assert.deepEqual(st.Resource, bucketArn, `${name}: the bucket itself`);
            assert.deepEqual(st.Condition, { StringLike: { 's3:prefix': ['uploads/*', 'derived/*'] } }, name);
          }
        }
      }
    }
    // The repository: files presigns uploads and downloads, reads originals and writes derived
    // objects, deletes both; org-purge lists and deletes an org's objects; chat reads extracted
    // text. Nobody else touches S3,
    // and an S3 source grants nothing by itself (the old implicit ReadUploads grant is gone).
    for (const st of STAGES) {
      const s = stage(st);
      const actions = (name: string) =>
        roleStatements(s.template, roleLogicalId(s, name))
          .filter((x) => JSON.stringify(x.Action).includes('s3:') && !String(x.Sid).startsWith('ExportBucket'))
          .flatMap((x) => ([] as string[]).concat(x.Action))
          .sort();
      assert.deepEqual(actions('files'), ['s3:DeleteObject', 's3:GetObject', 's3:PutObject'], st);
      assert.deepEqual(actions('org-purge'), ['s3:DeleteObject', 's3:ListBucket'], st);
      assert.deepEqual(actions('chat'), ['s3:GetObject'], st);
      // exports copies ready files' checked copies into an org's export
      assert.deepEqual(actions('exports'), ['s3:GetObject'], st);
      for (const name of s.stack.functions.keys()) {
        if (!['files', 'org-purge', 'chat', 'exports'].includes(name)) assert.deepEqual(actions(name), [], `${st} ${name}`);
        assert.ok(!roleStatements(s.template, roleLogicalId(s, name)).some((x) => x.Sid === 'ReadUploads'), name);
      }
      const files = roleStatements(s.template, roleLogicalId(s, 'files')).find((x) => x.Sid === 'UploadBucketObjects');
      assert.ok(!JSON.stringify(files).includes('s3:ListBucket'));
    }
    // an S3 source without permissions.s3 (fixture test-cleanup): no S3 action at all
    const cleanup = roleStatements(everything.template, roleLogicalId(everything, 'test-cleanup'));
    assert.ok(!JSON.stringify(cleanup).includes('"s3:'), JSON.stringify(cleanup));
  });

  test('the exports bucket: exactly permissions.exportBucketS3, objects on its objects, ListBucketMultipartUploads on the bucket; exports alone', () => {
    for (const s of [stage('dev'), stage('prod'), everything]) {
      const bucketId = s.stack.getLogicalId(s.stack.exportBucket!.node.defaultChild as any);
      const bucketArn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
      for (const [name, { config }] of s.stack.functions) {
        const stmts = roleStatements(s.template, roleLogicalId(s, name)).filter((x) => JSON.stringify(x.Resource).includes(bucketId));
        const declared = [...config.permissions.exportBucketS3].sort();
        assert.deepEqual(stmts.flatMap((x) => ([] as string[]).concat(x.Action)).sort(), declared, `${name}: exactly the declared actions`);
        for (const st of stmts) {
          assert.equal(st.Effect, 'Allow', name);
          assert.equal(st.Condition, undefined, name);
          if (st.Sid === 'ExportBucketObjects') {
            assert.ok(!([] as string[]).concat(st.Action).includes('s3:ListBucketMultipartUploads'), name);
            assert.deepEqual(st.Resource, { 'Fn::Join': ['', [bucketArn, '/*']] }, `${name}: the bucket's objects`);
          } else {
            assert.equal(st.Sid, 'ExportBucketUploads', name);
            assert.equal(st.Action, 's3:ListBucketMultipartUploads', name);
            assert.deepEqual(st.Resource, bucketArn, `${name}: the bucket itself`);
          }
        }
      }
    }
    const s = stage('prod');
    const holders = [...s.stack.functions.keys()].filter((name) => roleStatements(s.template, roleLogicalId(s, name)).some((x) => String(x.Sid).startsWith('ExportBucket')));
    assert.deepEqual(holders, ['exports']);
    const exportsActions = roleStatements(s.template, roleLogicalId(s, 'exports'))
      .filter((x) => String(x.Sid).startsWith('ExportBucket'))
      .flatMap((x) => ([] as string[]).concat(x.Action))
      .sort();
    assert.deepEqual(exportsActions, ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListBucketMultipartUploads', 's3:PutObject']);
  });

  test('the exports bucket: private, SSE-S3, TLS only, access-logged, unversioned; exports expire after 7 days, incomplete multipart uploads after 1', () => {
    for (const st of STAGES) {
      const s = stage(st);
      const bucketId = s.stack.getLogicalId(s.stack.exportBucket!.node.defaultChild as any);
      const bucket = resources(s.template, 'AWS::S3::Bucket')[bucketId].Properties!;
      assert.deepEqual(bucket.PublicAccessBlockConfiguration, {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      }, st);
      assert.deepEqual(bucket.BucketEncryption, { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] }, st);
      assert.deepEqual(bucket.OwnershipControls, { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] }, st);
      assert.equal(bucket.VersioningConfiguration, undefined, `${st}: unversioned`);
      assert.equal(bucket.CorsConfiguration, undefined, `${st}: no CORS (downloads follow a presigned link)`);
      assert.deepEqual(bucket.LoggingConfiguration, {
        DestinationBucketName: { Ref: s.stack.getLogicalId(s.stack.accessLogBucket.node.defaultChild as any) },
        LogFilePrefix: 'export-bucket/',
      }, st);
      const rules = bucket.LifecycleConfiguration.Rules;
      assert.deepEqual(
        rules.find((r: any) => r.Id === 'expire-exports'),
        { Id: 'expire-exports', ExpirationInDays: 7, Status: 'Enabled' },
        st,
      );
      assert.deepEqual(
        rules.find((r: any) => r.Id === 'abort-incomplete-multipart-uploads'),
        { Id: 'abort-incomplete-multipart-uploads', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' },
        st,
      );
      assert.equal(rules.length, 2, st);
      // TLS only (and TLS 1.2 at least), in the bucket policy
      const policies = Object.values(resources(s.template, 'AWS::S3::BucketPolicy')).filter((p) => p.Properties!.Bucket.Ref === bucketId);
      assert.equal(policies.length, 1, st);
      const denies = policies[0].Properties!.PolicyDocument.Statement.filter((x: any) => x.Effect === 'Deny');
      assert.ok(denies.some((x: any) => JSON.stringify(x.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } })), st);
      assert.ok(denies.some((x: any) => JSON.stringify(x.Condition).includes('s3:TlsVersion')), st);
    }
    // a registry without a function that uses it: no exports bucket
    const registry = { functions: loadFunctionRegistry().functions.filter((f) => f.name !== 'exports') };
    const without = synth({ functions: registry, routes: { routes: loadRouteManifest().routes.filter((r) => r.function !== 'exports') } });
    assert.equal(without.stack.exportBucket, undefined);
    assert.equal(Object.keys(resources(without.template, 'AWS::S3::Bucket')).length, 2);
  });

  test('Cognito: exactly permissions.cognito (exports: AdminDeleteUser) on the stack\'s user pool only', () => {
    for (const s of [stage('dev'), stage('prod'), everything]) {
      const poolArn = { 'Fn::GetAtt': [s.stack.getLogicalId(s.stack.userPool.node.defaultChild as any), 'Arn'] };
      for (const [name, { config }] of s.stack.functions) {
        const stmts = roleStatements(s.template, roleLogicalId(s, name)).filter((x) => JSON.stringify(x.Action).includes('cognito-idp:'));
        if (config.permissions.cognito.length === 0) {
          assert.deepEqual(stmts, [], `${name} may not act on the user pool`);
          continue;
        }
        assert.equal(stmts.length, 1, name);
        assert.equal(stmts[0].Sid, 'UserPool', name);
        assert.deepEqual(([] as string[]).concat(stmts[0].Action).sort(), [...config.permissions.cognito].sort(), name);
        assert.deepEqual(stmts[0].Resource, poolArn, `${name}: the stack's user pool only`);
      }
    }
    const s = stage('prod');
    const holders = [...s.stack.functions.keys()].filter((name) => roleActions(s.template, roleLogicalId(s, name)).some((a) => a.startsWith('cognito-idp:')));
    assert.deepEqual(holders, ['exports']);
    const stmt = roleStatements(s.template, roleLogicalId(s, 'exports')).find((x) => x.Sid === 'UserPool');
    assert.equal(stmt.Action, 'cognito-idp:AdminDeleteUser');
  });

  test('SQS: a function with permissions.sendToOwnQueues sends to its own queues only (exports: its work queue)', () => {
    for (const s of [stage('dev'), stage('prod'), everything]) {
      for (const [name, f] of s.stack.functions) {
        const stmt = roleStatements(s.template, roleLogicalId(s, name)).find((x) => x.Sid === 'OwnQueues');
        if (!f.config.permissions.sendToOwnQueues) {
          assert.equal(stmt, undefined, name);
          continue;
        }
        assert.equal(stmt.Action, 'sqs:SendMessage', name);
        const own = [...f.queues.values()].map((q) => ({ 'Fn::GetAtt': [s.stack.getLogicalId(q.queue.node.defaultChild as any), 'Arn'] }));
        assert.deepEqual(([] as unknown[]).concat(stmt.Resource), own, name);
      }
    }
    const s = stage('prod');
    const work = s.stack.functions.get('exports')!.queues.get('work')!;
    const queue = resources(s.template, 'AWS::SQS::Queue')[s.stack.getLogicalId(work.queue.node.defaultChild as any)].Properties!;
    assert.equal(queue.VisibilityTimeout, 5400);
    assert.equal(queue.RedrivePolicy.maxReceiveCount, 5);
    assert.deepEqual(queue.RedrivePolicy.deadLetterTargetArn, { 'Fn::GetAtt': [s.stack.getLogicalId(work.deadLetterQueue.node.defaultChild as any), 'Arn'] });
  });

  test('Bedrock: exactly the actions of permissions.bedrock, on exactly the models of bedrockModels, for the functions that list them', () => {
    for (const s of [stage('dev'), stage('prod'), everything]) {
      for (const [name, { config }] of s.stack.functions) {
        const stmts = roleStatements(s.template, roleLogicalId(s, name)).filter((x) => JSON.stringify(x.Action).includes('bedrock:'));
        if (config.permissions.bedrock.length === 0) {
          assert.deepEqual(stmts, [], `${name} may not invoke Bedrock`);
          continue;
        }
        assert.equal(stmts.length, 1, name);
        assert.equal(stmts[0].Sid, 'BedrockModels', name);
        assert.deepEqual(([] as string[]).concat(stmts[0].Action).sort(), [...config.permissions.bedrock].sort(), name);
        assert.deepEqual(
          ([] as unknown[]).concat(stmts[0].Resource).map(asText).sort(),
          config.permissions.bedrockModels.flatMap((id) => expectedModelArns(id)).sort(),
          name,
        );
      }
    }
    // the repository: chat alone, with its models through US inference profiles and the
    // embedding model in the stack's region
    const s = stage('prod');
    const invokers = [...s.stack.functions.keys()].filter((name) => roleActions(s.template, roleLogicalId(s, name)).some((a) => a.startsWith('bedrock:')));
    assert.deepEqual(invokers, ['chat']);
    const resourcesOf = (name: string) =>
      ([] as unknown[]).concat(roleStatements(s.template, roleLogicalId(s, name)).find((x) => x.Sid === 'BedrockModels').Resource).map(asText);
    const chat = resourcesOf('chat');
    assert.ok(chat.includes('arn:<AWS::Partition>:bedrock:<AWS::Region>::foundation-model/amazon.titan-embed-text-v2:0'), chat.join('\n'));
    assert.ok(chat.includes('arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0'));
    assert.ok(chat.includes('arn:<AWS::Partition>:bedrock:*::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0'));
    // no wildcard on a model's or a profile's name
    for (const arn of chat) assert.ok(!/(foundation-model|inference-profile)\/.*\*/.test(arn), arn);
  });

  test('Bedrock: eu., apac. and global. ids are cross-region inference profiles too; a provider\'s id is a model in this region (test fixture)', () => {
    const arns = ([] as unknown[])
      .concat(roleStatements(everything.template, roleLogicalId(everything, 'test-audit')).find((x) => x.Sid === 'BedrockModels').Resource)
      .map(asText)
      .sort();
    assert.deepEqual(
      arns,
      [
        'arn:<AWS::Partition>:bedrock:*::foundation-model/amazon.nova-lite-v1:0',
        'arn:<AWS::Partition>:bedrock:*::foundation-model/anthropic.claude-3-7-sonnet-20250219-v1:0',
        'arn:<AWS::Partition>:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
        'arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/apac.amazon.nova-lite-v1:0',
        'arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/eu.anthropic.claude-3-7-sonnet-20250219-v1:0',
        'arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0',
        'arn:<AWS::Partition>:bedrock:<AWS::Region>::foundation-model/cohere.embed-english-v3',
      ].sort(),
    );
    assert.deepEqual(bedrockResources(['us.a.b-v1:0', 'eu.a.b-v1:0', 'a.b-v1:0']), {
      inferenceProfiles: ['us.a.b-v1:0', 'eu.a.b-v1:0'],
      regionalModels: ['a.b-v1:0'],
      profileModels: ['a.b-v1:0'],
    });
  });

  test('S3 Vectors: exactly the actions of permissions.s3vectors, on the deployment\'s vector buckets and their indexes only', () => {
    for (const s of [stage('dev'), stage('prod'), everything, synth({ context: { stage: 'dev', vectorBuckets: '3' } })]) {
      const names = s.stack.vectorBuckets.map((b) => b.vectorBucketName!);
      assert.ok(names.length > 0);
      const expected = names.flatMap((n) => [
        `arn:<AWS::Partition>:s3vectors:<AWS::Region>:<AWS::AccountId>:bucket/${n}`,
        `arn:<AWS::Partition>:s3vectors:<AWS::Region>:<AWS::AccountId>:bucket/${n}/index/*`,
      ]);
      for (const [name, { config }] of s.stack.functions) {
        const stmts = roleStatements(s.template, roleLogicalId(s, name)).filter((x) => JSON.stringify(x.Action).includes('s3vectors:'));
        if (config.permissions.s3vectors.length === 0) {
          assert.deepEqual(stmts, [], `${name} may not use the vector buckets`);
          continue;
        }
        assert.equal(stmts.length, 1, name);
        assert.equal(stmts[0].Sid, 'VectorIndexes', name);
        assert.deepEqual(([] as string[]).concat(stmts[0].Action).sort(), [...config.permissions.s3vectors].sort(), name);
        assert.deepEqual(([] as unknown[]).concat(stmts[0].Resource).map(asText).sort(), [...expected].sort(), name);
      }
    }
    const s = stage('dev');
    const vectorActions = (name: string) => roleActions(s.template, roleLogicalId(s, name)).filter((a) => a.startsWith('s3vectors:')).sort();
    assert.deepEqual(vectorActions('org-purge'), ['s3vectors:DeleteIndex'], 'a purge deletes the org\'s index, nothing else');
    assert.deepEqual(vectorActions('chat'), [
      's3vectors:CreateIndex',
      's3vectors:DeleteVectors',
      's3vectors:GetIndex',
      's3vectors:GetVectors',
      's3vectors:PutVectors',
      's3vectors:QueryVectors',
    ]);
  });

  test('logs: each role writes to its own function log group only', () => {
    const s = stage('dev');
    for (const [name] of s.stack.functions) {
      const logs = roleStatements(s.template, roleLogicalId(s, name)).find((x) => x.Sid === 'Logs');
      assert.deepEqual([...logs.Action].sort(), ['logs:CreateLogStream', 'logs:PutLogEvents']);
      assert.equal(typeof logs.Resource, 'object', `${name}: log resource must be its log group, not a string`);
      const fn = resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, name)];
      assert.deepEqual(fn.Properties!.LoggingConfig.LogGroup, { Ref: logs.Resource['Fn::GetAtt'][0] });
    }
  });
});

// ---- storage, events, mail, alarms ------------------------------------------------------------
const uploadBucketOf = (st: 'dev' | 'prod') => {
  const s = stage(st);
  return resources(s.template, 'AWS::S3::Bucket')[s.stack.getLogicalId(s.stack.uploadBucket.node.defaultChild as any)];
};

describe('upload bucket', () => {
  for (const st of STAGES) {
    test(`${st}: private (all public access blocked)`, () => {
      stage(st).template.hasResourceProperties('AWS::S3::Bucket', {
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
      });
    });

    test(`${st}: encrypted at rest`, () => {
      stage(st).template.hasResourceProperties('AWS::S3::Bucket', {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
      });
    });

    test(`${st}: TLS enforced (deny aws:SecureTransport=false)`, () => {
      stage(st).template.hasResourceProperties('AWS::S3::BucketPolicy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    });
  }

  // Changed on purpose: versioning is off in every stage now (the files function assumes it: keys
  // are unique per file, processing follows the event's sequencer, a delete must free the quota).
  test('not versioned in either stage; prod retained, dev deleted with its objects', () => {
    for (const st of STAGES) {
      const b = uploadBucketOf(st);
      assert.equal(b.Properties!.VersioningConfiguration, undefined, st);
      assert.ok(!(b.Properties!.LifecycleConfiguration.Rules as any[]).some((r) => r.NoncurrentVersionExpiration), st);
    }
    stage('prod').template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
    stage('prod').template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
    stage('dev').template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
    // Changed on purpose: 3 in dev, the upload bucket, its access-log bucket and the exports bucket.
    stage('dev').template.resourceCountIs('Custom::S3AutoDeleteObjects', 3);
  });

  test('with context bucketVersioning=true: versioned, and noncurrent versions (and lone delete markers) expire after 1 day', () => {
    const s = synth({ context: { ...PROD_CONTEXT, bucketVersioning: 'true' } });
    const b = resources(s.template, 'AWS::S3::Bucket')[s.stack.getLogicalId(s.stack.uploadBucket.node.defaultChild as any)];
    assert.deepEqual(b.Properties!.VersioningConfiguration, { Status: 'Enabled' });
    const rule = (b.Properties!.LifecycleConfiguration.Rules as any[]).find((r) => r.Id === 'expire-noncurrent-versions');
    assert.deepEqual(rule, {
      Id: 'expire-noncurrent-versions',
      NoncurrentVersionExpiration: { NoncurrentDays: 1 },
      ExpiredObjectDeleteMarker: true,
      Status: 'Enabled',
    });
  });

  test('lifecycle: incomplete multipart uploads are aborted after 1 day', () => {
    for (const st of STAGES) {
      const rules = uploadBucketOf(st).Properties!.LifecycleConfiguration.Rules as any[];
      const abort = rules.find((r) => r.Id === 'abort-incomplete-multipart-uploads');
      assert.deepEqual(abort, { Id: 'abort-incomplete-multipart-uploads', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' }, st);
    }
  });

  test('lifecycle: uploads (kept only until processed; downloads serve the checked copy) expire after 1 day, nothing else does', () => {
    for (const st of STAGES) {
      const rules = uploadBucketOf(st).Properties!.LifecycleConfiguration.Rules as any[];
      const expiring = rules.filter((r) => r.ExpirationInDays !== undefined);
      assert.deepEqual(expiring, [{ Id: 'expire-uploads', Prefix: 'uploads/', ExpirationInDays: 1, Status: 'Enabled' }], st);
    }
  });

  test('server access logs go to the access-log bucket, under upload-bucket/', () => {
    for (const st of STAGES) {
      const s = stage(st);
      const bucket = resources(s.template, 'AWS::S3::Bucket')[s.stack.getLogicalId(s.stack.uploadBucket.node.defaultChild as any)];
      const logBucketId = s.stack.getLogicalId(s.stack.accessLogBucket.node.defaultChild as any);
      assert.deepEqual(bucket.Properties!.LoggingConfiguration, {
        DestinationBucketName: { Ref: logBucketId },
        LogFilePrefix: UPLOAD_ACCESS_LOG_PREFIX,
      });
    }
  });

  // Changed on purpose: the files function subscribes to uploads (through its queue).
  test('its notifications: new objects under uploads/ to the files function\'s queue, nothing else', () => {
    for (const st of STAGES) {
      const s = stage(st);
      const [, n] = only(resources(s.template, 'Custom::S3BucketNotifications'), 'notification configuration');
      const queueId = s.stack.getLogicalId(s.stack.functions.get('files')!.uploadQueue!.queue.node.defaultChild as any);
      assert.deepEqual(n.Properties!.BucketName, { Ref: s.stack.getLogicalId(s.stack.uploadBucket.node.defaultChild as any) });
      assert.deepEqual(n.Properties!.NotificationConfiguration, {
        QueueConfigurations: [
          {
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'uploads/' }] } },
            QueueArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
          },
        ],
      }, st);
      // The wiring of every kind of S3 source: test/functions.test.ts.
    }
  });
});

describe('malware protection (GuardDuty Malware Protection for S3, context malwareProtection)', () => {
  const on = synth({ context: { ...PROD_CONTEXT, malwareProtection: 'true' } });
  const envOf = (s: ReturnType<typeof synth>, name: string) =>
    resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, name)].Properties!.Environment.Variables;
  const bucketId = (s: ReturnType<typeof synth>) => s.stack.getLogicalId(s.stack.uploadBucket.node.defaultChild as any);

  test('off by default in both stages: no plan, no GuardDuty role, no scan-result rule, MALWARE_PROTECTION=false', () => {
    for (const st of STAGES) {
      const s = stage(st);
      assert.equal(s.stack.settings.malwareProtection, false);
      s.template.resourceCountIs('AWS::GuardDuty::MalwareProtectionPlan', 0);
      assert.equal(s.stack.malwareProtectionPlan, undefined);
      assert.equal(s.stack.malwareScanRule, undefined);
      const text = JSON.stringify(s.template.toJSON());
      assert.ok(!text.includes('malware-protection-plan.guardduty.amazonaws.com'), st);
      assert.ok(!text.includes('aws.guardduty'), st);
      assert.equal(s.stack.functions.get('files')!.malwareScanFailures, undefined);
      assert.equal(envOf(s, 'files').MALWARE_PROTECTION, 'false', st);
      // S3's EventBridge notifications stay off
      const [, n] = only(resources(s.template, 'Custom::S3BucketNotifications'), 'notification configuration');
      assert.equal(n.Properties!.NotificationConfiguration.EventBridgeConfiguration, undefined, st);
    }
  });

  test('on: a plan protecting the upload bucket\'s uploads/, tagging scanned objects, with its own role (created first)', () => {
    const [planId, plan] = only(resources(on.template, 'AWS::GuardDuty::MalwareProtectionPlan'), 'protection plan');
    const roleId = on.stack.getLogicalId(on.stack.malwareProtectionRole!.node.defaultChild as any);
    assert.deepEqual(plan.Properties!.ProtectedResource, { S3Bucket: { BucketName: { Ref: bucketId(on) }, ObjectPrefixes: ['uploads/'] } });
    assert.deepEqual(plan.Properties!.Actions, { Tagging: { Status: 'ENABLED' } });
    assert.deepEqual(plan.Properties!.Role, { 'Fn::GetAtt': [roleId, 'Arn'] });
    const policyId = on.stack.getLogicalId(on.stack.malwareProtectionRole!.node.tryFindChild('DefaultPolicy')!.node.defaultChild as any);
    const dependsOn = ([] as string[]).concat(plan.DependsOn ?? []);
    assert.ok(dependsOn.includes(policyId), `${planId} must wait for the role's policy`);
    // and for the bucket's notification configuration (EventBridge on), which it would otherwise race
    const notificationsId = Object.keys(resources(on.template, 'Custom::S3BucketNotifications'))[0];
    assert.ok(dependsOn.includes(notificationsId), dependsOn.join());
  });

  test('on: the role GuardDuty assumes holds the permissions AWS documents, on this bucket only', () => {
    const roleId = on.stack.getLogicalId(on.stack.malwareProtectionRole!.node.defaultChild as any);
    const role = resources(on.template, 'AWS::IAM::Role')[roleId];
    assert.deepEqual(role.Properties!.AssumeRolePolicyDocument.Statement, [
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'malware-protection-plan.guardduty.amazonaws.com' } },
    ]);
    assert.equal(role.Properties!.ManagedPolicyArns, undefined);
    const bucketArn = { 'Fn::GetAtt': [bucketId(on), 'Arn'] };
    const objects = (key: string) => ({ 'Fn::Join': ['', [bucketArn, `/${key}`]] });
    const managedRule = {
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':rule/DO-NOT-DELETE-AmazonGuardDutyMalwareProtectionS3*']],
    };
    const bySid = new Map(roleStatements(on.template, roleId).map((x) => [x.Sid, x]));
    const expected: Record<string, [string[], unknown, unknown?]> = {
      AllowManagedRuleToSendS3EventsToGuardDuty: [
        ['events:DeleteRule', 'events:PutRule', 'events:PutTargets', 'events:RemoveTargets'],
        managedRule,
        { StringLike: { 'events:ManagedBy': 'malware-protection-plan.guardduty.amazonaws.com' } },
      ],
      AllowGuardDutyToMonitorEventBridgeManagedRule: [['events:DescribeRule', 'events:ListTargetsByRule'], managedRule],
      AllowPostScanTag: [['s3:GetObjectTagging', 's3:GetObjectVersionTagging', 's3:PutObjectTagging', 's3:PutObjectVersionTagging'], objects('*')],
      AllowEnableS3EventBridgeEvents: [['s3:GetBucketNotification', 's3:PutBucketNotification'], bucketArn],
      AllowPutValidationObject: [['s3:PutObject'], objects('malware-protection-resource-validation-object')],
      AllowCheckBucketOwnership: [['s3:ListBucket'], bucketArn],
      AllowMalwareScan: [['s3:GetObject', 's3:GetObjectVersion'], objects('*')],
    };
    assert.deepEqual([...bySid.keys()].sort(), Object.keys(expected).sort());
    for (const [sid, [actions, resource, condition]] of Object.entries(expected)) {
      const st = bySid.get(sid);
      assert.equal(st.Effect, 'Allow', sid);
      assert.deepEqual(([] as string[]).concat(st.Action).sort(), actions, sid);
      assert.deepEqual(st.Resource, resource, sid);
      assert.deepEqual(st.Condition, condition, sid);
    }
    // no KMS: the bucket is SSE-S3
    assert.ok(!JSON.stringify([...bySid.values()]).includes('kms:'));
  });

  test('on: a rule on the default bus for this bucket\'s scan results, targeting files with retries and a dead-letter queue', () => {
    const files = on.stack.functions.get('files')!;
    const ruleId = on.stack.getLogicalId(on.stack.malwareScanRule!.node.defaultChild as any);
    const rule = resources(on.template, 'AWS::Events::Rule')[ruleId].Properties!;
    assert.equal(rule.EventBusName, undefined, 'the default bus (GuardDuty publishes there only)');
    assert.deepEqual(rule.EventPattern, {
      source: ['aws.guardduty'],
      'detail-type': ['GuardDuty Malware Protection Object Scan Result'],
      detail: { s3ObjectDetails: { bucketName: [{ Ref: bucketId(on) }] } },
    });
    const dlqId = on.stack.getLogicalId(files.malwareScanFailures!.node.defaultChild as any);
    assert.deepEqual(rule.Targets, [
      {
        Id: 'Target0',
        Arn: { 'Fn::GetAtt': [functionLogicalId(on, 'files'), 'Arn'] },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlqId, 'Arn'] } },
        RetryPolicy: { MaximumRetryAttempts: MALWARE_SCAN_RETRY_ATTEMPTS, MaximumEventAgeInSeconds: MALWARE_SCAN_MAX_EVENT_AGE.toSeconds() },
      },
    ]);
    // the dead-letter queue: written by this rule only, alarmed
    const policy = Object.values(resources(on.template, 'AWS::SQS::QueuePolicy')).find((p) => JSON.stringify(p.Properties!.Queues).includes(`"${dlqId}"`))!;
    const allows = (policy.Properties!.PolicyDocument.Statement as any[]).filter((x) => x.Effect === 'Allow');
    assert.deepEqual(allows.map((x) => [x.Principal, x.Action, x.Condition]), [
      [{ Service: 'events.amazonaws.com' }, 'sqs:SendMessage', { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [ruleId, 'Arn'] } } }],
    ]);
    on.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId, 'QueueName'] } }],
      Threshold: 0,
    });
    // EventBridge may invoke files from this rule; a failed invocation lands in its async-failure queue
    on.template.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [functionLogicalId(on, 'files'), 'Arn'] },
      SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
    });
    assert.ok(files.asyncFailures);
  });

  test('on: MALWARE_PROTECTION=true for files, and S3\'s EventBridge notifications kept on with the upload queue', () => {
    assert.equal(envOf(on, 'files').MALWARE_PROTECTION, 'true');
    const [, n] = only(resources(on.template, 'Custom::S3BucketNotifications'), 'notification configuration');
    assert.deepEqual(n.Properties!.NotificationConfiguration.EventBridgeConfiguration, {});
    assert.equal(n.Properties!.NotificationConfiguration.QueueConfigurations.length, 1);
  });

  test('MALWARE_PROTECTION is "true" exactly when the plan exists, whatever the context spelling', () => {
    for (const [value, expected] of [['true', 'true'], ['1', 'true'], ['yes', 'true'], ['false', 'false'], ['0', 'false'], ['', 'false']] as const) {
      const s = synth({ context: { malwareProtection: value } });
      assert.equal(envOf(s, 'files').MALWARE_PROTECTION, expected, value);
      s.template.resourceCountIs('AWS::GuardDuty::MalwareProtectionPlan', expected === 'true' ? 1 : 0);
    }
    assert.throws(() => synth({ context: { malwareProtection: 'maybe' } }), /context malwareProtection must be true or false/);
  });

  test('every function with sources.malwareScanResults is a target of the one rule (test registry fixture)', () => {
    const s = synth({ context: { ...PROD_CONTEXT, malwareProtection: 'true' }, functions: allSourcesRegistry() });
    const [, rule] = only(
      Object.fromEntries(Object.entries(resources(s.template, 'AWS::Events::Rule')).filter(([, r]) => JSON.stringify(r).includes('aws.guardduty'))),
      'scan-result rule',
    );
    const targets = (rule.Properties!.Targets as any[]).map((t) => t.Arn['Fn::GetAtt'][0]).sort();
    assert.deepEqual(targets, ['files', 'test-uploads'].map((n) => functionLogicalId(s, n)).sort());
    for (const [name, f] of s.stack.functions) {
      assert.equal(f.malwareScanFailures !== undefined, f.config.sources.malwareScanResults, name);
    }
  });
});

describe('access-log bucket (the upload bucket\'s server access logs)', () => {
  const logBucket = (st: 'dev' | 'prod') => {
    const s = stage(st);
    const id = s.stack.getLogicalId(s.stack.accessLogBucket.node.defaultChild as any);
    return { s, id, bucket: resources(s.template, 'AWS::S3::Bucket')[id] };
  };

  for (const st of STAGES) {
    test(`${st}: encrypted (SSE-S3), all public access blocked, ACLs disabled`, () => {
      const { bucket } = logBucket(st);
      assert.deepEqual(bucket.Properties!.BucketEncryption, {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      });
      assert.deepEqual(bucket.Properties!.PublicAccessBlockConfiguration, {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      assert.deepEqual(bucket.Properties!.OwnershipControls, { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
      assert.equal(bucket.Properties!.AccessControl, undefined);
    });

    test(`${st}: its own lifecycle: logs expire after logRetentionDays`, () => {
      const { s, bucket } = logBucket(st);
      const rules = bucket.Properties!.LifecycleConfiguration.Rules as any[];
      const expire = rules.find((r) => r.Id === 'expire-access-logs');
      assert.equal(expire.ExpirationInDays, s.stack.settings.logRetentionDays);
      assert.equal(expire.Status, 'Enabled');
    });

    // Changed on purpose: the exports bucket's access logs go here too, under their own prefix.
    test(`${st}: TLS only, and only S3's log delivery for the upload and exports buckets may write, each under its prefix`, () => {
      const { s, id } = logBucket(st);
      const uploadId = s.stack.getLogicalId(s.stack.uploadBucket.node.defaultChild as any);
      const exportId = s.stack.getLogicalId(s.stack.exportBucket!.node.defaultChild as any);
      const policy = Object.values(resources(s.template, 'AWS::S3::BucketPolicy')).find(
        (p) => JSON.stringify(p.Properties!.Bucket) === JSON.stringify({ Ref: id }),
      );
      assert.ok(policy, 'no bucket policy');
      const statements = policy.Properties!.PolicyDocument.Statement as any[];
      assert.ok(statements.some((x) => x.Effect === 'Deny' && x.Condition?.Bool?.['aws:SecureTransport'] === 'false'));
      // dev: CDK's auto-delete handler may also list and delete, to empty the bucket on teardown.
      const allows = statements.filter(
        (x) => x.Effect === 'Allow' && !(st === 'dev' && JSON.stringify(x.Principal).includes('CustomS3AutoDeleteObjectsCustomResourceProviderRole')),
      );
      assert.equal(allows.length, 2, JSON.stringify(allows));
      for (const [allow, source, prefix] of [
        [allows[0], uploadId, UPLOAD_ACCESS_LOG_PREFIX],
        [allows[1], exportId, EXPORT_ACCESS_LOG_PREFIX],
      ] as const) {
        assert.deepEqual(allow.Principal, { Service: 'logging.s3.amazonaws.com' });
        assert.equal(allow.Action, 's3:PutObject');
        assert.deepEqual(allow.Condition.ArnLike['aws:SourceArn'], { 'Fn::GetAtt': [source, 'Arn'] });
        assert.ok(JSON.stringify(allow.Resource).includes(`/${prefix}*`));
      }
    });
  }

  test('prod: retained; dev: emptied and deleted with the stack', () => {
    assert.equal(logBucket('prod').bucket.DeletionPolicy, 'Retain');
    assert.equal(logBucket('dev').bucket.DeletionPolicy, 'Delete');
  });
});

describe('vector buckets (S3 Vectors, context vectorBuckets)', () => {
  const bucketsOf = (s: ReturnType<typeof stage>) => Object.values(resources(s.template, 'AWS::S3Vectors::VectorBucket'));

  for (const st of STAGES) {
    test(`${st}: one bucket by default, named after the stack, SSE-S3; prod keeps it with the stack, dev deletes it`, () => {
      const buckets = bucketsOf(stage(st));
      assert.deepEqual(buckets.map((b) => b.Properties!.VectorBucketName), [`tenantry-${st}-vectors-0`]);
      assert.deepEqual(buckets[0].Properties!.EncryptionConfiguration, { SseType: 'AES256' });
      assert.equal(buckets[0].DeletionPolicy, st === 'prod' ? 'Retain' : 'Delete');
      assert.equal(stage(st).stack.vectorBucketPrefix, `tenantry-${st}-vectors`);
    });
  }

  test('context vectorBuckets: that many buckets, {prefix}-{n}, and the functions are told the prefix and the count', () => {
    const s = synth({ context: { stage: 'dev', vectorBuckets: '3' } });
    assert.deepEqual(bucketsOf(s).map((b) => b.Properties!.VectorBucketName), ['tenantry-dev-vectors-0', 'tenantry-dev-vectors-1', 'tenantry-dev-vectors-2']);
    for (const [name, { config }] of s.stack.functions) {
      const env = resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, name)].Properties!.Environment.Variables;
      const expected = config.environment.vectorBuckets ? ['tenantry-dev-vectors', '3'] : [undefined, undefined];
      assert.deepEqual([env.VECTOR_BUCKET_PREFIX, env.VECTOR_BUCKETS], expected, name);
    }
  });

  test('refused: no bucket, more than 100, not a number', () => {
    for (const value of ['0', '101', 'many']) assert.throws(() => synth({ context: { stage: 'dev', vectorBuckets: value } }), /context vectorBuckets/, value);
    assert.equal(MAX_VECTOR_BUCKETS, 100);
  });

  test('a function that uses the buckets is created after them; no bucket when no function uses them', () => {
    const s = stage('dev');
    const bucketIds = s.stack.vectorBuckets.map((b) => s.stack.getLogicalId(b));
    for (const [name, { config }] of s.stack.functions) {
      const dependsOn = ([] as string[]).concat(resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, name)].DependsOn ?? []);
      const uses = config.environment.vectorBuckets || config.permissions.s3vectors.length > 0;
      assert.equal(bucketIds.every((id) => dependsOn.includes(id)), uses, name);
    }
    const none = loadFunctionRegistry().functions.map((f) => ({
      ...f,
      environment: { ...f.environment, vectorBuckets: false },
      permissions: { ...f.permissions, s3vectors: [] },
    }));
    const without = synth({ functions: { functions: none } });
    without.template.resourceCountIs('AWS::S3Vectors::VectorBucket', 0);
    assert.equal(without.stack.vectorBucketPrefix, undefined);
  });

  test('the prefix: from the stack name, lowercase letters, digits and hyphens, short enough for the 100th bucket', () => {
    assert.equal(vectorBucketPrefix('Tenantry-dev'), 'tenantry-dev-vectors');
    assert.equal(vectorBucketPrefix('My_Stack.Name--2'), 'my-stack-name-2-vectors');
    const long = vectorBucketPrefix(`Tenantry-${'x'.repeat(80)}`);
    for (const name of vectorBucketNames(long, MAX_VECTOR_BUCKETS)) assert.ok(/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(name), name);
  });

  test('the names and variables are the store\'s (shared/store/src/vectors.rs)', () => {
    const store = fs.readFileSync(`${REPO_ROOT}/shared/store/src/vectors.rs`, 'utf8');
    assert.match(store, /pub const VECTOR_BUCKET_PREFIX_ENV: &str = "VECTOR_BUCKET_PREFIX";/);
    assert.match(store, /pub const VECTOR_BUCKETS_ENV: &str = "VECTOR_BUCKETS";/);
    assert.match(store, /format!\("\{\}-\{n\}", self\.prefix\)/);
  });
});

describe('domain-event queue', () => {
  test('a queue with a dead-letter queue after 5 receives', () => {
    const s = stage('dev');
    const dlqId = s.stack.getLogicalId(s.stack.domainEventsDlq.node.defaultChild as any);
    s.template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 5 },
    });
  });

  // Changed on purpose: the stack now has more queues than the domain-event pair (dead-letter
  // queues of the event sources), and the promise holds for every one of them.
  test('every queue encrypted (SQS-managed) and TLS-only', () => {
    for (const t of [stage('dev').template, synth({ functions: allSourcesRegistry() }).template]) {
      const queues = resources(t, 'AWS::SQS::Queue');
      assert.ok(Object.keys(queues).length >= 2);
      for (const [id, q] of Object.entries(queues)) {
        assert.equal(q.Properties!.SqsManagedSseEnabled, true, id);
      }
      const covered = new Set<string>();
      for (const p of Object.values(resources(t, 'AWS::SQS::QueuePolicy'))) {
        const text = JSON.stringify(p.Properties!.PolicyDocument);
        assert.ok(text.includes('aws:SecureTransport'), text);
        for (const q of p.Properties!.Queues) covered.add(q.Ref);
      }
      assert.deepEqual([...covered].sort(), Object.keys(queues).sort());
    }
  });

  test('an alarm when the dead-letter queue holds any message', () => {
    const s = stage('dev');
    const dlqId = s.stack.getLogicalId(s.stack.domainEventsDlq.node.defaultChild as any);
    expectDepthAlarm(s.template, dlqId);
  });
});

describe('SES', () => {
  for (const st of STAGES) {
    test(`${st}: one configuration set: TLS required, reputation metrics, SES suppresses bounces and complaints`, () => {
      const t = stage(st).template;
      const [, set] = only(resources(t, 'AWS::SES::ConfigurationSet'), 'configuration set');
      assert.deepEqual(set.Properties!.DeliveryOptions, { TlsPolicy: 'REQUIRE' });
      assert.deepEqual(set.Properties!.ReputationOptions, { ReputationMetricsEnabled: true });
      assert.deepEqual(set.Properties!.SendingOptions, { SendingEnabled: true });
      assert.deepEqual(set.Properties!.SuppressionOptions, { SuppressedReasons: ['BOUNCE', 'COMPLAINT'] });
      assert.equal(set.Properties!.Name, undefined, 'a generated name: dev and prod may share an account');
    });

    test(`${st}: its event destination publishes bounces and complaints to EventBridge's default bus`, () => {
      const s = stage(st);
      const setId = s.stack.getLogicalId(s.stack.mailConfigurationSet!.node.defaultChild as any);
      const [, dest] = only(resources(s.template, 'AWS::SES::ConfigurationSetEventDestination'), 'event destination');
      assert.deepEqual(dest.Properties!.ConfigurationSetName, { Ref: setId });
      assert.deepEqual(dest.Properties!.EventDestination, {
        Enabled: true,
        MatchingEventTypes: ['bounce', 'complaint'],
        EventBridgeDestination: {
          EventBusArn: {
            'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':event-bus/default']],
          },
        },
      });
    });
  }

  test('no configuration set when no function names it or takes its feedback', () => {
    const off = (f: any) =>
      f.name === 'notifications' || f.name === 'invites'
        ? { ...f, environment: { ...f.environment, sesConfigurationSet: false }, sources: { ...f.sources, mailFeedback: false } }
        : f;
    const s = synth({ functions: { functions: loadFunctionRegistry().functions.map(off) } });
    s.template.resourceCountIs('AWS::SES::ConfigurationSet', 0);
    s.template.resourceCountIs('AWS::SES::ConfigurationSetEventDestination', 0);
    assert.equal(s.stack.mailConfigurationSet, undefined);
    const send = roleStatements(s.template, roleLogicalId(s, 'notifications')).find((x) => x.Sid === 'SendMail');
    assert.deepEqual(send.Resource, s.stack.resolve(s.stack.mailIdentity.emailIdentityArn));
  });

  test('prod: a domain identity from context mailDomain, with its DKIM records as outputs', () => {
    const t = stage('prod').template;
    t.hasResourceProperties('AWS::SES::EmailIdentity', { EmailIdentity: 'example.com' });
    t.hasOutput('DkimRecord1', {});
  });

  test('an email-address identity from context mailFromAddress (dev default no-reply@example.com)', () => {
    stage('dev').template.hasResourceProperties('AWS::SES::EmailIdentity', { EmailIdentity: 'no-reply@example.com' });
    synth({ context: { mailFromAddress: 'team@acme.test' } }).template.hasResourceProperties('AWS::SES::EmailIdentity', {
      EmailIdentity: 'team@acme.test',
    });
  });
});

describe('alarm notifications', () => {
  test('with context alarmEmail: an SNS topic (TLS-only) with the email subscribed, on every alarm', () => {
    const t = stage('prod').template;
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    const [topicId] = only(resources(t, 'AWS::SNS::Topic'), 'topic');
    for (const [id, a] of Object.entries(resources(t, 'AWS::CloudWatch::Alarm'))) {
      assert.deepEqual(a.Properties!.AlarmActions, [{ Ref: topicId }], id);
    }
    t.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny' })]) },
    });
  });

  test('without alarmEmail: no topic, alarms without actions', () => {
    const t = stage('dev').template;
    t.resourceCountIs('AWS::SNS::Topic', 0);
    for (const a of Object.values(resources(t, 'AWS::CloudWatch::Alarm'))) assert.equal(a.Properties!.AlarmActions, undefined);
  });
});
