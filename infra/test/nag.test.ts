// cdk-nag's AwsSolutions pack over the stack: no unacknowledged finding, and every
// acknowledgement (lib/nag.ts) carries a written reason.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DEV_CONTEXT, PROD_CONTEXT, Synth, allSourcesRegistry, synth } from './helpers';

const SCENARIOS: Record<string, () => Synth> = {
  dev: () => synth({ context: DEV_CONTEXT }),
  prod: () => synth({ context: PROD_CONTEXT }),
  // Everything optional switched on: every event source kind (the test registry fixture: S3,
  // queues, schedules, the table stream, Cognito triggers, HTTP), tracing, Plus feature plan,
  // several origins.
  'prod with every option and future function': () =>
    synth({
      context: {
        ...PROD_CONTEXT,
        tracing: 'true',
        cognitoFeaturePlan: 'plus',
        allowedOrigins: 'https://a.example.com,https://b.example.com',
      },
      functions: allSourcesRegistry(),
    }),
};

function report(s: Synth) {
  const result = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(s.app);
  return result.violations.map((v) => ({
    rule: v.ruleName,
    severity: v.severity,
    where: v.violatingResources.map((r) => r.constructPath),
    description: v.description,
  }));
}

describe('cdk-nag AwsSolutions', () => {
  for (const [name, make] of Object.entries(SCENARIOS)) {
    const s = make();
    const findings = report(s);

    test(`${name}: no unacknowledged error`, () => {
      const errors = findings.filter((f) => f.severity === 'error');
      assert.deepEqual(errors, [], JSON.stringify(errors, null, 2));
    });

    test(`${name}: no unacknowledged warning`, () => {
      const warnings = findings.filter((f) => f.severity !== 'error');
      assert.deepEqual(warnings, [], JSON.stringify(warnings, null, 2));
    });

    test(`${name}: every acknowledgement has a written reason`, () => {
      let count = 0;
      for (const c of s.app.node.findAll()) {
        for (const m of c.node.metadata) {
          if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
          for (const [rule, value] of Object.entries(m.data as Record<string, unknown>)) {
            const reason = typeof value === 'string' ? value : JSON.stringify(value);
            assert.ok(reason.length >= 60, `${c.node.path} ${rule}: reason too short: ${reason}`);
            count++;
          }
        }
      }
      assert.ok(count > 0);
    });
  }

  test('an unacknowledged finding is reported (the check is live)', () => {
    const s = synth({ context: DEV_CONTEXT });
    // A bucket without TLS enforcement and logs, added after the stack's acknowledgements.
    const { aws_s3: s3 } = require('aws-cdk-lib') as typeof import('aws-cdk-lib');
    new s3.Bucket(s.stack, 'Unacknowledged');
    const rules = report(s).map((f) => f.rule);
    assert.ok(rules.includes('AwsSolutions-S1'), rules.join());
    assert.ok(rules.includes('AwsSolutions-S10'), rules.join());
  });
});
