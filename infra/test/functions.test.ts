// functions.json drives the functions: the file is read strictly, and every kind of event source
// it can declare is wired as promised. The source kinds no repository function uses yet come from
// a test registry fixture (test/fixtures/functions.all-sources.json).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, test } from 'node:test';
import {
  FUNCTIONS_FILE,
  REPO_ROOT,
  STREAMING_MAX_TIMEOUT_SECONDS,
  TableDefinition,
  checkScheduleExpression,
  loadFunctionRegistry,
  loadRouteManifest,
  loadTableDefinition,
  parseFunctionRegistry,
  queueUrlEnvName,
  streamFilterImages,
} from '../lib/definitions';
import {
  MAIL_FEEDBACK_DETAIL_TYPES,
  MAIL_FEEDBACK_MAX_EVENT_AGE,
  MAIL_FEEDBACK_RETRY_ATTEMPTS,
  MALWARE_SCAN_DETAIL_TYPE,
  DERIVED_PREFIX,
  UPLOAD_BUCKET_PREFIXES,
  UPLOAD_PREFIX,
  executeApiScope,
  queueVisibilityTimeoutSeconds,
} from '../lib/functions';
import { streamViewProblems } from '../lib/tenantry-stack';
import {
  PROD_CONTEXT,
  Synth,
  allSourcesRegistry,
  dependencyCycle,
  functionLogicalId,
  methodsByRoute,
  registryWith,
  resources,
  roleLogicalId,
  roleStatements,
  stage,
  synth,
  expectDepthAlarm,
} from './helpers';

const raw = () => JSON.parse(fs.readFileSync(FUNCTIONS_FILE, 'utf8'));
/** A valid queue source for the cases that need one. */
const QUEUE = { id: 'events', batchSize: 5, maxReceiveCount: 3, visibilityTimeoutSeconds: 60 };
const fnIndex = (r: any, name: string) => r.functions.findIndex((f: any) => f.name === name);

/** Parses functions.json after `change` edited its raw JSON. */
function parseChanged(change: (r: any) => void): unknown {
  const r = raw();
  change(r);
  return parseFunctionRegistry(r, 'infra/functions.json');
}

/** The kinds the fan-out's filter lets through: chat's and the audit log's, sorted, each once. */
const AUDIT_AND_CHAT_KINDS = [
  'chat.settings_changed',
  'export.requested',
  'file.deleted',
  'file.downloaded',
  'file.processed',
  'file.upload_started',
  'invitation.accepted',
  'invitation.created',
  'invitation.declined',
  'invitation.resent',
  'invitation.revoked',
  'member.joined',
  'member.removed',
  'member.role_changed',
  'org.created',
  'org.deletion_requested',
  'org.limits_changed',
  'org.plan_changed',
  'org.reactivated',
  'org.suspended',
  'org.updated',
  'ownership.transferred',
  'project.deleted',
  'task.deleted',
  'user.erased',
  'user.signed_in',
];

const logicalId = (s: Synth, construct: { node: { defaultChild?: unknown } } | undefined): string => {
  assert.ok(construct, 'construct missing');
  return s.stack.getLogicalId(construct.node.defaultChild as any);
};

const envOf = (s: Synth, name: string): Record<string, any> =>
  resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, name)].Properties!.Environment.Variables;

// ---- the file -----------------------------------------------------------------------------------
describe('infra/functions.json', () => {
  test('the repository file parses: organizations, invites, projects, notifications, files, chat, audit, exports, cognito-triggers, org-purge', () => {
    const registry = loadFunctionRegistry();
    assert.deepEqual(
      registry.functions.map((f) => f.name),
      ['organizations', 'invites', 'projects', 'notifications', 'files', 'chat', 'audit', 'exports', 'cognito-triggers', 'org-purge'],
    );
    // files: presigned uploads and downloads (its own credentials sign them), processing of new
    // uploads through a queue, malware scan results, a sweep of uploads that never arrived.
    const files = registry.functions.find((f) => f.name === 'files')!;
    assert.deepEqual(files.permissions.s3, ['s3:PutObject', 's3:GetObject', 's3:DeleteObject']);
    assert.equal(files.environment.uploadBucket, true);
    assert.deepEqual(files.environment.fromContext, { MALWARE_PROTECTION: 'malwareProtection' });
    assert.deepEqual(files.sources.s3, {
      events: ['s3:ObjectCreated:*'],
      prefix: 'uploads/',
      queue: { id: 'uploads', batchSize: 1, maxReceiveCount: 5, visibilityTimeoutSeconds: 360 },
    });
    assert.equal(files.sources.malwareScanResults, true);
    assert.equal(files.sources.http, true);
    assert.deepEqual(files.sources.schedules.map((x) => [x.id, x.expression]), [['upload-sweep', 'rate(15 minutes)']]);
    // the queue's visibility timeout is 6 times the function's timeout
    assert.equal(files.sources.s3!.queue.visibilityTimeoutSeconds, 6 * files.timeoutSeconds);
    // org-purge deletes an org's objects: it lists them (by prefix) and deletes them
    const purgeS3 = registry.functions.find((f) => f.name === 'org-purge')!;
    assert.deepEqual(purgeS3.permissions.s3, ['s3:ListBucket', 's3:DeleteObject']);
    assert.equal(purgeS3.environment.uploadBucket, true);
    // chat reads the extracted text of processed files to ingest them
    const chat = registry.functions.find((f) => f.name === 'chat')!;
    assert.deepEqual([chat.permissions.s3, chat.environment.uploadBucket, chat.sources.s3, chat.sources.malwareScanResults], [['s3:GetObject'], true, null, false]);
    // exports copies ready files' checked copies into an org's export
    const exports = registry.functions.find((f) => f.name === 'exports')!;
    assert.deepEqual([exports.permissions.s3, exports.environment.uploadBucket, exports.sources.s3, exports.sources.malwareScanResults], [['s3:GetObject'], true, null, false]);
    // exports: zips in the exports bucket (multipart), its own work queue that it hands over to,
    // and account erasure (AdminDeleteUser on the user pool)
    assert.deepEqual(
      [exports.environment.exportBucket, exports.permissions.exportBucketS3, exports.permissions.sendToOwnQueues, exports.permissions.cognito, exports.environment.userPoolId],
      [true, ['s3:PutObject', 's3:GetObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListBucketMultipartUploads'], true, ['cognito-idp:AdminDeleteUser'], true],
    );
    assert.deepEqual(exports.sources.queues, [{ id: 'work', batchSize: 1, maxReceiveCount: 5, visibilityTimeoutSeconds: 6 * exports.timeoutSeconds }]);
    for (const f of registry.functions) {
      if (f.name === 'exports') continue;
      assert.deepEqual([f.environment.exportBucket, f.permissions.exportBucketS3, f.permissions.sendToOwnQueues, f.permissions.cognito], [false, [], false, []], f.name);
    }
    // nobody else acts on the bucket or takes scan results
    for (const f of registry.functions) {
      if (f.name === 'files' || f.name === 'org-purge' || f.name === 'chat' || f.name === 'exports') continue;
      assert.deepEqual([f.permissions.s3, f.environment.uploadBucket, f.sources.s3, f.sources.malwareScanResults], [[], false, null, false], f.name);
    }
    const purge = registry.functions.find((f) => f.name === 'org-purge')!;
    assert.equal(purge.timeoutSeconds, 300);
    // Four filters on one mapping (Lambda delivers a record that matches any): deleted
    // organizations, project purges, memberships that ended (the deleted member item is in
    // OldImage: a REMOVE has no NewImage), and the domain events it fans out to their subscribers
    // (chat's, today).
    assert.deepEqual(purge.sources.dynamodbStream, {
      filters: [
        { eventName: ['INSERT', 'MODIFY'], dynamodb: { NewImage: { _type: { S: ['org'] }, status: { S: ['deleting'] } } } },
        { eventName: ['INSERT', 'MODIFY'], dynamodb: { NewImage: { _type: { S: ['project-purge'] } } } },
        { eventName: ['REMOVE'], dynamodb: { OldImage: { _type: { S: ['member'] } } } },
        // chat's kinds and the audit log's (sorted, each once)
        { eventName: ['INSERT'], dynamodb: { NewImage: { _type: { S: ['event'] }, kind: { S: AUDIT_AND_CHAT_KINDS } } } },
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
    assert.equal(projects.sources.dynamodbStream, null, 'projects no longer reads the stream (org-purge takes ended memberships)');
    assert.deepEqual(purge.sources.schedules.map((x) => [x.id, x.expression]), [['resume-purges', 'rate(1 hour)']]);
    // org-purge fans the domain events out, and deletes a purged org's vector index
    assert.deepEqual(
      [purge.sources.fanOut, purge.environment.eventQueues, purge.permissions.sendToEventQueues, purge.environment.vectorBuckets, purge.permissions.s3vectors],
      [true, true, true, true, ['s3vectors:DeleteIndex']],
    );
    // chat: streamed answers, Bedrock models, its org's vector index, the file events through its
    // queue (visibility 6 times its timeout)
    assert.deepEqual([chat.sources.http, chat.sources.streaming, chat.environment.vectorBuckets], [true, true, true]);
    assert.deepEqual(chat.sources.domainEvents, {
      kinds: ['file.processed', 'file.deleted'],
      queue: { id: 'ingest', batchSize: 1, maxReceiveCount: 5, visibilityTimeoutSeconds: 6 * chat.timeoutSeconds },
    });
    assert.deepEqual(chat.permissions.bedrock, ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream']);
    assert.ok(chat.permissions.bedrockModels.includes('amazon.titan-embed-text-v2:0'), 'the embedding model');
    assert.ok(chat.permissions.bedrockModels.some((m) => m.startsWith('us.')), 'models through US inference profiles');
    // audit: the audited kinds through its queue (visibility 6 times its timeout); it may not
    // delete items (no route edits or deletes an entry)
    const audit = registry.functions.find((f) => f.name === 'audit')!;
    assert.deepEqual(audit.sources.domainEvents, {
      kinds: audit.sources.domainEvents!.kinds,
      queue: { id: 'audit', batchSize: 10, maxReceiveCount: 5, visibilityTimeoutSeconds: 6 * audit.timeoutSeconds },
    });
    assert.deepEqual([...audit.sources.domainEvents!.kinds].sort(), AUDIT_AND_CHAT_KINDS);
    assert.deepEqual(audit.permissions.dynamodb, ['GetItem', 'PutItem', 'UpdateItem', 'Query', 'TransactWriteItems']);
    // nobody else fans out, subscribes, streams, or uses Bedrock or the vector buckets
    for (const f of registry.functions) {
      const fans = f.name === 'org-purge';
      assert.deepEqual([f.sources.fanOut, f.environment.eventQueues, f.permissions.sendToEventQueues], [fans, fans, fans], f.name);
      if (f.name === 'chat') continue;
      const subscribes: unknown = f.name === 'audit' ? audit.sources.domainEvents : null;
      assert.deepEqual([f.sources.domainEvents, f.sources.streaming, f.permissions.bedrock, f.permissions.bedrockModels], [subscribes, false, [], []], f.name);
      if (!fans) assert.deepEqual([f.environment.vectorBuckets, f.permissions.s3vectors], [false, []], f.name);
    }
    // notifications: domain-event INSERTs from the stream, a 15-minute sweep, SES bounces and
    // complaints, its API's URL and the configuration set in its environment.
    const notifications = registry.functions.find((f) => f.name === 'notifications')!;
    assert.equal(notifications.sources.http, true);
    assert.equal(notifications.sources.mailFeedback, true);
    assert.deepEqual(notifications.sources.schedules.map((x) => [x.id, x.expression]), [['notification-sweep', 'rate(15 minutes)']]);
    const stream = notifications.sources.dynamodbStream!;
    assert.equal(stream.filters.length, 2);
    assert.deepEqual((stream.filters[0] as any).eventName, ['INSERT']);
    assert.deepEqual((stream.filters[0] as any).dynamodb.NewImage._type, { S: ['event'] });
    // and the unread notifications that DynamoDB's TTL deletes
    assert.deepEqual((stream.filters[1] as any).eventName, ['REMOVE']);
    assert.deepEqual((stream.filters[1] as any).userIdentity, { type: ['Service'], principalId: ['dynamodb.amazonaws.com'] });
    assert.deepEqual(
      { apiUrl: notifications.environment.apiUrl, sesConfigurationSet: notifications.environment.sesConfigurationSet, sesFromAddress: notifications.environment.sesFromAddress },
      { apiUrl: true, sesConfigurationSet: true, sesFromAddress: true },
    );
    assert.equal(notifications.permissions.sesSendEmail, true);
    // invitations go through the configuration set too (their bounces reach the suppression
    // list); the other new fields are off for every other function
    for (const f of registry.functions) {
      if (f.name === 'notifications') continue;
      const set = f.name === 'invites';
      assert.deepEqual([f.environment.apiUrl, f.environment.sesConfigurationSet, f.sources.mailFeedback], [false, set, false], f.name);
    }
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
    for (const n of ['test-uploads', 'test-cleanup', 'test-ingest', 'test-digest', 'test-audit']) assert.ok(names.includes(n), n);
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
    ['unknown permission key', (r) => (r.functions[0].permissions.sqs = ['SendMessage']), /function "organizations": permissions: unknown key "sqs"/],
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
      (r) => (r.functions[fnIndex(r, 'org-purge')].sources.dynamodbStream.filters[2] = { eventName: ['REMOVE'], dynamodb: { NewImage: { _type: { S: ['member'] } } } }),
      /"org-purge": sources\.dynamodbStream\.filters\[2\]: filters on dynamodb\.NewImage, which only INSERT and MODIFY records carry, but eventName is \["REMOVE"\]/,
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
      /3 functions consume the table's stream \(organizations, notifications, org-purge\); DynamoDB Streams throttles more than 2 readers/,
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
      (r) => (r.functions[fnIndex(r, 'org-purge')].sources.s3 = { events: ['s3:ObjectCreated'], prefix: null, queue: QUEUE }),
      /"org-purge": sources\.s3\.events: unknown S3 event "s3:ObjectCreated"/,
    ],
    [
      'S3 source without prefix key',
      (r) => (r.functions[fnIndex(r, 'org-purge')].sources.s3 = { events: ['s3:ObjectCreated:*'], queue: QUEUE }),
      /"org-purge": sources\.s3: missing "prefix"/,
    ],
    [
      'S3 source without its queue (S3 events arrive through SQS)',
      (r) => delete r.functions[fnIndex(r, 'files')].sources.s3.queue,
      /"files": sources\.s3: missing "queue"/,
    ],
    [
      'S3 source queue with an unknown key',
      (r) => (r.functions[fnIndex(r, 'files')].sources.s3.queue.fifo = true),
      /"files": sources\.s3\.queue: unknown key "fifo"/,
    ],
    [
      'S3 source queue batch size above 10',
      (r) => (r.functions[fnIndex(r, 'files')].sources.s3.queue.batchSize = 11),
      /"files": sources\.s3\.queue\.batchSize must be an integer from 1 to 10/,
    ],
    [
      'S3 source queue without maxReceiveCount',
      (r) => delete r.functions[fnIndex(r, 'files')].sources.s3.queue.maxReceiveCount,
      /"files": sources\.s3\.queue: missing "maxReceiveCount"/,
    ],
    [
      'S3 source queue id not kebab-case',
      (r) => (r.functions[fnIndex(r, 'files')].sources.s3.queue.id = 'Uploads_Queue'),
      /"files": sources\.s3\.queue\.id must be kebab-case/,
    ],
    [
      'S3 source queue id that a declared queue also has',
      (r) => (r.functions[fnIndex(r, 'files')].sources.queues = [{ ...QUEUE, id: 'uploads' }]),
      /"files": sources\.s3\.queue\.id "uploads" is also the id of one of its sources\.queues/,
    ],
    [
      'overlapping S3 subscriptions',
      (r) => {
        r.functions[fnIndex(r, 'org-purge')].sources.s3 = { events: ['s3:ObjectCreated:Put'], prefix: 'uploads/a/', queue: QUEUE };
      },
      /"files" and "org-purge" subscribe to overlapping S3 events/,
    ],
    // permissions.s3 and environment.uploadBucket
    ['s3 actions missing', (r) => delete r.functions[0].permissions.s3, /"organizations": permissions: missing "s3"/],
    ['s3 actions not a list', (r) => (r.functions[fnIndex(r, 'files')].permissions.s3 = 's3:GetObject'), /"files": permissions\.s3 must be an array/],
    ['an S3 wildcard', (r) => (r.functions[fnIndex(r, 'files')].permissions.s3 = ['s3:*']), /"files": permissions\.s3: unknown action "s3:\*"/],
    ['an S3 action wildcard', (r) => (r.functions[fnIndex(r, 'files')].permissions.s3 = ['s3:Get*']), /"files": permissions\.s3: unknown action "s3:Get\*"/],
    [
      'an S3 version action (the bucket is not versioned)',
      (r) => r.functions[fnIndex(r, 'files')].permissions.s3.push('s3:DeleteObjectVersion'),
      /"files": permissions\.s3: unknown action "s3:DeleteObjectVersion" .*no version actions/,
    ],
    ['an S3 bucket configuration action', (r) => (r.functions[fnIndex(r, 'files')].permissions.s3 = ['s3:PutBucketPolicy']), /"files": permissions\.s3: unknown action "s3:PutBucketPolicy"/],
    ['an S3 action without its prefix', (r) => (r.functions[fnIndex(r, 'files')].permissions.s3 = ['GetObject']), /"files": permissions\.s3: unknown action "GetObject"/],
    ['an S3 action twice', (r) => r.functions[fnIndex(r, 'files')].permissions.s3.push('s3:GetObject'), /"files": permissions\.s3: "s3:GetObject" appears twice/],
    [
      'S3 actions without the bucket name',
      (r) => (r.functions[fnIndex(r, 'files')].environment.uploadBucket = false),
      /"files": permissions\.s3 needs environment\.uploadBucket/,
    ],
    ['uploadBucket as a string', (r) => (r.functions[0].environment.uploadBucket = 'yes'), /"organizations": environment\.uploadBucket must be true or false \(got "yes"\)/],
    ['uploadBucket missing', (r) => delete r.functions[0].environment.uploadBucket, /"organizations": environment: missing "uploadBucket"/],
    ['UPLOAD_BUCKET from context', (r) => (r.functions[0].environment.fromContext = { UPLOAD_BUCKET: 'bucket' }), /"organizations".*the stack sets UPLOAD_BUCKET itself/],
    // sources.malwareScanResults
    ['malwareScanResults as a string', (r) => (r.functions[fnIndex(r, 'files')].sources.malwareScanResults = 'true'), /"files": sources\.malwareScanResults must be true or false \(got "true"\)/],
    ['malwareScanResults missing', (r) => delete r.functions[0].sources.malwareScanResults, /"organizations": sources: missing "malwareScanResults"/],
    [
      'malwareScanResults for more functions than one rule has targets',
      (r) => {
        for (const f of r.functions) f.sources.malwareScanResults = true;
      },
      /sources\.malwareScanResults is claimed by 10 functions .*at most 5 targets/,
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
    // the switches for API_URL, the SES configuration set and the SES feedback rule
    ['apiUrl as a string', (r) => (r.functions[fnIndex(r, 'notifications')].environment.apiUrl = 'true'), /"notifications": environment\.apiUrl must be true or false \(got "true"\)/],
    ['apiUrl null', (r) => (r.functions[0].environment.apiUrl = null), /"organizations": environment\.apiUrl must be true or false \(got null\)/],
    ['apiUrl missing', (r) => delete r.functions[0].environment.apiUrl, /"organizations": environment: missing "apiUrl"/],
    [
      'sesConfigurationSet as a number',
      (r) => (r.functions[fnIndex(r, 'notifications')].environment.sesConfigurationSet = 1),
      /"notifications": environment\.sesConfigurationSet must be true or false \(got 1\)/,
    ],
    ['sesConfigurationSet missing', (r) => delete r.functions[0].environment.sesConfigurationSet, /"organizations": environment: missing "sesConfigurationSet"/],
    [
      'the configuration set for a function that sends no mail',
      (r) => (r.functions[fnIndex(r, 'organizations')].environment.sesConfigurationSet = true),
      /"organizations": environment\.sesConfigurationSet needs permissions\.sesSendEmail/,
    ],
    ['mailFeedback as a string', (r) => (r.functions[fnIndex(r, 'notifications')].sources.mailFeedback = 'yes'), /"notifications": sources\.mailFeedback must be true or false \(got "yes"\)/],
    ['mailFeedback as an object', (r) => (r.functions[fnIndex(r, 'org-purge')].sources.mailFeedback = { bus: 'default' }), /"org-purge": sources\.mailFeedback must be true or false/],
    ['mailFeedback missing', (r) => delete r.functions[fnIndex(r, 'org-purge')].sources.mailFeedback, /"org-purge": sources: missing "mailFeedback"/],
    [
      'mailFeedback claimed by two functions',
      (r) => (r.functions[fnIndex(r, 'invites')].sources.mailFeedback = true),
      /sources\.mailFeedback is claimed by "invites" and "notifications"; one function handles the SES bounces and complaints/,
    ],
    ['API_URL from context', (r) => (r.functions[0].environment.fromContext = { API_URL: 'apiUrl' }), /"organizations".*the stack sets API_URL itself/],
    [
      'SES_CONFIGURATION_SET from context',
      (r) => (r.functions[0].environment.fromContext = { SES_CONFIGURATION_SET: 'configSet' }),
      /"organizations".*the stack sets SES_CONFIGURATION_SET itself/,
    ],
    ['a name that is not kebab-case', (r) => (r.functions[0].name = 'Organizations'), /functions\[0\]\.name must be kebab-case/],
    // S3 Vectors
    ['vectorBuckets missing', (r) => delete r.functions[0].environment.vectorBuckets, /"organizations": environment: missing "vectorBuckets"/],
    ['s3vectors actions missing', (r) => delete r.functions[0].permissions.s3vectors, /"organizations": permissions: missing "s3vectors"/],
    ['an S3 Vectors wildcard', (r) => (r.functions[fnIndex(r, 'chat')].permissions.s3vectors = ['s3vectors:*']), /"chat": permissions\.s3vectors: unknown action "s3vectors:\*"/],
    [
      'an S3 Vectors bucket action (the stack owns the buckets)',
      (r) => r.functions[fnIndex(r, 'org-purge')].permissions.s3vectors.push('s3vectors:DeleteVectorBucket'),
      /"org-purge": permissions\.s3vectors: unknown action "s3vectors:DeleteVectorBucket"/,
    ],
    ['an S3 Vectors action twice', (r) => r.functions[fnIndex(r, 'org-purge')].permissions.s3vectors.push('s3vectors:DeleteIndex'), /"org-purge": permissions\.s3vectors: "s3vectors:DeleteIndex" appears twice/],
    [
      'S3 Vectors actions without the bucket names',
      (r) => (r.functions[fnIndex(r, 'org-purge')].environment.vectorBuckets = false),
      /"org-purge": permissions\.s3vectors needs environment\.vectorBuckets/,
    ],
    ['VECTOR_BUCKET_PREFIX from context', (r) => (r.functions[0].environment.fromContext = { VECTOR_BUCKET_PREFIX: 'x' }), /"organizations".*the stack sets VECTOR_BUCKET_PREFIX itself/],
    // Bedrock
    ['bedrock actions missing', (r) => delete r.functions[0].permissions.bedrock, /"organizations": permissions: missing "bedrock"/],
    ['a Bedrock wildcard', (r) => (r.functions[fnIndex(r, 'chat')].permissions.bedrock = ['bedrock:*']), /"chat": permissions\.bedrock: unknown action "bedrock:\*"/],
    ['a Bedrock control-plane action', (r) => r.functions[fnIndex(r, 'chat')].permissions.bedrock.push('bedrock:CreateModelCustomizationJob'), /"chat": permissions\.bedrock: unknown action/],
    ['a wildcard model', (r) => r.functions[fnIndex(r, 'chat')].permissions.bedrockModels.push('anthropic.*'), /"chat": permissions\.bedrockModels: "anthropic\.\*" is not a Bedrock model id/],
    ['a model ARN instead of an id', (r) => r.functions[fnIndex(r, 'chat')].permissions.bedrockModels.push('arn:aws:bedrock:*::foundation-model/x'), /"chat": permissions\.bedrockModels: .* is not a Bedrock model id/],
    ['a model twice', (r) => r.functions[fnIndex(r, 'chat')].permissions.bedrockModels.push('amazon.titan-embed-text-v2:0'), /"chat": permissions\.bedrockModels: "amazon\.titan-embed-text-v2:0" appears twice/],
    ['Bedrock actions without models', (r) => (r.functions[fnIndex(r, 'chat')].permissions.bedrockModels = []), /"chat": permissions\.bedrock and permissions\.bedrockModels go together/],
    ['models without Bedrock actions', (r) => (r.functions[fnIndex(r, 'chat')].permissions.bedrock = []), /"chat": permissions\.bedrock and permissions\.bedrockModels go together/],
    // streaming
    ['streaming missing', (r) => delete r.functions[0].sources.streaming, /"organizations": sources: missing "streaming"/],
    [
      'streaming without HTTP',
      (r) => {
        r.functions[fnIndex(r, 'chat')].sources.http = false;
      },
      /"chat": sources\.streaming needs sources\.http/,
    ],
    // domain events and the fan-out
    ['domainEvents missing', (r) => delete r.functions[0].sources.domainEvents, /"organizations": sources: missing "domainEvents"/],
    ['a subscription to no kind', (r) => (r.functions[fnIndex(r, 'chat')].sources.domainEvents.kinds = []), /"chat": sources\.domainEvents\.kinds must name at least one event kind/],
    ['a kind that is not one', (r) => (r.functions[fnIndex(r, 'chat')].sources.domainEvents.kinds = ['FileProcessed']), /"chat": sources\.domainEvents\.kinds: "FileProcessed" is not an event kind/],
    ['a kind twice', (r) => r.functions[fnIndex(r, 'chat')].sources.domainEvents.kinds.push('file.deleted'), /"chat": sources\.domainEvents\.kinds: "file\.deleted" appears twice/],
    ['a subscription queue without its receives', (r) => delete r.functions[fnIndex(r, 'chat')].sources.domainEvents.queue.maxReceiveCount, /"chat": sources\.domainEvents\.queue: missing "maxReceiveCount"/],
    [
      'a subscription queue id another queue has',
      (r) => (r.functions[fnIndex(r, 'chat')].sources.queues = [{ ...QUEUE, id: 'ingest' }]),
      /"chat": sources\.domainEvents\.queue\.id "ingest" is also the id of another of its queues/,
    ],
    [
      'subscribers without a fan-out',
      (r) => {
        const purge = r.functions[fnIndex(r, 'org-purge')];
        purge.sources.fanOut = false;
        purge.environment.eventQueues = false;
        purge.permissions.sendToEventQueues = false;
      },
      /"chat", "audit" subscribe to domain events, but no function has sources\.fanOut/,
    ],
    [
      'two fan-outs (each event would reach its subscribers twice)',
      (r) => {
        const n = r.functions[fnIndex(r, 'notifications')];
        n.sources.fanOut = true;
        n.environment.eventQueues = true;
        n.permissions.sendToEventQueues = true;
      },
      /sources\.fanOut is claimed by "notifications" and "org-purge"/,
    ],
    [
      'a fan-out whose filters miss a subscribed kind',
      (r) => r.functions[fnIndex(r, 'org-purge')].sources.dynamodbStream.filters.pop(),
      /function "chat" subscribes to file\.processed, file\.deleted, which the stream filters of the fan-out "org-purge" do not let through/,
    ],
    [
      'a fan-out that is not told the queues',
      (r) => (r.functions[fnIndex(r, 'org-purge')].environment.eventQueues = false),
      /"org-purge": sources\.fanOut needs sources\.dynamodbStream .*, environment\.eventQueues .* and permissions\.sendToEventQueues/,
    ],
    [
      'a fan-out that may not send',
      (r) => (r.functions[fnIndex(r, 'org-purge')].permissions.sendToEventQueues = false),
      /"org-purge": sources\.fanOut needs/,
    ],
    [
      'the queues for a function that fans nothing out',
      (r) => (r.functions[fnIndex(r, 'notifications')].permissions.sendToEventQueues = true),
      /"notifications": environment\.eventQueues and permissions\.sendToEventQueues are for the function with sources\.fanOut/,
    ],
    ['EVENT_QUEUES from context', (r) => (r.functions[0].environment.fromContext = { EVENT_QUEUES: 'x' }), /"organizations".*the stack sets EVENT_QUEUES itself/],
  ];
  for (const [what, change, expected] of cases) {
    test(what, () => assert.throws(() => parseChanged(change), expected));
  }

  test('mail feedback alone is a source: a function invoked only by the SES feedback rule is accepted', () => {
    const r = raw();
    const n = r.functions[fnIndex(r, 'notifications')];
    n.sources = { ...n.sources, http: false, dynamodbStream: null, schedules: [], mailFeedback: true };
    const parsed = parseFunctionRegistry(r).functions.find((f) => f.name === 'notifications')!;
    assert.equal(parsed.sources.mailFeedback, true);
    // and without it, nothing invokes it (the message lists the new source too)
    n.sources.mailFeedback = false;
    assert.throws(() => parseFunctionRegistry(r), /"notifications": no source invokes it \(.*mailFeedback, malwareScanResults, domainEvents are all off\)/);
  });

  test('scan results alone are a source too (a function that only records verdicts)', () => {
    const r = raw();
    const n = r.functions[fnIndex(r, 'notifications')];
    n.sources = { ...n.sources, http: false, dynamodbStream: null, schedules: [], mailFeedback: false, malwareScanResults: true };
    const parsed = parseFunctionRegistry(r).functions.find((f) => f.name === 'notifications')!;
    assert.equal(parsed.sources.malwareScanResults, true);
  });

  test('the S3 source queue is read like a declared queue (same checks, same shape)', () => {
    const r = raw();
    const files = r.functions[fnIndex(r, 'files')];
    files.sources.queues = [{ ...files.sources.s3.queue, id: 'other' }];
    const parsed = parseFunctionRegistry(r).functions.find((f) => f.name === 'files')!;
    assert.deepEqual({ ...parsed.sources.queues[0], id: 'uploads' }, parsed.sources.s3!.queue);
  });

  test('synth stops on a bad registry, naming the function (not only the parser)', () => {
    const r = raw();
    r.functions[fnIndex(r, 'org-purge')].sources.schedules[0].expression = 'rate(0 hours)';
    assert.throws(() => synth({ functions: parseFunctionRegistry(r) }), /org-purge/);
  });

  test('a longer timeout is fine for an HTTP function that other sources need it for (org-purge)', () => {
    const purge = loadFunctionRegistry().functions.find((f) => f.name === 'org-purge')!;
    assert.ok(purge.sources.http && purge.timeoutSeconds > 29 && purge.sources.dynamodbStream !== null);
  });

  test('a longer timeout is fine for a streaming function whose only source is HTTP (REST streams up to 15 minutes)', () => {
    const r = raw();
    const chat = r.functions[fnIndex(r, 'chat')];
    chat.sources.domainEvents = null;
    const parsed = parseFunctionRegistry(r).functions.find((f) => f.name === 'chat')!;
    assert.ok(parsed.timeoutSeconds > 29 && parsed.sources.streaming);
    chat.sources.streaming = false;
    assert.throws(() => parseFunctionRegistry(r), /"chat": timeoutSeconds 120 exceeds API Gateway's 29 s integration timeout/);
  });

  test('domain events alone are a source: a function invoked only through its subscription queue is accepted', () => {
    const audit = allSourcesRegistry().functions.find((f) => f.name === 'test-audit')!;
    assert.equal(audit.sources.http, false);
    assert.deepEqual(audit.sources.domainEvents!.kinds, ['file.deleted']);
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
describe('sources.dynamodbStream (the table stream: notifications, org-purge)', () => {
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
    assert.deepEqual(consumers.map((f) => f.name).sort(), ['notifications', 'org-purge']);
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
      { eventName: ['REMOVE'], dynamodb: { OldImage: { _type: { S: ['member'] } } } },
      { eventName: ['INSERT'], dynamodb: { NewImage: { _type: { S: ['event'] }, kind: { S: AUDIT_AND_CHAT_KINDS } } } },
    ]);
    const notifications = patterns('notifications');
    assert.equal(notifications.length, 2);
    assert.deepEqual(notifications[0].eventName, ['INSERT']);
    assert.deepEqual(notifications[0].dynamodb.NewImage._type, { S: ['event'] });
    assert.ok(notifications[0].dynamodb.NewImage.kind.S.includes('member.removed'));
    assert.deepEqual(notifications[1], {
      eventName: ['REMOVE'],
      userIdentity: { type: ['Service'], principalId: ['dynamodb.amazonaws.com'] },
      dynamodb: { OldImage: { _type: { S: ['notification'] }, read: { BOOL: [false] } } },
    });
  });

  test('each role reads this stream only, and may write to its own failure queue (and the fan-out to its subscribers\' queues)', () => {
    const tableId = logicalId(s, s.stack.table);
    for (const f of consumers) {
      const stmts = roleStatements(s.template, roleLogicalId(s, f.name));
      const stream = stmts.find((x) => x.Sid === 'TableStream');
      assert.deepEqual([...stream.Action].sort(), ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams']);
      assert.deepEqual(stream.Resource, { 'Fn::GetAtt': [tableId, 'StreamArn'] });
      const sendTo = stmts
        .filter((x) => ([] as string[]).concat(x.Action).includes('sqs:SendMessage'))
        .flatMap((x) => ([] as unknown[]).concat(x.Resource).map((r) => JSON.stringify(r)));
      const subscribers = f.config.sources.fanOut ? [...s.stack.functions.values()].map((x) => x.eventQueue?.queue) : [];
      const own = [f.streamFailures, f.asyncFailures, ...subscribers]
        .filter((q) => q !== undefined)
        .map((q) => JSON.stringify({ 'Fn::GetAtt': [logicalId(s, q), 'Arn'] }));
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
      expectDepthAlarm(s.template, queueId);
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
    assert.equal(schedules.length, 6);
    for (const [name, id, expression] of [
      ['invites', 'expire-invitations', 'rate(15 minutes)'],
      ['notifications', 'notification-sweep', 'rate(15 minutes)'],
      ['files', 'upload-sweep', 'rate(15 minutes)'],
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
    for (const name of ['invites', 'notifications', 'files', 'org-purge', 'test-digest']) {
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
    // functions without asynchronous sources have none. Changed on purpose: S3 events arrive
    // through a queue now (an event source mapping, not an asynchronous invocation), and the scan
    // results only with the malware protection on (off here).
    const asyncSources = [...s.stack.functions.values()].filter((f) => f.config.sources.schedules.length > 0 || f.config.sources.mailFeedback);
    assert.deepEqual(asyncSources.map((f) => f.name).sort(), ['files', 'invites', 'notifications', 'org-purge', 'test-digest']);
    for (const name of ['test-uploads', 'test-cleanup']) assert.equal(s.stack.functions.get(name)!.asyncFailures, undefined, name);
    for (const [name, f] of s.stack.functions) {
      if (!asyncSources.includes(f)) assert.equal(f.asyncFailures, undefined, name);
    }
    assert.equal(Object.keys(resources(s.template, 'AWS::Lambda::EventInvokeConfig')).length, asyncSources.length);
  });

  test('schedules are Scheduler schedules: the only EventBridge rule is the SES mail-feedback one', () => {
    const rules = Object.entries(resources(s.template, 'AWS::Events::Rule'));
    assert.deepEqual(rules.map(([id]) => id), [logicalId(s, s.stack.functions.get('notifications')!.mailFeedbackRule)]);
    assert.equal(rules[0][1].Properties!.ScheduleExpression, undefined);
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
describe('sources.s3 (the upload bucket, through an SQS queue)', () => {
  const s = synth({ context: PROD_CONTEXT, functions: allSourcesRegistry() });
  const bucketId = () => logicalId(s, s.stack.uploadBucket);
  const SUBSCRIBERS = [
    // function, queue id, events, prefix, batch size, max receives, visibility timeout (6x the function's timeout at least)
    ['files', 'uploads', 's3:ObjectCreated:*', 'uploads/', 1, 5, 360],
    ['test-uploads', 'imports', 's3:ObjectCreated:*', 'imports/', 10, 3, 180],
    ['test-cleanup', 'removals', 's3:ObjectRemoved:*', null, 10, 5, 120],
  ] as const;
  const queueOf = (name: string) => s.stack.functions.get(name)!.uploadQueue!;

  test('the bucket notifies each function\'s queue (not the function) of the listed events, filtered on the prefix when there is one', () => {
    const [, n] = Object.entries(resources(s.template, 'Custom::S3BucketNotifications'))[0];
    assert.deepEqual(n.Properties!.BucketName, { Ref: bucketId() });
    const config = n.Properties!.NotificationConfiguration;
    assert.equal(config.LambdaFunctionConfigurations, undefined, 'S3 never invokes a function directly');
    assert.deepEqual(
      config.QueueConfigurations,
      SUBSCRIBERS.map(([name, , event, prefix]) => ({
        Events: [event],
        ...(prefix !== null ? { Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: prefix }] } } } : {}),
        QueueArn: { 'Fn::GetAtt': [logicalId(s, queueOf(name).queue), 'Arn'] },
      })),
    );
    // and the notification waits for each queue and its policy (S3 checks the destination)
    const dependsOn = ([] as string[]).concat(n.DependsOn ?? []);
    for (const [name] of SUBSCRIBERS) {
      assert.ok(dependsOn.includes(logicalId(s, queueOf(name).queue)), name);
      const policyId = s.stack.getLogicalId(queueOf(name).queue.node.findChild('Policy').node.defaultChild as any);
      assert.ok(dependsOn.includes(policyId), name);
    }
  });

  test('each queue: S3 may send from this bucket and account only (SendMessage), over TLS only', () => {
    for (const [name] of SUBSCRIBERS) {
      const queueId = logicalId(s, queueOf(name).queue);
      const policy = Object.values(resources(s.template, 'AWS::SQS::QueuePolicy')).find((p) => JSON.stringify(p.Properties!.Queues) === JSON.stringify([{ Ref: queueId }]))!;
      const statements = policy.Properties!.PolicyDocument.Statement as any[];
      assert.ok(statements.some((x) => x.Effect === 'Deny' && x.Condition?.Bool?.['aws:SecureTransport'] === 'false'), name);
      const allows = statements.filter((x) => x.Effect === 'Allow');
      assert.deepEqual(allows, [
        {
          Sid: 'UploadBucketNotifications',
          Effect: 'Allow',
          Principal: { Service: 's3.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: { 'Fn::GetAtt': [queueId, 'Arn'] },
          Condition: {
            ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [bucketId(), 'Arn'] } },
            StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
          },
        },
      ], name);
    }
    // S3 invokes no function itself
    assert.ok(!Object.values(resources(s.template, 'AWS::Lambda::Permission')).some((p) => p.Properties!.Principal === 's3.amazonaws.com'));
  });

  test('each queue: encrypted, a dead-letter queue after maxReceiveCount receives (alarmed), a visibility timeout of 6x the function\'s timeout at least', () => {
    for (const [name, , , , , maxReceiveCount, visibility] of SUBSCRIBERS) {
      const { queue, deadLetterQueue } = queueOf(name);
      const q = resources(s.template, 'AWS::SQS::Queue')[logicalId(s, queue)].Properties!;
      const dlqId = logicalId(s, deadLetterQueue);
      assert.equal(q.SqsManagedSseEnabled, true, name);
      assert.deepEqual(q.RedrivePolicy, { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount }, name);
      assert.equal(q.VisibilityTimeout, visibility, name);
      const fn = s.stack.functions.get(name)!.config;
      assert.ok(q.VisibilityTimeout >= 6 * fn.timeoutSeconds, name);
      const dlq = resources(s.template, 'AWS::SQS::Queue')[dlqId].Properties!;
      assert.equal(dlq.SqsManagedSseEnabled, true, name);
      assert.equal(dlq.MessageRetentionPeriod, 14 * 24 * 3600, name);
      expectDepthAlarm(s.template, dlqId);
    }
  });

  test('an event source mapping per queue: its batch size, reporting partial batch failures', () => {
    for (const [name, , , , batchSize] of SUBSCRIBERS) {
      const mappings = Object.values(resources(s.template, 'AWS::Lambda::EventSourceMapping')).filter(
        (m) => JSON.stringify(m.Properties!.EventSourceArn) === JSON.stringify({ 'Fn::GetAtt': [logicalId(s, queueOf(name).queue), 'Arn'] }),
      );
      assert.equal(mappings.length, 1, name);
      assert.deepEqual(mappings[0].Properties!.FunctionName, { Ref: functionLogicalId(s, name) }, name);
      assert.equal(mappings[0].Properties!.BatchSize, batchSize, name);
      assert.deepEqual(mappings[0].Properties!.FunctionResponseTypes, ['ReportBatchItemFailures'], name);
    }
  });

  test('the role consumes its queue; no QUEUE_URL for it; no S3 action comes with the source', () => {
    for (const [name, queueId] of SUBSCRIBERS) {
      const queueArn = JSON.stringify({ 'Fn::GetAtt': [logicalId(s, queueOf(name).queue), 'Arn'] });
      const stmts = roleStatements(s.template, roleLogicalId(s, name));
      const receive = stmts.find((x) => ([] as string[]).concat(x.Action).includes('sqs:ReceiveMessage'));
      assert.equal(JSON.stringify(receive.Resource), queueArn, name);
      assert.equal(envOf(s, name)[queueUrlEnvName(queueId)], undefined, name);
      // what the function may do on the bucket is permissions.s3, exactly
      const s3Actions = stmts.filter((x) => JSON.stringify(x.Action).includes('"s3:')).flatMap((x) => ([] as string[]).concat(x.Action)).sort();
      assert.deepEqual(s3Actions, [...s.stack.functions.get(name)!.config.permissions.s3].sort(), name);
    }
  });

  test('the prefixes and the scan-result detail type are the Rust side\'s (shared/store, functions/files)', () => {
    const store = fs.readFileSync(`${REPO_ROOT}/shared/store/src/files.rs`, 'utf8');
    assert.match(store, new RegExp(`pub const UPLOAD_PREFIX: &str = "${UPLOAD_PREFIX}";`));
    assert.match(store, new RegExp(`pub const DERIVED_PREFIX: &str = "${DERIVED_PREFIX}";`));
    assert.deepEqual([...UPLOAD_BUCKET_PREFIXES], [UPLOAD_PREFIX, DERIVED_PREFIX]);
    const scan = fs.readFileSync(`${REPO_ROOT}/functions/files/src/scan.rs`, 'utf8');
    assert.match(scan, new RegExp(`pub const SCAN_RESULT_DETAIL_TYPE: &str = "${MALWARE_SCAN_DETAIL_TYPE}";`));
    // and the files function's S3 source is filtered on the prefix GuardDuty scans
    assert.equal(loadFunctionRegistry().functions.find((f) => f.name === 'files')!.sources.s3!.prefix, UPLOAD_PREFIX);
  });

  test('UPLOAD_BUCKET follows environment.uploadBucket (test-uploads has it, test-cleanup does not)', () => {
    assert.deepEqual(envOf(s, 'test-uploads').UPLOAD_BUCKET, { Ref: bucketId() });
    assert.equal(envOf(s, 'test-cleanup').UPLOAD_BUCKET, undefined);
  });
});

// ---- SES feedback ----------------------------------------------------------------------------------------
describe('sources.mailFeedback (SES bounces and complaints through EventBridge)', () => {
  for (const st of ['dev', 'prod'] as const) {
    const s = stage(st);
    const f = () => s.stack.functions.get('notifications')!;
    const ruleId = () => logicalId(s, f().mailFeedbackRule);
    const dlqId = () => logicalId(s, f().mailFeedbackFailures);

    test(`${st}: one rule on the default bus: source aws.ses, detail types Email Bounced and Email Complaint Received`, () => {
      const rules = resources(s.template, 'AWS::Events::Rule');
      assert.deepEqual(Object.keys(rules), [ruleId()]);
      const rule = rules[ruleId()].Properties!;
      assert.equal(rule.EventBusName, undefined, 'the default bus (SES publishes there only)');
      assert.equal(rule.State, 'ENABLED');
      assert.deepEqual(rule.EventPattern, { source: ['aws.ses'], 'detail-type': ['Email Bounced', 'Email Complaint Received'] });
      assert.deepEqual(MAIL_FEEDBACK_DETAIL_TYPES, ['Email Bounced', 'Email Complaint Received']);
      // and the repository's sample events match it
      for (const file of ['ses-bounce.json', 'ses-complaint.json']) {
        const event = JSON.parse(fs.readFileSync(`${REPO_ROOT}/events/eventbridge/${file}`, 'utf8'));
        assert.ok(rule.EventPattern.source.includes(event.source), file);
        assert.ok(rule.EventPattern['detail-type'].includes(event['detail-type']), file);
      }
    });

    test(`${st}: the rule targets the function, with bounded retries and event age, and a dead-letter queue`, () => {
      const targets = resources(s.template, 'AWS::Events::Rule')[ruleId()].Properties!.Targets as any[];
      assert.equal(targets.length, 1);
      assert.deepEqual(targets[0].Arn, { 'Fn::GetAtt': [functionLogicalId(s, 'notifications'), 'Arn'] });
      assert.deepEqual(targets[0].RetryPolicy, {
        MaximumRetryAttempts: MAIL_FEEDBACK_RETRY_ATTEMPTS,
        MaximumEventAgeInSeconds: MAIL_FEEDBACK_MAX_EVENT_AGE.toSeconds(),
      });
      assert.ok(MAIL_FEEDBACK_RETRY_ATTEMPTS < 185 && MAIL_FEEDBACK_MAX_EVENT_AGE.toHours() < 24, 'below EventBridge\'s defaults');
      assert.deepEqual(targets[0].DeadLetterConfig, { Arn: { 'Fn::GetAtt': [dlqId(), 'Arn'] } });
      assert.equal(targets[0].Input, undefined, 'the SES event itself (EventBridgeEvent)');
    });

    test(`${st}: the dead-letter queue: encrypted, 14 days, TLS only, written by this rule only, alarmed`, () => {
      const q = resources(s.template, 'AWS::SQS::Queue')[dlqId()];
      assert.equal(q.Properties!.SqsManagedSseEnabled, true);
      assert.equal(q.Properties!.MessageRetentionPeriod, 14 * 24 * 3600);
      const policies = Object.values(resources(s.template, 'AWS::SQS::QueuePolicy')).filter((p) =>
        JSON.stringify(p.Properties!.Queues).includes(`"${dlqId()}"`),
      );
      assert.equal(policies.length, 1);
      const statements = policies[0].Properties!.PolicyDocument.Statement as any[];
      assert.ok(statements.some((x) => x.Effect === 'Deny' && x.Condition?.Bool?.['aws:SecureTransport'] === 'false'));
      const allows = statements.filter((x) => x.Effect === 'Allow');
      assert.equal(allows.length, 1, JSON.stringify(allows));
      assert.deepEqual(allows[0].Principal, { Service: 'events.amazonaws.com' });
      assert.equal(allows[0].Action, 'sqs:SendMessage');
      assert.deepEqual(allows[0].Condition, { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [ruleId(), 'Arn'] } } });
      expectDepthAlarm(s.template, dlqId());
    });

    test(`${st}: EventBridge may invoke the function from this rule only`, () => {
      const perms = Object.values(resources(s.template, 'AWS::Lambda::Permission')).filter(
        (p) => p.Properties!.Principal === 'events.amazonaws.com',
      );
      assert.equal(perms.length, 1);
      assert.deepEqual(perms[0].Properties!.FunctionName, { 'Fn::GetAtt': [functionLogicalId(s, 'notifications'), 'Arn'] });
      assert.equal(perms[0].Properties!.Action, 'lambda:InvokeFunction');
      assert.deepEqual(perms[0].Properties!.SourceArn, { 'Fn::GetAtt': [ruleId(), 'Arn'] });
    });

    test(`${st}: a failed invocation (Lambda's retries, asynchronous) lands in the function's async-failure queue`, () => {
      s.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: functionLogicalId(s, 'notifications') },
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(s, f().asyncFailures), 'Arn'] } } },
      });
    });
  }

  test('only the function that claims it gets a rule; without a claim there is none', () => {
    const s = stage('dev');
    for (const [name, f] of s.stack.functions) {
      assert.equal(f.mailFeedbackRule !== undefined, name === 'notifications', name);
      assert.equal(f.mailFeedbackFailures !== undefined, name === 'notifications', name);
    }
    const n = loadFunctionRegistry().functions.find((x) => x.name === 'notifications')!;
    const without = synth({ functions: registryWith({ ...n, sources: { ...n.sources, mailFeedback: false } }) });
    without.template.resourceCountIs('AWS::Events::Rule', 0);
    assert.ok(!Object.values(resources(without.template, 'AWS::Lambda::Permission')).some((p) => p.Properties!.Principal === 'events.amazonaws.com'));
    // the configuration set stays: the function still names it when sending
    without.template.resourceCountIs('AWS::SES::ConfigurationSet', 1);
  });

  test('a function whose only source is the mail feedback: a rule, its dead-letter queue and the async-failure queue', () => {
    const n = loadFunctionRegistry().functions.find((x) => x.name === 'notifications')!;
    const only = {
      ...n,
      name: 'mail-feedback',
      environment: { ...n.environment, apiUrl: false },
      sources: { ...n.sources, http: false, dynamodbStream: null, schedules: [], mailFeedback: true },
    };
    const s = synth({
      functions: registryWith({ ...n, sources: { ...n.sources, mailFeedback: false } }, only),
    });
    const f = s.stack.functions.get('mail-feedback')!;
    assert.ok(f.mailFeedbackRule && f.mailFeedbackFailures && f.asyncFailures);
    const [rule] = Object.values(resources(s.template, 'AWS::Events::Rule'));
    assert.deepEqual(rule.Properties!.Targets[0].Arn, { 'Fn::GetAtt': [functionLogicalId(s, 'mail-feedback'), 'Arn'] });
  });
});

// ---- environment: API_URL and SES_CONFIGURATION_SET --------------------------------------------------
describe('environment.apiUrl and environment.sesConfigurationSet', () => {
  for (const st of ['dev', 'prod'] as const) {
    const s = stage(st);

    test(`${st}: API_URL is the stage's base URL, from the API's id, the region, the URL suffix and the stage name`, () => {
      const apiId = logicalId(s, s.stack.api);
      for (const [name, { config }] of s.stack.functions) {
        const env = envOf(s, name);
        if (!config.environment.apiUrl) {
          assert.equal(env.API_URL, undefined, name);
          continue;
        }
        assert.deepEqual(
          env.API_URL,
          { 'Fn::Join': ['', ['https://', { Ref: apiId }, '.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, `/${st}`]] },
          name,
        );
      }
      assert.ok(envOf(s, 'notifications').API_URL, 'notifications has it');
      // the same URL as the stack's ApiUrl output (which may refer to the stage), without its trailing "/"
      const output = s.template.toJSON().Outputs.ApiUrl.Value['Fn::Join'][1] as unknown[];
      assert.deepEqual(output.slice(0, 6), envOf(s, 'notifications').API_URL['Fn::Join'][1].slice(0, 6));
    });

    test(`${st}: no circular dependency (function -> API id; stage -> deployment -> methods -> function)`, () => {
      assert.equal(dependencyCycle(s.template.toJSON()), undefined);
      const fn = resources(s.template, 'AWS::Lambda::Function')[functionLogicalId(s, 'notifications')];
      const text = JSON.stringify(fn);
      for (const type of ['AWS::ApiGateway::Stage', 'AWS::ApiGateway::Deployment', 'AWS::ApiGateway::Method']) {
        for (const id of Object.keys(resources(s.template, type))) assert.ok(!text.includes(`"${id}"`), `the function refers to ${type} ${id}`);
      }
    });

    test(`${st}: SES_CONFIGURATION_SET is the stack's configuration set, for the functions that ask for it`, () => {
      const setId = logicalId(s, s.stack.mailConfigurationSet);
      for (const [name, { config }] of s.stack.functions) {
        const env = envOf(s, name);
        if (config.environment.sesConfigurationSet) assert.deepEqual(env.SES_CONFIGURATION_SET, { Ref: setId }, name);
        else assert.equal(env.SES_CONFIGURATION_SET, undefined, name);
      }
      assert.deepEqual(
        [...s.stack.functions.values()].filter((f) => f.config.environment.sesConfigurationSet).map((f) => f.name).sort(),
        ['invites', 'notifications'],
      );
    });
  }

  test('the cycle checks are live: API_URL from api.url (which names the stage) would close a cycle', () => {
    // CDK's assertions refuse the template (Template.fromStack checks for cycles), naming the function
    assert.throws(
      () => synth({ tweak: (stack) => stack.functions.get('notifications')!.fn.addEnvironment('API_URL_FROM_STAGE', stack.api.url) }),
      /dependency cycle: .*ApiDeploymentStage.*Notifications[0-9A-F]{8}/s,
    );
    // and so does the explicit check, on templates written with and without one
    assert.deepEqual(dependencyCycle({ Resources: { A: { Properties: { X: { Ref: 'B' } } }, B: { DependsOn: ['A'] } } }), ['A', 'B', 'A']);
    assert.equal(dependencyCycle({ Resources: { A: { Properties: { X: { Ref: 'B' } } }, B: {} } }), undefined);
  });
});

// ---- domain events and the fan-out ------------------------------------------------------------------------
/** A template value as text: Fn::Join flattened, references as <LogicalId> or <LogicalId.Attribute>. */
const asText = (v: any): string => {
  if (typeof v === 'string') return v;
  if (v['Fn::Join'] !== undefined) return (v['Fn::Join'][1] as any[]).map(asText).join(v['Fn::Join'][0]);
  if (v.Ref !== undefined) return `<${v.Ref}>`;
  if (v['Fn::GetAtt'] !== undefined) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
  return assert.fail(`not a text value: ${JSON.stringify(v)}`);
};

describe('sources.domainEvents and sources.fanOut (the domain events, from the table stream through the fan-out)', () => {
  const scenarios: [string, () => Synth, string[]][] = [
    ['repository', () => stage('dev'), ['audit', 'chat']],
    ['with the test fixture', () => synth({ context: PROD_CONTEXT, functions: allSourcesRegistry() }), ['audit', 'chat', 'test-audit']],
  ];
  for (const [label, make, expected] of scenarios) {
    const s = make();
    const subscribers = () => [...s.stack.functions.values()].filter((f) => f.config.sources.domainEvents !== null);
    const fanOut = () => [...s.stack.functions.values()].filter((f) => f.config.sources.fanOut);

    test(`${label}: the subscribers (${expected.join(', ')}) each have a queue; org-purge fans the events out`, () => {
      assert.deepEqual(subscribers().map((f) => f.name).sort(), expected);
      for (const f of s.stack.functions.values()) assert.equal(f.eventQueue !== undefined, expected.includes(f.name), f.name);
      assert.deepEqual(fanOut().map((f) => f.name), ['org-purge']);
    });

    test(`${label}: each queue: encrypted, TLS only, a dead-letter queue after maxReceiveCount receives (alarmed), visibility at least 6x the function's timeout`, () => {
      for (const f of subscribers()) {
        const q = f.config.sources.domainEvents!.queue;
        const queue = resources(s.template, 'AWS::SQS::Queue')[logicalId(s, f.eventQueue!.queue)].Properties!;
        const dlqId = logicalId(s, f.eventQueue!.deadLetterQueue);
        assert.equal(queue.SqsManagedSseEnabled, true, f.name);
        assert.deepEqual(queue.RedrivePolicy, { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: q.maxReceiveCount }, f.name);
        assert.equal(queue.VisibilityTimeout, queueVisibilityTimeoutSeconds(f.config.timeoutSeconds, q.visibilityTimeoutSeconds), f.name);
        assert.ok(queue.VisibilityTimeout >= 6 * f.config.timeoutSeconds, f.name);
        const dlq = resources(s.template, 'AWS::SQS::Queue')[dlqId].Properties!;
        assert.deepEqual([dlq.SqsManagedSseEnabled, dlq.MessageRetentionPeriod], [true, 14 * 24 * 3600], f.name);
        for (const qid of [logicalId(s, f.eventQueue!.queue), dlqId]) {
          const policy = Object.values(resources(s.template, 'AWS::SQS::QueuePolicy')).find((p) => JSON.stringify(p.Properties!.Queues).includes(`"${qid}"`));
          assert.ok(policy && JSON.stringify(policy).includes('aws:SecureTransport'), qid);
        }
        expectDepthAlarm(s.template, dlqId);
      }
    });

    test(`${label}: an event source mapping per queue (its batch size, partial batch failures); the role consumes it; no QUEUE_URL for it`, () => {
      for (const f of subscribers()) {
        const q = f.config.sources.domainEvents!.queue;
        const queueArn = { 'Fn::GetAtt': [logicalId(s, f.eventQueue!.queue), 'Arn'] };
        const mappings = Object.values(resources(s.template, 'AWS::Lambda::EventSourceMapping')).filter(
          (m) => JSON.stringify(m.Properties!.EventSourceArn) === JSON.stringify(queueArn),
        );
        assert.equal(mappings.length, 1, f.name);
        assert.deepEqual(mappings[0].Properties!.FunctionName, { Ref: functionLogicalId(s, f.name) }, f.name);
        assert.equal(mappings[0].Properties!.BatchSize, q.batchSize, f.name);
        assert.deepEqual(mappings[0].Properties!.FunctionResponseTypes, ['ReportBatchItemFailures'], f.name);
        const receive = roleStatements(s.template, roleLogicalId(s, f.name)).find((x) => ([] as string[]).concat(x.Action).includes('sqs:ReceiveMessage'));
        assert.deepEqual(receive.Resource, queueArn, f.name);
        assert.equal(envOf(s, f.name)[queueUrlEnvName(q.id)], undefined, f.name);
      }
    });

    test(`${label}: the fan-out is told every subscriber's queue and kinds (EVENT_QUEUES); nobody else is`, () => {
      for (const [name] of s.stack.functions) {
        const value = envOf(s, name).EVENT_QUEUES;
        if (name !== 'org-purge') {
          assert.equal(value, undefined, name);
          continue;
        }
        const queues = JSON.parse(asText(value));
        assert.deepEqual(
          queues,
          subscribers().map((f) => ({ kinds: [...f.config.sources.domainEvents!.kinds], queueUrl: `<${logicalId(s, f.eventQueue!.queue)}>` })),
        );
      }
    });

    test(`${label}: the fan-out may send to exactly those queues (sqs:SendMessage, which authorizes SendMessageBatch); nobody else may`, () => {
      const queueArns = subscribers().map((f) => JSON.stringify({ 'Fn::GetAtt': [logicalId(s, f.eventQueue!.queue), 'Arn'] }));
      const send = roleStatements(s.template, roleLogicalId(s, 'org-purge')).find((x) => x.Sid === 'EventQueues');
      assert.equal(send.Action, 'sqs:SendMessage');
      assert.deepEqual(([] as unknown[]).concat(send.Resource).map((r) => JSON.stringify(r)).sort(), [...queueArns].sort());
      for (const [name] of s.stack.functions) {
        if (name === 'org-purge') continue;
        for (const st of roleStatements(s.template, roleLogicalId(s, name))) {
          if (!([] as string[]).concat(st.Action).includes('sqs:SendMessage')) continue;
          for (const r of ([] as unknown[]).concat(st.Resource)) assert.ok(!queueArns.includes(JSON.stringify(r)), `${name} may send to a subscriber's queue`);
        }
      }
    });
  }

  test('a fan-out without subscribers: EVENT_QUEUES is an empty list, and it may send to no subscriber queue', () => {
    const [chat, audit] = ['chat', 'audit'].map((n) => loadFunctionRegistry().functions.find((f) => f.name === n)!);
    const s = synth({
      functions: registryWith({ ...chat, sources: { ...chat.sources, domainEvents: null } }, { ...audit, sources: { ...audit.sources, domainEvents: null } }),
    });
    assert.equal(envOf(s, 'org-purge').EVENT_QUEUES, '[]');
    assert.equal(roleStatements(s.template, roleLogicalId(s, 'org-purge')).find((x) => x.Sid === 'EventQueues'), undefined);
    assert.equal(s.stack.functions.get('chat')!.eventQueue, undefined);
  });

  test('EVENT_QUEUES is what org-purge reads (functions/org-purge): the variable and the shape', () => {
    const fanOut = fs.readFileSync(`${REPO_ROOT}/functions/org-purge/src/fan_out.rs`, 'utf8');
    assert.match(fanOut, /pub const EVENT_QUEUES_ENV: &str = "EVENT_QUEUES";/);
    assert.match(fanOut, /rename_all = "camelCase"/);
    assert.match(fanOut, /pub kinds: Vec<String>,\s*pub queue_url: String,/);
  });
});

// ---- streaming ----------------------------------------------------------------------------------------------
describe('sources.streaming (API Gateway REST response streaming)', () => {
  for (const st of ['dev', 'prod'] as const) {
    test(`${st}: every route of a streaming function goes through InvokeWithResponseStream with STREAM and the function's timeout; the others are buffered`, () => {
      const s = stage(st);
      const methods = methodsByRoute(s.template);
      let streamed = 0;
      for (const route of loadRouteManifest().routes) {
        const integration = methods.get(`${route.method} ${route.path}`)!.Properties!.Integration;
        const config = s.stack.functions.get(route.function)!.config;
        const uri = asText(integration.Uri);
        const fnArn = `<${functionLogicalId(s, route.function)}.Arn>`;
        assert.equal(integration.Type, 'AWS_PROXY', `${route.method} ${route.path}`);
        if (config.sources.streaming) {
          streamed++;
          assert.equal(integration.ResponseTransferMode, 'STREAM', `${route.method} ${route.path}`);
          assert.equal(uri, `arn:<AWS::Partition>:apigateway:<AWS::Region>:lambda:path/2021-11-15/functions/${fnArn}/response-streaming-invocations`);
          assert.equal(integration.TimeoutInMillis, config.timeoutSeconds * 1000, `${route.method} ${route.path}`);
        } else {
          assert.equal(integration.ResponseTransferMode, undefined, `${route.method} ${route.path}`);
          assert.equal(uri, `arn:<AWS::Partition>:apigateway:<AWS::Region>:lambda:path/2015-03-31/functions/${fnArn}/invocations`);
          assert.equal(integration.TimeoutInMillis, undefined, `${route.method} ${route.path}: the default 29 s`);
        }
      }
      const chatRoutes = loadRouteManifest().routes.filter((r) => r.function === 'chat').length;
      assert.ok(chatRoutes > 0 && streamed === chatRoutes, `${streamed} streamed routes, chat has ${chatRoutes}`);
    });
  }

  test('the streamed answer may last as long as the function, up to REST\'s 15 minutes', () => {
    const chat = loadFunctionRegistry().functions.find((f) => f.name === 'chat')!;
    for (const timeoutSeconds of [20, 900]) {
      const s = synth({ functions: registryWith({ ...chat, timeoutSeconds }) });
      const integration = methodsByRoute(s.template).get('POST /orgs/{orgId}/conversations/{conversationId}/messages')!.Properties!.Integration;
      assert.equal(integration.TimeoutInMillis, timeoutSeconds * 1000);
    }
    assert.equal(STREAMING_MAX_TIMEOUT_SECONDS, 900);
  });

  test('the one invoke permission covers streaming (InvokeWithResponseStream is authorized as lambda:InvokeFunction)', () => {
    const s = stage('dev');
    const perms = Object.values(resources(s.template, 'AWS::Lambda::Permission')).filter(
      (p) => p.Properties!.Principal === 'apigateway.amazonaws.com' && JSON.stringify(p.Properties!.FunctionName).includes(`"${functionLogicalId(s, 'chat')}"`),
    );
    assert.equal(perms.length, 1);
    assert.equal(perms[0].Properties!.Action, 'lambda:InvokeFunction');
  });
});
