// The real `cdk synth` (the CLI, offline, no AWS credentials) for dev and prod, then cfn-lint on
// both templates, and on a template with every event source kind: zero errors and zero warnings
// outside the justified ignore list.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { INFRA_DIR, REPO_ROOT } from '../lib/definitions';
import { DEV_CONTEXT, NO_BUILD_DIR, PROD_CONTEXT, allSourcesRegistry, synth } from './helpers';

/** cfn-lint rules ignored, each with its reason. */
const IGNORED_CHECKS: Record<string, string> = {
  W3005:
    'CDK adds an explicit DependsOn from each Lambda function to its role (and the role policy) ' +
    'next to the GetAtt; the duplicate dependency is harmless and not ours to remove.',
};

const CFN_LINT = process.env.CFN_LINT ?? path.join(REPO_ROOT, '.venv', 'bin', 'cfn-lint');
const CDK = path.join(INFRA_DIR, 'node_modules', '.bin', 'cdk');
const outRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'tenantry-synth-'));
after(() => fs.rmSync(outRoot, { recursive: true, force: true }));

/** The environment of a machine without AWS credentials: nothing to find, nothing to probe. */
function offlineEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('AWS_') || k.startsWith('CDK_DEFAULT_')) delete env[k];
  }
  env.AWS_EC2_METADATA_DISABLED = 'true';
  env.AWS_SHARED_CREDENTIALS_FILE = path.join(outRoot, 'no-credentials');
  env.AWS_CONFIG_FILE = path.join(outRoot, 'no-config');
  env.CDK_DISABLE_VERSION_CHECK = 'true';
  env.CDK_DISABLE_CLI_TELEMETRY = 'true';
  return env;
}

function cdkSynth(context: Record<string, string>): string {
  const stageName = context.stage;
  const out = path.join(outRoot, stageName);
  const args = ['synth', '--quiet', '--no-notices', '--output', out];
  for (const [k, v] of Object.entries({ ...context, allowPlaceholderCode: 'true', lambdaDir: NO_BUILD_DIR })) {
    args.push('--context', `${k}=${v}`);
  }
  const r = spawnSync(CDK, args, { cwd: INFRA_DIR, env: offlineEnv(), encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `cdk synth (${stageName}) failed:\n${r.stdout}\n${r.stderr}`);
  const template = path.join(out, `Tenantry-${stageName}.template.json`);
  assert.ok(fs.existsSync(template), `no template at ${template}`);
  return template;
}

function cfnLint(template: string): void {
  assert.ok(fs.existsSync(CFN_LINT), `cfn-lint not found at ${CFN_LINT}: run \`make install-infra\``);
  const r = spawnSync(CFN_LINT, ['--ignore-checks', ...Object.keys(IGNORED_CHECKS), '--', template], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  assert.equal(r.status, 0, `cfn-lint exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
}

describe('cdk synth (CLI, offline) and cfn-lint', () => {
  for (const context of [DEV_CONTEXT, PROD_CONTEXT]) {
    const stageName = context.stage;
    let template: string | undefined;

    test(`${stageName}: cdk synth works offline without AWS credentials and is environment-agnostic`, () => {
      template = cdkSynth(context);
      const manifest = JSON.parse(fs.readFileSync(path.join(path.dirname(template), 'manifest.json'), 'utf8'));
      const artifact = manifest.artifacts[`Tenantry-${stageName}`];
      assert.equal(artifact.environment, 'aws://unknown-account/unknown-region');
      // prod stacks cannot be deleted by accident
      assert.equal(artifact.properties.terminationProtection === true, stageName === 'prod');
    });

    test(`${stageName}: cfn-lint finds no error and no unjustified warning`, () => {
      assert.ok(template, 'synth failed');
      cfnLint(template);
    });
  }

  // The event sources no repository function uses yet (S3 without a prefix, queues, several
  // schedules), from the test registry fixture, with GuardDuty Malware Protection and versioning
  // on, synthesized in-process: their CloudFormation is linted too.
  test('every event source kind (test registry fixture), malware protection: cfn-lint finds no error and no unjustified warning', () => {
    const s = synth({
      context: {
        ...PROD_CONTEXT,
        allowedOrigins: 'https://a.example.com,https://b.example.com',
        tracing: 'true',
        malwareProtection: 'true',
        bucketVersioning: 'true',
      },
      functions: allSourcesRegistry(),
    });
    const template = path.join(outRoot, 'all-sources.template.json');
    fs.writeFileSync(template, JSON.stringify(s.template.toJSON(), null, 1));
    cfnLint(template);
  });
});
