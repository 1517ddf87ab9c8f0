// cdk-nag's AwsSolutions pack over the stack: no unacknowledged finding, and every
// acknowledgement (lib/nag.ts) carries a written reason.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Validations, aws_apigateway as apigw } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DEV_CONTEXT, PROD_CONTEXT, Synth, PUBLIC_ROUTE, allSourcesRegistry, publicRouteManifest, repositoryPublicRoutes, synth } from './helpers';

const SCENARIOS: Record<string, () => Synth> = {
  dev: () => synth({ context: DEV_CONTEXT }),
  prod: () => synth({ context: PROD_CONTEXT }),
  // The hosted console on CloudFront's generated domain, origins and app URL from it alone.
  'prod with the console': () => synth({ context: { stage: 'prod', mailDomain: 'example.com', console: 'true' } }),
  // Everything optional switched on: every event source kind (the test registry fixture: S3,
  // queues, schedules, the table stream, Cognito triggers, HTTP, malware scan results), a public
  // route (no authorizer), GuardDuty Malware Protection, bucket versioning, tracing, Plus feature
  // plan, several origins.
  'prod with every option and future function': () =>
    synth({
      context: {
        ...PROD_CONTEXT,
        tracing: 'true',
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

  test('APIG4 and COG4 (no authorizer) are acknowledged on GET /health and the public routes\' methods only', () => {
    const s = synth({ context: DEV_CONTEXT, routes: publicRouteManifest() });
    const acknowledged = (c: IConstruct) =>
      c.node.metadata
        .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((m) => Object.keys(m.data as Record<string, unknown>))
        .map((key) => key.replace(/^Annotation::/, ''))
        .filter((rule) => rule === 'AwsSolutions-APIG4' || rule === 'AwsSolutions-COG4');
    const where = s.stack.api.methods
      .filter((m) => acknowledged(m).length > 0)
      .map((m) => {
        assert.deepEqual(acknowledged(m).sort(), ['AwsSolutions-APIG4', 'AwsSolutions-COG4'], m.node.path);
        return `${m.httpMethod} ${m.resource.path}`;
      })
      .sort();
    assert.deepEqual(where, ['GET /health', ...repositoryPublicRoutes(), PUBLIC_ROUTE].sort());
    // and they are needed: a method without an authorizer that is not declared public is flagged
    s.stack.api.root.addResource('unacknowledged').addMethod('POST', new apigw.MockIntegration(), { authorizationType: apigw.AuthorizationType.NONE });
    const flagged = report(s).filter((f) => f.rule === 'AwsSolutions-APIG4' || f.rule === 'AwsSolutions-COG4');
    assert.deepEqual(flagged.map((f) => f.rule).sort(), ['AwsSolutions-APIG4', 'AwsSolutions-COG4']);
    for (const f of flagged) assert.ok(f.where.every((p) => (p ?? '').includes('/unacknowledged/POST')), JSON.stringify(f.where));
  });

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
