// checkov, an infrastructure scanner independent of cdk-nag, over the synthesized templates of dev
// and prod (and prod with every option and every event source kind): no failed check. Every
// finding the stack accepts is acknowledged in lib/checkov.ts with its reason; a new finding fails
// here, naming the check and the resource. One checkov run scans all templates (about 15 s).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { INFRA_DIR, REPO_ROOT } from '../lib/definitions';
import { checkovSkips } from '../lib/checkov';
import { DEV_CONTEXT, PROD_CONTEXT, Resource, Synth, allSourcesRegistry, isCdkHandler, publicRouteManifest, synth } from './helpers';

const CHECKOV = process.env.CHECKOV ?? path.join(REPO_ROOT, '.venv', 'checkov', 'bin', 'checkov');
/** The project's own checks (CKV_TENANTRY_*). */
const CUSTOM_CHECKS = path.join(INFRA_DIR, 'checkov');

const SCENARIOS: Record<string, () => Synth> = {
  dev: () => synth({ context: DEV_CONTEXT }),
  prod: () => synth({ context: PROD_CONTEXT }),
  // The hosted console on CloudFront's generated domain, origins and app URL from it alone.
  'prod with the console': () => synth({ context: { stage: 'prod', mailDomain: 'example.com', console: 'true' } }),
  // Every event source kind (S3 through queues with CDK's notification handler, queues, schedules,
  // stream, malware scan results), GuardDuty Malware Protection, versioning, Plus feature plan,
  // several origins.
  'prod with every option and future function': () =>
    synth({
      context: {
        ...PROD_CONTEXT,
        cognitoFeaturePlan: 'plus',
        allowedOrigins: 'https://a.example.com,https://b.example.com',
        malwareProtection: 'true',
        bucketVersioning: 'true',
        console: 'true',
        consoleDomain: 'console.example.com',
        consoleCertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/0b8c3f0e-8f8e-4d2b-9c57-3e2d1a9f6b11',
        consoleWebAclArn: 'arn:aws:wafv2:us-east-1:123456789012:global/webacl/tenantry/7a1e2f3c-4b5d-4e6f-8a9b-0c1d2e3f4a5b',
      },
      functions: allSourcesRegistry(),
      routes: publicRouteManifest(),
    }),
};

/** A template checkov must fail: the scanner and the project's checks are live. */
const CANARY = {
  AWSTemplateFormatVersion: '2010-09-09',
  Resources: { UnencryptedQueue: { Type: 'AWS::SQS::Queue', Properties: { SqsManagedSseEnabled: false } } },
};

interface CheckResult {
  check_id: string;
  check_name: string;
  resource: string;
  file_path: string;
  suppress_comment?: string;
}

interface Report {
  passed: CheckResult[];
  failed: CheckResult[];
  skipped: CheckResult[];
  parsingErrors: string[];
}

const slug = (name: string) => name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-checkov-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const templates = new Map<string, Record<string, Resource>>();
/** checkov's results by file name */
const reports = new Map<string, Report>();
let runError: string | undefined;

before(() => {
  for (const [name, make] of Object.entries(SCENARIOS)) {
    const template = make().template.toJSON();
    templates.set(name, template.Resources as Record<string, Resource>);
    fs.writeFileSync(path.join(dir, `${slug(name)}.template.json`), JSON.stringify(template, null, 1));
  }
  fs.writeFileSync(path.join(dir, 'canary.template.json'), JSON.stringify(CANARY, null, 1));

  if (!fs.existsSync(CHECKOV)) {
    runError = `checkov not found at ${CHECKOV}: run \`make install-infra\``;
    return;
  }
  const r = spawnSync(
    CHECKOV,
    ['--directory', dir, '--framework', 'cloudformation', '--external-checks-dir', CUSTOM_CHECKS, '--compact', '--output', 'json'],
    {
      cwd: dir, // no .checkov.yaml from elsewhere
      encoding: 'utf8',
      timeout: 300_000,
      maxBuffer: 64 * 1024 * 1024,
      env: {
        ...process.env,
        // Offline: no download of Prisma Cloud's check mappings; no bytecode next to the project's checks.
        BC_SKIP_MAPPING: 'TRUE',
        PYTHONDONTWRITEBYTECODE: '1',
        LOG_LEVEL: 'ERROR',
      },
    },
  );
  // checkov exits 1 when a check fails (the canary always does); anything else is an error.
  if (r.status !== 0 && r.status !== 1) {
    runError = `checkov exited ${r.status}:\n${r.stdout}\n${r.stderr}`;
    return;
  }
  const parsed = JSON.parse(r.stdout) as unknown;
  const runs = (Array.isArray(parsed) ? parsed : [parsed]) as {
    check_type: string;
    results: { passed_checks: CheckResult[]; failed_checks: CheckResult[]; skipped_checks: CheckResult[]; parsing_errors: string[] };
  }[];
  for (const run of runs) {
    const add = (kind: 'passed' | 'failed' | 'skipped', results: CheckResult[]) => {
      for (const res of results) {
        const file = path.basename(res.file_path);
        const report = reports.get(file) ?? { passed: [], failed: [], skipped: [], parsingErrors: [] };
        report[kind].push(res);
        reports.set(file, report);
      }
    };
    add('passed', run.results.passed_checks);
    add('failed', run.results.failed_checks);
    add('skipped', run.results.skipped_checks);
    for (const e of run.results.parsing_errors ?? []) {
      const file = path.basename(e);
      const report = reports.get(file) ?? { passed: [], failed: [], skipped: [], parsingErrors: [] };
      report.parsingErrors.push(e);
      reports.set(file, report);
    }
  }
});

function reportOf(name: string): Report {
  assert.equal(runError, undefined, runError);
  const report = reports.get(`${slug(name)}.template.json`);
  assert.ok(report, `checkov reported nothing for ${name}`);
  return report;
}

describe('checkov (CloudFormation)', () => {
  for (const name of Object.keys(SCENARIOS)) {
    test(`${name}: no failed check`, (t) => {
      const report = reportOf(name);
      assert.deepEqual(report.parsingErrors, []);
      assert.ok(report.passed.length > 100, `only ${report.passed.length} checks passed: did checkov read the template?`);
      t.diagnostic(`${report.passed.length} passed, ${report.skipped.length} acknowledged (lib/checkov.ts)`);
      const failures = report.failed.map((f) => `${f.check_id} ${f.resource}: ${f.check_name}`);
      assert.deepEqual(
        failures,
        [],
        `checkov findings: fix them, or acknowledge them with a reason in lib/checkov.ts:\n${failures.join('\n')}`,
      );
    });

    test(`${name}: every acknowledgement has a written reason and names a check checkov applies there`, () => {
      const report = reportOf(name);
      const applied = new Set(report.skipped.map((s) => `${s.resource} ${s.check_id}`));
      let count = 0;
      for (const [logicalId, resource] of Object.entries(templates.get(name)!)) {
        for (const skip of checkovSkips(resource)) {
          assert.match(skip.id, /^CKV2?_[A-Z]+_\d+$/, `${logicalId}: ${skip.id}`);
          assert.ok(skip.comment.length >= 60, `${logicalId} ${skip.id}: reason too short: ${skip.comment}`);
          // A typo in the id, or a check that does not exist for this resource type, would
          // acknowledge nothing: checkov lists every acknowledgement it applied as skipped.
          assert.ok(applied.has(`${resource.Type}.${logicalId} ${skip.id}`), `${logicalId} ${skip.id}: checkov did not apply it`);
          count++;
        }
      }
      assert.ok(count > 0);
    });
  }

  test('the acknowledgements follow the settings: dev acknowledges what prod fixes', () => {
    // (CDK's deploy-time handlers are acknowledged in every stage: not ours to configure.)
    const ids = (name: string) =>
      new Set(reportOf(name).skipped.filter((s) => !isCdkHandler(s.resource.split('.')[1] ?? '')).map((s) => s.check_id));
    // prod: reserved concurrency on every function, X-Ray on the API stage.
    for (const id of ['CKV_AWS_115', 'CKV_AWS_73']) {
      assert.ok(ids('dev').has(id), `dev: ${id}`);
      assert.ok(!ids('prod').has(id), `prod must not acknowledge ${id}`);
      assert.ok(reportOf('prod').passed.some((p) => p.check_id === id), `prod: ${id} passes`);
    }
    // Changed on purpose: the upload bucket is unversioned in every stage (the files function
    // assumes it), so CKV_AWS_21 is acknowledged in both; with bucketVersioning=true it passes.
    const uploadVersioning = (name: string, kind: 'skipped' | 'passed') =>
      reportOf(name)[kind].some((p) => p.check_id === 'CKV_AWS_21' && p.resource.includes('.UploadBucket'));
    assert.ok(uploadVersioning('dev', 'skipped') && uploadVersioning('prod', 'skipped'));
    assert.ok(uploadVersioning('prod with every option and future function', 'passed'));
    // The upload bucket's access logs are on in both stages.
    for (const name of ['dev', 'prod']) {
      const logging = reportOf(name).passed.filter((p) => p.check_id === 'CKV_AWS_18');
      assert.ok(logging.some((p) => p.resource.includes('UploadBucket')), `${name}: upload bucket access logs`);
    }
  });

  test('every queue is encrypted: the project check CKV_TENANTRY_1 passes where CKV_AWS_27 is acknowledged', () => {
    for (const name of Object.keys(SCENARIOS)) {
      const report = reportOf(name);
      const encrypted = new Set(report.passed.filter((p) => p.check_id === 'CKV_TENANTRY_1').map((p) => p.resource));
      const queues = Object.entries(templates.get(name)!).filter(([, r]) => r.Type === 'AWS::SQS::Queue');
      assert.ok(queues.length >= 4, name);
      for (const [id] of queues) assert.ok(encrypted.has(`AWS::SQS::Queue.${id}`), `${name}: ${id}`);
    }
  });

  test('the scanner is live: an unencrypted queue fails CKV_AWS_27 and CKV_TENANTRY_1', () => {
    assert.equal(runError, undefined, runError);
    const failed = (reports.get('canary.template.json')?.failed ?? []).map((f) => f.check_id);
    assert.ok(failed.includes('CKV_AWS_27'), failed.join());
    assert.ok(failed.includes('CKV_TENANTRY_1'), failed.join());
  });
});
