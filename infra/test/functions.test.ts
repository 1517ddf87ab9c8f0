// functions.json drives the functions: the file is read strictly, and every kind of event source
// it can declare is wired as promised. The source kinds no repository function uses yet come from
// a test registry fixture (test/fixtures/functions.all-sources.json).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import {
  FUNCTIONS_FILE,
  TableDefinition,
  checkScheduleExpression,
  loadFunctionRegistry,
  loadTableDefinition,
  parseFunctionRegistry,
  queueUrlEnvName,
  streamFilterImages,
} from '../lib/definitions';
import { executeApiScope, queueVisibilityTimeoutSeconds } from '../lib/functions';
import { streamViewProblems } from '../lib/tenantry-stack';
import {
  PROD_CONTEXT,
  Synth,
  allSourcesRegistry,
  functionLogicalId,
  registryWith,
  resources,
  roleLogicalId,
  roleStatements,
  stage,
  synth,
} from './helpers';

const raw = () => JSON.parse(fs.readFileSync(FUNCTIONS_FILE, 'utf8'));
const fnIndex = (r: any, name: string) => r.functions.findIndex((f: any) => f.name === name);

/** Parses functions.json after `change` edited its raw JSON. */
function parseChanged(change: (r: any) => void): unknown {
  const r = raw();
  change(r);
  return parseFunctionRegistry(r, 'infra/functions.json');
}

const logicalId = (s: Synth, construct: { node: { defaultChild?: unknown } } | undefined): string => {
  assert.ok(construct, 'construct missing');
  return s.stack.getLogicalId(construct.node.defaultChild as any);
};

const envOf = (s: Synth, name: string): Record<string, any> =>
  resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, name)].Properties!.Environment.Variables;

// ---- the file -----------------------------------------------------------------------------------
describe('infra/functions.json', () => {
  test('the repository file parses: organizations, invites, projects, cognito-triggers, org-purge', () => {
    const registry = loadFunctionRegistry();
    assert.deepEqual(
      registry.functions.map((f) => f.name),
      ['organizations', 'invites', 'projects', 'cognito-triggers', 'org-purge'],
    );
    const purge = registry.functions.find((f) => f.name === 'org-purge')!;
    assert.equal(purge.timeoutSeconds, 300);
    // Two filters on one mapping (Lambda delivers a record that matches either): deleted
    // organizations, and project purges.
    assert.deepEqual(purge.sources.dynamodbStream, {
      filters: [
        { eventName: ['INSERT', 'MODIFY'], dynamodb: { NewImage: { _type: { S: ['org'] }, status: { S: ['deleting'] } } } },
        { eventName: ['INSERT', 'MODIFY'], dynamodb: { NewImage: { _type: { S: ['project-purge'] } } } },
      ],
      batchSize: 10,
      maximumRetryAttempts: 5,
      bisectBatchOnError: true,
    });
    const projects = registry.functions.find((f) => f.name === 'projects')!;
    assert.equal(projects.sources.http, true);
    assert.equal(projects.timeoutSeconds, 25);
    assert.ok(projects.timeoutSeconds <= 29, 'HTTP: inside API Gateway\'s 29 s');
    assert.ok(projects.permissions.dynamodb.includes('BatchWriteItem'));
    // Memberships that ended: the deleted member item is in OldImage (a REMOVE has no NewImage).
    assert.deepEqual(projects.sources.dynamodbStream, {
      filters: [{ eventName: ['REMOVE'], dynamodb: { OldImage: { _type: { S: ['member'] } } } }],
      batchSize: 25,
      maximumRetryAttempts: 5,
      bisectBatchOnError: true,
    });
    assert.deepEqual(purge.sources.schedules.map((x) => [x.id, x.expression]), [['resume-purges', 'rate(1 hour)']]);
    const triggers = registry.functions.find((f) => f.name === 'cognito-triggers')!;
    assert.deepEqual([...triggers.sources.cognitoTriggers].sort(), [
      'CustomMessage',
      'PostAuthentication',
      'PostConfirmation',
      'PreSignUp',
      'PreTokenGeneration',
    ]);
  });

  test('key order and formatting do not matter', () => {
    const reordered = JSON.parse(JSON.stringify(raw()), (_k, v) =>
      v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v,
    );
    assert.deepEqual(parseFunctionRegistry(reordered), parseFunctionRegistry(raw()));
  });

  test('the test registry fixture parses, next to the repository functions', () => {
    const names = allSourcesRegistry().functions.map((f) => f.name);
    for (const n of ['test-uploads', 'test-cleanup', 'test-ingest', 'test-digest']) assert.ok(names.includes(n), n);
  });
});

describe('functions.json is read strictly: a clear error naming the function and the field', () => {
  const cases: [string, (r: any) => void, RegExp][] = [
    ['unknown top-level key', (r) => (r.extra = 1), /unknown key "extra"/],
    ['unknown function key', (r) => (r.functions[0].kind = 'http'), /functions\[0\]: unknown key "kind"/],
    ['missing field', (r) => delete r.functions[1].timeoutSeconds, /functions\[1\]: missing "timeoutSeconds"/],
    ['unknown source key', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.sqs = []), /function "org-purge": sources: unknown key "sqs"/],
    ['missing source key', (r) => delete r.functions[fnIndex(r, 'org-purge')].sources.queues, /function "org-purge": sources: missing "queues"/],
    ['unknown environment key', (r) => (r.functions[0].environment.tableName = true), /function "organizations": environment: unknown key "tableName"/],
    ['unknown permission key', (r) => (r.functions[0].permissions.s3 = ['GetObject']), /function "organizations": permissions: unknown key "s3"/],
    ['memory out of range', (r) => (r.functions[0].memoryMb = 64), /function "organizations": memoryMb must be an integer from 128 to 10240/],
    ['timeout out of range', (r) => (r.functions[fnIndex(r, 'org-purge')].timeoutSeconds = 901), /"org-purge": timeoutSeconds must be an integer from 1 to 900/],
    ['an HTTP-only function slower than API Gateway', (r) => (r.functions[0].timeoutSeconds = 30), /"organizations": timeoutSeconds 30 exceeds API Gateway's 29 s integration timeout, and HTTP is its only source/],
    ['a string where a number belongs', (r) => (r.functions[0].memoryMb = '256'), /"organizations": memoryMb must be an integer/],
    ['Scan', (r) => r.functions[0].permissions.dynamodb.push('Scan'), /"organizations": permissions\.dynamodb: unknown action "Scan"/],
    [
      'a transaction without its item actions',
      (r) => (r.functions[0].permissions.dynamodb = ['Query', 'TransactWriteItems']),
      /"organizations": permissions\.dynamodb: TransactWriteItems/,
    ],
    ['unknown trigger', (r) => r.functions[fnIndex(r, 'cognito-triggers')].sources.cognitoTriggers.push('PostSignUp'), /"cognito-triggers": sources\.cognitoTriggers: unknown trigger "PostSignUp"/],
    [
      'a trigger claimed twice',
      (r) => (r.functions[fnIndex(r, 'org-purge')].sources.cognitoTriggers = ['PreSignUp']),
      /PreSignUp is claimed by both "cognito-triggers" and "org-purge"/,
    ],
    [
      'USER_POOL_ID for a trigger function (a cycle)',
      (r) => (r.functions[fnIndex(r, 'cognito-triggers')].environment.userPoolId = true),
      /"cognito-triggers": environment\.userPoolId cannot be true/,
    ],
    ['rate with a wrong plural', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.schedules[0].expression = 'rate(1 hours)'), /"org-purge": sources\.schedules\[0\]\.expression: rate\(1 hours\)/],
    ['rate with a wrong singular', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.schedules[0].expression = 'rate(5 minute)'), /"org-purge".*rate\(5 minute\)/],
    ['cron with 5 fields', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.schedules[0].expression = 'cron(0 8 * * *)'), /"org-purge".*6 fields/],
    ['cron without ?', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.schedules[0].expression = 'cron(0 8 * * MON *)'), /"org-purge".*exactly one of day-of-month/],
    ['one-time at()', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.schedules[0].expression = 'at(2030-01-01T00:00:00)'), /"org-purge".*at\(\) schedules are not supported/],
    ['not an expression', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.schedules[0].expression = 'every hour'), /"org-purge".*"every hour" is not a rate\(\) or cron\(\)/],
    ['schedule id not kebab-case', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.schedules[0].id = 'Resume_Purges'), /"org-purge": sources\.schedules\[0\]\.id must be kebab-case/],
    [
      'duplicate schedule ids',
      (r) => r.functions[fnIndex(r, 'org-purge')].sources.schedules.push({ ...r.functions[fnIndex(r, 'org-purge')].sources.schedules[0] }),
      /"org-purge": sources\.schedules ids: "resume-purges" appears twice/,
    ],
    [
      'a stream filter on a field the record does not have',
      (r) => (r.functions[fnIndex(r, 'org-purge')].sources.dynamodbStream.filters = [{ NewImage: { status: { S: ['deleting'] } } }]),
      /"org-purge": sources\.dynamodbStream\.filters\[0\]: "NewImage" is not a field of a DynamoDB stream record/,
    ],
    [
      'a stream filter on NewImage for removals only (a removed item has no NewImage)',
      (r) => (r.functions[fnIndex(r, 'projects')].sources.dynamodbStream.filters = [{ eventName: ['REMOVE'], dynamodb: { NewImage: { _type: { S: ['member'] } } } }]),
      /"projects": sources\.dynamodbStream\.filters\[0\]: filters on dynamodb\.NewImage, which only INSERT and MODIFY records carry, but eventName is \["REMOVE"\]/,
    ],
    [
      'a stream filter on OldImage for insertions only (an inserted item has no OldImage)',
      (r) => (r.functions[fnIndex(r, 'org-purge')].sources.dynamodbStream.filters[1] = { eventName: ['INSERT'], dynamodb: { OldImage: { _type: { S: ['project-purge'] } } } }),
      /"org-purge": sources\.dynamodbStream\.filters\[1\]: filters on dynamodb\.OldImage, which only MODIFY and REMOVE records carry, but eventName is \["INSERT"\]/,
    ],
    [
      'more than 5 filters on one mapping',
      (r) => {
        const stream = r.functions[fnIndex(r, 'org-purge')].sources.dynamodbStream;
        stream.filters = [0, 1, 2, 3, 4, 5].map((i) => ({ eventName: ['INSERT'], dynamodb: { NewImage: { _type: { S: [`t${i}`] } } } }));
      },
      /"org-purge": sources\.dynamodbStream\.filters: at most 5 filters/,
    ],
    [
      'a third reader of the table stream (DynamoDB Streams throttles more than two per shard)',
      (r) =>
        (r.functions[0].sources.dynamodbStream = { filters: [{ eventName: ['INSERT'] }], batchSize: 10, maximumRetryAttempts: 1, bisectBatchOnError: true }),
      /3 functions consume the table's stream \(organizations, projects, org-purge\); DynamoDB Streams throttles more than 2 readers/,
    ],
    [
      'a stream filter leaf that is not a matcher list',
      (r) => (r.functions[fnIndex(r, 'org-purge')].sources.dynamodbStream.filters = [{ eventName: 'INSERT' }]),
      /"org-purge".*filters\[0\]: eventName: every leaf of a filter pattern is an array/,
    ],
    ['stream batch size', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.dynamodbStream.batchSize = 0), /"org-purge": sources\.dynamodbStream\.batchSize must be an integer from 1 to 10000/],
    ['infinite stream retries', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.dynamodbStream.maximumRetryAttempts = -1), /"org-purge": sources\.dynamodbStream\.maximumRetryAttempts/],
    ['unknown stream key', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.dynamodbStream.startingPosition = 'TRIM_HORIZON'), /"org-purge": sources\.dynamodbStream: unknown key "startingPosition"/],
    [
      'queue batch size above 10',
      (r) => (r.functions[fnIndex(r, 'org-purge')].sources.queues = [{ id: 'jobs', batchSize: 11, maxReceiveCount: 3, visibilityTimeoutSeconds: 60 }]),
      /"org-purge": sources\.queues\[0\]\.batchSize must be an integer from 1 to 10/,
    ],
    [
      'queue without maxReceiveCount',
      (r) => (r.functions[fnIndex(r, 'org-purge')].sources.queues = [{ id: 'jobs', batchSize: 1, visibilityTimeoutSeconds: 60 }]),
      /"org-purge": sources\.queues\[0\]: missing "maxReceiveCount"/,
    ],
    [
      'unknown S3 event',
      (r) => (r.functions[fnIndex(r, 'org-purge')].sources.s3 = { events: ['s3:ObjectCreated'], prefix: null }),
      /"org-purge": sources\.s3\.events: unknown S3 event "s3:ObjectCreated"/,
    ],
    [
      'S3 source without prefix key',
      (r) => (r.functions[fnIndex(r, 'org-purge')].sources.s3 = { events: ['s3:ObjectCreated:*'] }),
      /"org-purge": sources\.s3: missing "prefix"/,
    ],
    [
      'overlapping S3 subscriptions',
      (r) => {
        r.functions[fnIndex(r, 'org-purge')].sources.s3 = { events: ['s3:ObjectCreated:Put'], prefix: 'uploads/a/' };
        r.functions[0].sources.s3 = { events: ['s3:ObjectCreated:*'], prefix: 'uploads/' };
      },
      /"organizations" and "org-purge" subscribe to overlapping S3 events/,
    ],
    ['a secret from context', (r) => (r.functions[0].environment.fromContext = { API_KEY: 'apiKey' }), /"organizations": environment\.fromContext\.API_KEY: must not carry a secret/],
    ['a variable the stack sets', (r) => (r.functions[0].environment.fromContext = { TABLE_NAME: 'x' }), /"organizations".*the stack sets TABLE_NAME itself/],
    ['a variable Lambda reserves', (r) => (r.functions[0].environment.fromContext = { AWS_REGION: 'x' }), /"organizations".*Lambda reserves AWS_REGION/],
    [
      'a function nothing invokes',
      (r) => {
        const i = fnIndex(r, 'org-purge');
        r.functions[i].sources.dynamodbStream = null;
        r.functions[i].sources.schedules = [];
        r.functions[i].sources.http = false;
      },
      /"org-purge": no source invokes it/,
    ],
    ['a duplicate name', (r) => r.functions.push({ ...r.functions[0] }), /function names: "organizations" appears twice/],
    ['a name that is not kebab-case', (r) => (r.functions[0].name = 'Organizations'), /functions\[0\]\.name must be kebab-case/],
  ];
  for (const [what, change, expected] of cases) {
    test(what, () => assert.throws(() => parseChanged(change), expected));
  }

  test('synth stops on a bad registry, naming the function (not only the parser)', () => {
    const r = raw();
    r.functions[fnIndex(r, 'org-purge')].sources.schedules[0].expression = 'rate(0 hours)';
    assert.throws(() => synth({ functions: parseFunctionRegistry(r) }), /org-purge/);
  });

  test('a longer timeout is fine for an HTTP function that other sources need it for (org-purge)', () => {
    const purge = loadFunctionRegistry().functions.find((f) => f.name === 'org-purge')!;
    assert.ok(purge.sources.http && purge.timeoutSeconds > 29 && purge.sources.dynamodbStream !== null);
  });

  test('schedule expressions: rate() and cron() accepted', () => {
    for (const e of ['rate(1 minute)', 'rate(5 minutes)', 'rate(1 hour)', 'rate(12 hours)', 'rate(1 day)', 'cron(0 8 * * ? *)', 'cron(0/15 * ? * MON-FRI *)', 'cron(0 3 L * ? *)']) {
      assert.doesNotThrow(() => checkScheduleExpression(e, 'test'), e);
    }
  });

  test('a stream filter on an image the table stream does not carry fails synth, naming every function and filter', () => {
    const registry = loadFunctionRegistry();
    // What the repository's filters ask for: function, filter index, image.
    const wanted = registry.functions.flatMap((f) =>
      (f.sources.dynamodbStream?.filters ?? []).flatMap((p, i) => streamFilterImages(p).map((image) => ({ name: f.name, i, image }))),
    );
    assert.ok(wanted.some((w) => w.image === 'NewImage') && wanted.some((w) => w.image === 'OldImage'), JSON.stringify(wanted));
    const carries: Record<string, readonly string[]> = {
      KEYS_ONLY: [],
      NEW_IMAGE: ['NewImage'],
      OLD_IMAGE: ['OldImage'],
      NEW_AND_OLD_IMAGES: ['NewImage', 'OldImage'],
    };
    for (const [view, images] of Object.entries(carries)) {
      const table = { ...loadTableDefinition(), streamViewType: view as TableDefinition['streamViewType'] };
      const missing = wanted.filter((w) => !images.includes(w.image));
      const expected = missing.map(
        (w) => `function ${w.name}: sources.dynamodbStream.filters[${w.i}] filters on ${w.image}, but the table's stream is ${view} (table.json)`,
      );
      assert.deepEqual(streamViewProblems(registry, table), expected, view);
      if (missing.length === 0) {
        assert.doesNotThrow(() => synth({ table }), view);
      } else {
        assert.throws(() => synth({ table }), (err: Error) => {
          assert.deepEqual(err.message.split('\n'), expected, view);
          return true;
        });
      }
    }
  });
});

// ---- http ----------------------------------------------------------------------------------------
describe('sources.http: one invoke permission per HTTP function', () => {
  test('the narrowest single source ARN for a set of routes', () => {
    assert.deepEqual(executeApiScope([{ method: 'GET', path: '/orgs/{orgId}' }]), { method: 'GET', path: '/orgs/*' });
    assert.deepEqual(executeApiScope([{ method: 'GET', path: '/orgs' }, { method: 'DELETE', path: '/orgs/{orgId}' }]), { method: '*', path: '/orgs*' });
    assert.deepEqual(
      executeApiScope([{ method: 'GET', path: '/orgs/{orgId}/members' }, { method: 'GET', path: '/orgs/{orgId}/usage' }]),
      { method: 'GET', path: '/orgs/*' }, // `*` matches "/" too: /orgs/*/* would be no narrower
    );
    assert.deepEqual(executeApiScope([{ method: 'POST', path: '/invites/accept' }, { method: 'GET', path: '/orgs/{orgId}/invites' }]), { method: '*', path: '/*' });
    assert.deepEqual(executeApiScope([{ method: 'POST', path: '/a/b' }, { method: 'POST', path: '/a/c' }]), { method: 'POST', path: '/a/*' });
  });

  test('exactly one apigateway permission per HTTP function, on this API and stage only', () => {
    for (const st of ['dev', 'prod'] as const) {
      const s = stage(st);
      const apiId = logicalId(s, s.stack.api);
      const stageId = logicalId(s, s.stack.api.deploymentStage);
      const perms = Object.values(resources(s.template, 'AWS::Lambda::Permission')).filter(
        (p) => p.Properties!.Principal === 'apigateway.amazonaws.com',
      );
      const http = [...s.stack.functions.values()].filter((f) => f.config.sources.http);
      assert.equal(perms.length, http.length, `${st}: ${perms.length} permissions for ${http.length} HTTP functions`);
      for (const f of http) {
        const mine = perms.filter((p) => JSON.stringify(p.Properties!.FunctionName).includes(`"${functionLogicalId(s, f.name)}"`));
        assert.equal(mine.length, 1, f.name);
        const arn = JSON.stringify(mine[0].Properties!.SourceArn);
        assert.ok(arn.includes(':execute-api:') && arn.includes(`{"Ref":"${apiId}"}`) && arn.includes(`{"Ref":"${stageId}"}`), arn);
        const scope = executeApiScope(f.routes);
        assert.ok(arn.endsWith(`"/${scope.method}${scope.path}"]]}`), arn);
      }
    }
  });

  test('HTTP functions get ALLOWED_ORIGINS; the others do not', () => {
    const s = synth({ functions: allSourcesRegistry() });
    for (const [name, { config }] of s.stack.functions) {
      assert.equal(envOf(s, name).ALLOWED_ORIGINS !== undefined, config.sources.http, name);
    }
  });
});

// ---- cognito ----------------------------------------------------------------------------------------
describe('sources.cognitoTriggers', () => {
  test('each listed trigger goes to its function, and only those', () => {
    const triggers = loadFunctionRegistry().functions.find((f) => f.name === 'cognito-triggers')!;
    const s = synth({ functions: registryWith({ ...triggers, sources: { ...triggers.sources, cognitoTriggers: ['PreSignUp', 'PreTokenGeneration'] } }) });
    const arn = { 'Fn::GetAtt': [functionLogicalId(s, 'cognito-triggers'), 'Arn'] };
    const [pool] = Object.values(resources(s.template, 'AWS::Cognito::UserPool'));
    assert.deepEqual(pool.Properties!.LambdaConfig, {
      PreSignUp: arn,
      PreTokenGenerationConfig: { LambdaArn: arn, LambdaVersion: 'V2_0' },
    });
  });
});

// ---- dynamodb stream --------------------------------------------------------------------------------
describe('sources.dynamodbStream (the table stream: org-purge, projects)', () => {
  const s = stage('dev');
  const consumers = [...s.stack.functions.values()].filter((f) => f.config.sources.dynamodbStream !== null);
  const mappingOf = (name: string) => {
    const mine = Object.values(resources(s.template, 'AWS::Lambda::EventSourceMapping')).filter(
      (m) => JSON.stringify(m.Properties!.FunctionName) === JSON.stringify({ Ref: functionLogicalId(s, name) }),
    );
    assert.equal(mine.length, 1, `${name}: one event source mapping`);
    return mine[0];
  };

  test('the repository functions with sources.dynamodbStream, each its own reader of the stream', () => {
    assert.deepEqual(consumers.map((f) => f.name).sort(), ['org-purge', 'projects']);
    const tableId = logicalId(s, s.stack.table);
    const onStream = Object.values(resources(s.template, 'AWS::Lambda::EventSourceMapping')).filter(
      (m) => JSON.stringify(m.Properties!.EventSourceArn) === JSON.stringify({ 'Fn::GetAtt': [tableId, 'StreamArn'] }),
    );
    assert.equal(onStream.length, consumers.length);
  });

  test('an event source mapping on the table stream: filters, batch, retries, bisect, LATEST, partial batch failures, on-failure queue', () => {
    const tableId = logicalId(s, s.stack.table);
    for (const f of consumers) {
      const source = f.config.sources.dynamodbStream!;
      s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: functionLogicalId(s, f.name) },
        EventSourceArn: { 'Fn::GetAtt': [tableId, 'StreamArn'] },
        StartingPosition: 'LATEST',
        BatchSize: source.batchSize,
        MaximumRetryAttempts: source.maximumRetryAttempts,
        BisectBatchOnFunctionError: source.bisectBatchOnError,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        FilterCriteria: { Filters: source.filters.map((p) => ({ Pattern: JSON.stringify(p) })) },
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(s, f.streamFailures), 'Arn'] } } },
      });
      // every filter of the registry, in one mapping (Lambda delivers a record that matches any)
      const filters = mappingOf(f.name).Properties!.FilterCriteria.Filters as { Pattern: string }[];
      assert.deepEqual(filters.map((x) => JSON.parse(x.Pattern)), source.filters, f.name);
    }
  });

  test('the patterns as Lambda receives them', () => {
    const patterns = (name: string) =>
      (mappingOf(name).Properties!.FilterCriteria.Filters as { Pattern: string }[]).map((x) => JSON.parse(x.Pattern));
    assert.deepEqual(patterns('org-purge'), [
      { eventName: ['INSERT', 'MODIFY'], dynamodb: { NewImage: { _type: { S: ['org'] }, status: { S: ['deleting'] } } } },
      { eventName: ['INSERT', 'MODIFY'], dynamodb: { NewImage: { _type: { S: ['project-purge'] } } } },
    ]);
    assert.deepEqual(patterns('projects'), [{ eventName: ['REMOVE'], dynamodb: { OldImage: { _type: { S: ['member'] } } } }]);
  });

  test('each role reads this stream only, and may write to its own failure queue', () => {
    const tableId = logicalId(s, s.stack.table);
    for (const f of consumers) {
      const stmts = roleStatements(s.template, roleLogicalId(s, f.name));
      const stream = stmts.find((x) => x.Sid === 'TableStream');
      assert.deepEqual([...stream.Action].sort(), ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams']);
      assert.deepEqual(stream.Resource, { 'Fn::GetAtt': [tableId, 'StreamArn'] });
      const sendTo = stmts
        .filter((x) => ([] as string[]).concat(x.Action).includes('sqs:SendMessage'))
        .flatMap((x) => ([] as unknown[]).concat(x.Resource).map((r) => JSON.stringify(r)));
      const own = [f.streamFailures, f.asyncFailures].filter((q) => q !== undefined).map((q) => JSON.stringify({ 'Fn::GetAtt': [logicalId(s, q), 'Arn'] }));
      assert.ok(sendTo.includes(own[0]), `${f.name}: ${sendTo.join()}`);
      for (const r of sendTo) assert.ok(own.includes(r), `${f.name} may send to ${r}, not one of its own failure queues`);
    }
    // and no other function reads the stream
    for (const [name, f] of s.stack.functions) {
      if (f.config.sources.dynamodbStream !== null) continue;
      assert.ok(!JSON.stringify(roleStatements(s.template, roleLogicalId(s, name))).includes('StreamArn'), name);
      assert.equal(f.streamFailures, undefined, name);
    }
  });

  test('each failure queue is encrypted, kept 14 days, and alarmed', () => {
    const ids = new Set(consumers.map((f) => logicalId(s, f.streamFailures)));
    assert.equal(ids.size, consumers.length, 'one failure queue per function');
    for (const queueId of ids) {
      const q = resources(s.template, 'AWS::SQS::Queue')[queueId];
      assert.equal(q.Properties!.SqsManagedSseEnabled, true);
      assert.equal(q.Properties!.MessageRetentionPeriod, 14 * 24 * 3600);
      s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
        Threshold: 0,
      });
    }
  });
});

// ---- schedules ---------------------------------------------------------------------------------------
describe('sources.schedules (EventBridge Scheduler)', () => {
  const s = synth({ context: PROD_CONTEXT, functions: allSourcesRegistry() });

  /** The Input of a schedule with the account and region references replaced by placeholders. */
  function inputOf(schedule: any): unknown {
    const input = schedule.Properties.Target.Input;
    const text =
      typeof input === 'string'
        ? input
        : input['Fn::Join'][1]
            .map((p: any) => (typeof p === 'string' ? p : p.Ref === 'AWS::AccountId' ? '<account>' : p.Ref === 'AWS::Region' ? '<region>' : assert.fail(JSON.stringify(p))))
            .join('');
    return JSON.parse(text);
  }

  test('one schedule per entry: the expression, no flexible window, retries, a dead-letter queue', () => {
    const schedules = Object.values(resources(s.template, 'AWS::Scheduler::Schedule'));
    assert.equal(schedules.length, 4);
    for (const [name, id, expression] of [
      ['invites', 'expire-invitations', 'rate(15 minutes)'],
      ['org-purge', 'resume-purges', 'rate(1 hour)'],
      ['test-digest', 'daily-digest', 'cron(0 8 * * ? *)'],
      ['test-digest', 'sweep', 'rate(15 minutes)'],
    ]) {
      const f = s.stack.functions.get(name)!;
      const found = schedules.filter(
        (x) => x.Properties!.ScheduleExpression === expression && (inputOf(x) as any).detail.schedule === id,
      );
      assert.equal(found.length, 1, `${name} ${id}`);
      const sch = found[0].Properties!;
      assert.deepEqual(sch.FlexibleTimeWindow, { Mode: 'OFF' });
      assert.equal(sch.State, 'ENABLED');
      assert.deepEqual(sch.Target.Arn, { 'Fn::GetAtt': [functionLogicalId(s, name), 'Arn'] });
      assert.deepEqual(sch.Target.RoleArn, { 'Fn::GetAtt': [logicalId(s, f.schedulerRole), 'Arn'] });
      assert.deepEqual(sch.Target.RetryPolicy, { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 });
      assert.deepEqual(sch.Target.DeadLetterConfig, { Arn: { 'Fn::GetAtt': [logicalId(s, f.asyncFailures), 'Arn'] } });
    }
  });

  test('the input is an EventBridge event filled in by Scheduler (aws_lambda_events EventBridgeEvent)', () => {
    const sch = Object.values(resources(s.template, 'AWS::Scheduler::Schedule')).find((x) => x.Properties!.ScheduleExpression === 'rate(1 hour)')!;
    assert.deepEqual(inputOf(sch), {
      version: '0',
      id: '<aws.scheduler.execution-id>',
      'detail-type': 'Scheduled Event',
      source: 'tenantry.scheduler',
      account: '<account>',
      time: '<aws.scheduler.scheduled-time>',
      region: '<region>',
      resources: ['<aws.scheduler.schedule-arn>'],
      detail: { schedule: 'resume-purges', function: 'org-purge' },
    });
  });

  test("the scheduler's role: assumed by scheduler.amazonaws.com for this account, may invoke this function and write its dead-letter queue, nothing else", () => {
    for (const name of ['org-purge', 'test-digest']) {
      const f = s.stack.functions.get(name)!;
      const roleId = logicalId(s, f.schedulerRole);
      const role = resources(s.template, 'AWS::IAM::Role')[roleId];
      const trust = role.Properties!.AssumeRolePolicyDocument.Statement;
      assert.equal(trust.length, 1);
      assert.deepEqual(trust[0].Principal, { Service: 'scheduler.amazonaws.com' });
      assert.deepEqual(trust[0].Condition.StringEquals['aws:SourceAccount'], { Ref: 'AWS::AccountId' });
      const stmts = roleStatements(s.template, roleId);
      const actions = stmts.flatMap((x) => [].concat(x.Action)).sort();
      assert.deepEqual(actions, ['lambda:InvokeFunction', 'sqs:SendMessage'], name);
      const invoke = stmts.find((x) => x.Action === 'lambda:InvokeFunction');
      assert.deepEqual(invoke.Resource, { 'Fn::GetAtt': [functionLogicalId(s, name), 'Arn'] }, `${name}: the function only, no :* qualifiers`);
    }
    // two schedules of one function share its role
    const digestRoles = new Set(
      Object.values(resources(s.template, 'AWS::Scheduler::Schedule'))
        .filter((x) => JSON.stringify(x.Properties!.Target.Arn).includes(functionLogicalId(s, 'test-digest')))
        .map((x) => JSON.stringify(x.Properties!.Target.RoleArn)),
    );
    assert.equal(digestRoles.size, 1);
  });

  test("failed asynchronous invocations land in the same queue (Lambda's on-failure destination), alarmed", () => {
    for (const name of ['invites', 'org-purge', 'test-digest', 'test-uploads', 'test-cleanup']) {
      const f = s.stack.functions.get(name)!;
      s.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: functionLogicalId(s, name) },
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(s, f.asyncFailures), 'Arn'] } } },
      });
      s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(s, f.asyncFailures), 'QueueName'] } }],
      });
    }
    // functions without asynchronous sources have none
    const asyncSources = [...s.stack.functions.values()].filter((f) => f.config.sources.schedules.length > 0 || f.config.sources.s3 !== null);
    assert.deepEqual(asyncSources.map((f) => f.name).sort(), ['invites', 'org-purge', 'test-cleanup', 'test-digest', 'test-uploads']);
    for (const [name, f] of s.stack.functions) {
      if (!asyncSources.includes(f)) assert.equal(f.asyncFailures, undefined, name);
    }
    assert.equal(Object.keys(resources(s.template, 'AWS::Lambda::EventInvokeConfig')).length, asyncSources.length);
  });

  test('no EventBridge rules: schedules are Scheduler schedules', () => {
    s.template.resourceCountIs('AWS::Events::Rule', 0);
  });
});

// ---- queues ---------------------------------------------------------------------------------------------
describe('sources.queues (SQS)', () => {
  const s = synth({ context: PROD_CONTEXT, functions: allSourcesRegistry() });
  const ingest = s.stack.functions.get('test-ingest')!;

  test('visibility timeout: at least 6x the function timeout, or the registry value when larger', () => {
    assert.equal(queueVisibilityTimeoutSeconds(30, 60), 180);
    assert.equal(queueVisibilityTimeoutSeconds(30, 900), 900);
    assert.equal(queueVisibilityTimeoutSeconds(10, 60), 60);
    const queues = resources(s.template, 'AWS::SQS::Queue');
    assert.equal(queues[logicalId(s, ingest.queues.get('ingest')!.queue)].Properties!.VisibilityTimeout, 180);
    assert.equal(queues[logicalId(s, ingest.queues.get('bulk-import')!.queue)].Properties!.VisibilityTimeout, 900);
  });

  test('each queue: encrypted, TLS only, a dead-letter queue after maxReceiveCount, alarmed', () => {
    for (const [id, maxReceiveCount] of [['ingest', 3], ['bulk-import', 5]] as const) {
      const { queue, deadLetterQueue } = ingest.queues.get(id)!;
      const q = resources(s.template, 'AWS::SQS::Queue')[logicalId(s, queue)];
      const dlqId = logicalId(s, deadLetterQueue);
      assert.equal(q.Properties!.SqsManagedSseEnabled, true);
      assert.deepEqual(q.Properties!.RedrivePolicy, { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount });
      assert.equal(resources(s.template, 'AWS::SQS::Queue')[dlqId].Properties!.SqsManagedSseEnabled, true);
      for (const qid of [logicalId(s, queue), dlqId]) {
        const policy = Object.values(resources(s.template, 'AWS::SQS::QueuePolicy')).find((p) =>
          JSON.stringify(p.Properties!.Queues).includes(`"${qid}"`),
        );
        assert.ok(policy && JSON.stringify(policy).includes('aws:SecureTransport'), qid);
      }
      s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId, 'QueueName'] } }],
        Threshold: 0,
      });
    }
  });

  test('an event source mapping per queue, reporting partial batch failures', () => {
    for (const [id, batchSize] of [['ingest', 10], ['bulk-import', 5]] as const) {
      s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: functionLogicalId(s, 'test-ingest') },
        EventSourceArn: { 'Fn::GetAtt': [logicalId(s, ingest.queues.get(id)!.queue), 'Arn'] },
        BatchSize: batchSize,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
    }
  });

  test('QUEUE_URL_<ID> in the environment; the role consumes its queues only', () => {
    assert.equal(queueUrlEnvName('bulk-import'), 'QUEUE_URL_BULK_IMPORT');
    const env = envOf(s, 'test-ingest');
    assert.deepEqual(env.QUEUE_URL_INGEST, { Ref: logicalId(s, ingest.queues.get('ingest')!.queue) });
    assert.deepEqual(env.QUEUE_URL_BULK_IMPORT, { Ref: logicalId(s, ingest.queues.get('bulk-import')!.queue) });
    const sqsStatements = roleStatements(s.template, roleLogicalId(s, 'test-ingest')).filter((x) => JSON.stringify(x.Action).includes('sqs:'));
    const receive = sqsStatements.filter((x) => JSON.stringify(x.Action).includes('sqs:ReceiveMessage'));
    assert.ok(receive.length >= 1);
    for (const st of receive) {
      for (const r of [].concat(st.Resource)) {
        assert.ok(
          [ingest.queues.get('ingest')!.queue, ingest.queues.get('bulk-import')!.queue].some(
            (q) => JSON.stringify(r) === JSON.stringify({ 'Fn::GetAtt': [logicalId(s, q), 'Arn'] }),
          ),
          JSON.stringify(r),
        );
      }
    }
  });

  test('a function from context: fromContext variables still come through', () => {
    const s2 = synth({ functions: allSourcesRegistry(), context: { ingestMode: 'bulk' } });
    assert.equal(envOf(s2, 'test-ingest').INGEST_MODE, 'bulk');
  });
});

// ---- s3 --------------------------------------------------------------------------------------------------
describe('sources.s3 (the upload bucket)', () => {
  const s = synth({ context: PROD_CONTEXT, functions: allSourcesRegistry() });
  const bucketId = () => logicalId(s, s.stack.uploadBucket);

  test('notifications for the listed events, filtered on the prefix when there is one', () => {
    s.template.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: { Ref: bucketId() },
      NotificationConfiguration: {
        LambdaFunctionConfigurations: Match.arrayWith([
          {
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'uploads/' }] } },
            LambdaFunctionArn: { 'Fn::GetAtt': [functionLogicalId(s, 'test-uploads'), 'Arn'] },
          },
          {
            Events: ['s3:ObjectRemoved:*'],
            LambdaFunctionArn: { 'Fn::GetAtt': [functionLogicalId(s, 'test-cleanup'), 'Arn'] },
          },
        ]),
      },
    });
  });

  test('S3 may invoke each subscribed function, from this bucket and account only', () => {
    for (const name of ['test-uploads', 'test-cleanup']) {
      s.template.hasResourceProperties('AWS::Lambda::Permission', {
        Principal: 's3.amazonaws.com',
        FunctionName: { 'Fn::GetAtt': [functionLogicalId(s, name), 'Arn'] },
        SourceArn: { 'Fn::GetAtt': [bucketId(), 'Arn'] },
        SourceAccount: { Ref: 'AWS::AccountId' },
      });
    }
  });

  test('the role reads (and removes) objects under its prefix only; UPLOAD_BUCKET in the environment', () => {
    const read = roleStatements(s.template, roleLogicalId(s, 'test-uploads')).find((x) => x.Sid === 'ReadUploads');
    assert.deepEqual([...read.Action].sort(), ['s3:DeleteObject', 's3:GetObject']);
    assert.deepEqual(read.Resource, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId(), 'Arn'] }, '/uploads/*']] });
    assert.deepEqual(envOf(s, 'test-uploads').UPLOAD_BUCKET, { Ref: bucketId() });
    for (const [name, f] of s.stack.functions) {
      if (f.config.sources.s3 !== null) continue;
      assert.ok(!JSON.stringify(roleStatements(s.template, roleLogicalId(s, name))).includes('s3:'), name);
    }
  });
});
