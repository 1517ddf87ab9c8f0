// The hosted console (context console=true): off by default; on, a private bucket that only the
// distribution reads, the files under /app with the deployment's config.json, a single-page app's
// fallback, security headers, and the console's origin allowed by the API and the upload bucket.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CfnElement } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { CONSOLE_BASE_PATH, consoleContentSecurityPolicy } from '../lib/console';
import { DEV_CONTEXT, PROD_CONTEXT, Synth, resources, synth } from './helpers';

const CERTIFICATE = 'arn:aws:acm:us-east-1:123456789012:certificate/0b8c3f0e-8f8e-4d2b-9c57-3e2d1a9f6b11';
const WEB_ACL = 'arn:aws:wafv2:us-east-1:123456789012:global/webacl/tenantry/7a1e2f3c-4b5d-4e6f-8a9b-0c1d2e3f4a5b';

/** prod with the console on CloudFront's domain: no allowedOrigins, no appUrl given. */
const PROD_CONSOLE = { stage: 'prod', mailDomain: 'example.com', console: 'true' };

function only(s: Synth, type: string): [string, any] {
  const all = Object.entries(resources(s.template, type));
  assert.equal(all.length, 1, `one ${type}`);
  return all[0];
}

/** A construct's logical id in the template. */
function logicalId(s: Synth, construct: IConstruct): string {
  return s.stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

/** Whether a (possibly Fn::Join'ed) value refers to the logical id. */
function refersTo(value: unknown, logicalId: string): boolean {
  return JSON.stringify(value).includes(`"${logicalId}"`);
}

/** The environment variable of every HTTP function (they all get the same). */
function httpEnv(s: Synth, name: string): unknown[] {
  return Object.values(resources(s.template, 'AWS::Lambda::Function'))
    .map((f: any) => f.Properties.Environment?.Variables ?? {})
    .filter((v: Record<string, unknown>) => v.ALLOWED_ORIGINS !== undefined)
    .map((v: Record<string, unknown>) => v[name]);
}

describe('the hosted console', () => {
  test('is off by default: no distribution, no console bucket', () => {
    for (const context of [DEV_CONTEXT, PROD_CONTEXT]) {
      const s = synth({ context });
      assert.equal(Object.keys(resources(s.template, 'AWS::CloudFront::Distribution')).length, 0);
      assert.equal(Object.keys(resources(s.template, 'Custom::CDKBucketDeployment')).length, 0);
      assert.equal(s.stack.console, undefined);
    }
  });

  const s = synth({ context: PROD_CONSOLE });
  const distributionId = logicalId(s, s.stack.console!.distribution);
  const bucketId = logicalId(s, s.stack.console!.bucket);

  test('its bucket is private, TLS only, and only the distribution may read it', () => {
    const bucket = s.template.toJSON().Resources[bucketId];
    assert.deepEqual(bucket.Properties.PublicAccessBlockConfiguration, {
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    const policies = Object.values(resources(s.template, 'AWS::S3::BucketPolicy')).filter((p: any) => refersTo(p.Properties.Bucket, bucketId));
    assert.equal(policies.length, 1);
    const statements: any[] = (policies[0] as any).Properties.PolicyDocument.Statement;
    const allows = statements.filter((st) => st.Effect === 'Allow');
    assert.ok(allows.length > 0);
    for (const st of allows) {
      if (refersTo(st.Principal, 'CustomS3AutoDeleteObjectsCustomResourceProviderRole3B1BD092')) continue;
      assert.deepEqual(st.Principal, { Service: 'cloudfront.amazonaws.com' }, JSON.stringify(st));
      assert.ok(refersTo(st.Condition.StringEquals['AWS:SourceArn'], distributionId), 'this distribution only');
    }
    assert.ok(statements.some((st) => st.Effect === 'Deny' && st.Condition?.Bool?.['aws:SecureTransport'] === 'false'));
  });

  test('the distribution reads it through origin access control, HTTPS only, with access logs', () => {
    const [, oac] = only(s, 'AWS::CloudFront::OriginAccessControl');
    assert.equal(oac.Properties.OriginAccessControlConfig.SigningBehavior, 'always');
    const [, d] = only(s, 'AWS::CloudFront::Distribution');
    const config = d.Properties.DistributionConfig;
    assert.equal(config.Origins.length, 1);
    assert.ok(config.Origins[0].OriginAccessControlId !== undefined);
    assert.equal(config.DefaultCacheBehavior.ViewerProtocolPolicy, 'redirect-to-https');
    assert.deepEqual(config.DefaultCacheBehavior.AllowedMethods, ['GET', 'HEAD']);
    assert.ok(refersTo(config.Logging.Bucket, logicalId(s, s.stack.console!.logBucket)));
    assert.equal(config.DefaultRootObject, 'app/index.html');
  });

  test('a deep link that is no file answers index.html (a single-page app)', () => {
    const [, d] = only(s, 'AWS::CloudFront::Distribution');
    const errors = d.Properties.DistributionConfig.CustomErrorResponses;
    assert.deepEqual(
      errors.map((e: any) => [e.ErrorCode, e.ResponseCode, e.ResponsePagePath]).sort(),
      [
        [403, 200, `${CONSOLE_BASE_PATH}index.html`],
        [404, 200, `${CONSOLE_BASE_PATH}index.html`],
      ],
    );
  });

  test('security headers: a CSP that lets the console connect to the API, the user pool and S3 only', () => {
    const [, policy] = only(s, 'AWS::CloudFront::ResponseHeadersPolicy');
    const headers = policy.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig;
    assert.equal(headers.FrameOptions.FrameOption, 'DENY');
    assert.equal(headers.StrictTransportSecurity.AccessControlMaxAgeSec, 365 * 24 * 3600);
    assert.equal(headers.ContentTypeOptions.Override, true);
    const csp = JSON.stringify(headers.ContentSecurityPolicy.ContentSecurityPolicy);
    assert.ok(refersTo(headers.ContentSecurityPolicy.ContentSecurityPolicy, logicalId(s, s.stack.api)), 'the API by its id');
    for (const part of ["script-src 'self'", "frame-ancestors 'none'", "object-src 'none'", 'https://cognito-idp.', ' https://*.s3.']) {
      assert.ok(csp.includes(part), `${part} in ${csp}`);
    }
    assert.ok(!/unsafe-inline|unsafe-eval/.test(csp));
    assert.ok(/img-src 'self' blob: data: https:\/\/\*\.s3\./.test(csp), `thumbnails from S3: ${csp}`);
  });

  test('the files go under /app: hashed ones cached for a year, index.html and config.json checked each time, the cache invalidated', () => {
    const deployments = Object.entries<any>(resources(s.template, 'Custom::CDKBucketDeployment'));
    assert.equal(deployments.length, 2);
    for (const [, d] of deployments) {
      assert.equal(d.Properties.DestinationBucketKeyPrefix, 'app/');
      assert.ok(refersTo(d.Properties.DestinationBucketName, bucketId));
    }
    const [filesId, files] = deployments.find(([, d]) => d.Properties.Prune === true)!;
    assert.deepEqual(files.Properties.Exclude, ['index.html', 'config.json']);
    assert.deepEqual(files.Properties.SystemMetadata, { 'cache-control': 'public, max-age=31536000, immutable' });
    assert.equal(files.Properties.DistributionId, undefined);
    const [, d] = deployments.find(([, d]) => d.Properties.Prune === false)!;
    assert.deepEqual(d.Properties.Exclude, ['*']);
    assert.deepEqual(d.Properties.Include, ['index.html', 'config.json']);
    assert.deepEqual(d.Properties.SystemMetadata, { 'cache-control': 'no-cache' });
    assert.ok(refersTo(d.Properties.DistributionId, distributionId));
    assert.deepEqual(d.Properties.DistributionPaths, ['/*']);
    assert.ok(refersTo(d.DependsOn, filesId), 'index.html after the files it names');
    const markers = JSON.stringify(d.Properties.SourceMarkers);
    for (const id of [logicalId(s, s.stack.api), logicalId(s, s.stack.userPool), logicalId(s, s.stack.userPoolClient)]) {
      assert.ok(markers.includes(`"${id}"`), `config.json refers to ${id}`);
    }
  });

  test('its origin is allowed by the API, the functions and the upload bucket, and links in mail open it', () => {
    const origin = s.stack.console!.origin;
    assert.deepEqual(s.stack.allowedOrigins, [origin]);
    for (const value of httpEnv(s, 'ALLOWED_ORIGINS')) assert.ok(refersTo(value, distributionId), JSON.stringify(value));
    for (const value of httpEnv(s, 'APP_URL')) {
      assert.ok(refersTo(value, distributionId) && JSON.stringify(value).includes('/app'), JSON.stringify(value));
    }
    const upload = s.template.toJSON().Resources[logicalId(s, s.stack.uploadBucket)];
    assert.ok(refersTo(upload.Properties.CorsConfiguration.CorsRules[0].AllowedOrigins, distributionId));
    // The preflights answer it, and API Gateway's own errors carry it (the first origin).
    const preflights = Object.values(resources(s.template, 'AWS::ApiGateway::Method')).filter((m: any) => m.Properties.HttpMethod === 'OPTIONS');
    assert.ok(preflights.length > 0);
    for (const m of preflights) assert.ok(refersTo((m as any).Properties.Integration, distributionId));
    for (const r of Object.values(resources(s.template, 'AWS::ApiGateway::GatewayResponse'))) {
      assert.ok(refersTo((r as any).Properties.ResponseParameters, distributionId));
    }
    s.template.hasOutput('ConsoleUrl', { Value: Match.anyValue() });
  });

  test('given origins stay first, and the console is added after them', () => {
    const t = synth({ context: { ...PROD_CONTEXT, console: 'true' } });
    assert.equal(t.stack.allowedOrigins.length, 2);
    assert.equal(t.stack.allowedOrigins[0], 'https://app.example.com');
    assert.equal(t.stack.allowedOrigins[1], t.stack.console!.origin);
    assert.equal(t.stack.appUrl, 'https://app.example.com', 'appUrl given wins');
    // Without appUrl the console is the front end: its origin first, for API Gateway's own errors.
    const own = synth({ context: { ...PROD_CONSOLE, allowedOrigins: 'https://partner.example.com' } });
    assert.deepEqual(own.stack.allowedOrigins, [own.stack.console!.origin, 'https://partner.example.com']);
    for (const r of Object.values(resources(own.template, 'AWS::ApiGateway::GatewayResponse'))) {
      assert.ok(refersTo((r as any).Properties.ResponseParameters, logicalId(own, own.stack.console!.distribution)));
    }
    // dev allows every origin already
    assert.deepEqual(synth({ context: { stage: 'dev', console: 'true' } }).stack.allowedOrigins, ['*']);
  });

  test('a domain of its own: its certificate, TLS 1.2 at least, a web ACL, and its CSP names the one upload bucket', () => {
    const t = synth({
      context: { ...PROD_CONSOLE, consoleDomain: 'Console.Example.com', consoleCertificateArn: CERTIFICATE, consoleWebAclArn: WEB_ACL },
    });
    const [, d] = only(t, 'AWS::CloudFront::Distribution');
    const config = d.Properties.DistributionConfig;
    assert.deepEqual(config.Aliases, ['console.example.com']);
    assert.equal(config.ViewerCertificate.AcmCertificateArn, CERTIFICATE);
    assert.equal(config.ViewerCertificate.MinimumProtocolVersion, 'TLSv1.2_2021');
    assert.equal(config.WebACLId, WEB_ACL);
    assert.deepEqual(t.stack.allowedOrigins, ['https://console.example.com']);
    assert.equal(t.stack.appUrl, 'https://console.example.com/app');
    const [, policy] = only(t, 'AWS::CloudFront::ResponseHeadersPolicy');
    const csp = policy.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig.ContentSecurityPolicy.ContentSecurityPolicy;
    assert.ok(refersTo(csp, logicalId(t, t.stack.uploadBucket)), 'the upload bucket by name');
    assert.ok(!JSON.stringify(csp).includes('*.s3.'));
  });

  test('settings: refused combinations name the context to fix', () => {
    assert.throws(() => synth({ context: { ...PROD_CONSOLE, consoleDomain: 'console.example.com' } }), /consoleDomain and consoleCertificateArn go together/);
    assert.throws(() => synth({ context: { ...PROD_CONTEXT, consoleDomain: 'console.example.com' } }), /context consoleDomain needs context console=true/);
    assert.throws(
      () =>
        synth({
          context: {
            ...PROD_CONSOLE,
            consoleDomain: 'console.example.com',
            consoleCertificateArn: CERTIFICATE.replace('us-east-1', 'eu-west-1'),
          },
        }),
      /not an ACM certificate ARN in us-east-1/,
    );
    assert.throws(() => synth({ context: { ...PROD_CONSOLE, consoleWebAclArn: WEB_ACL.replace('global', 'regional') } }), /scope CLOUDFRONT/);
    assert.throws(() => synth({ context: { ...PROD_CONSOLE, console: 'false' } }), /context appUrl is required for stage prod/);
    assert.throws(() => synth({ context: { ...PROD_CONSOLE, console: 'maybe' } }), /context console must be true or false/);
  });

  test('the CSP allows nothing inline and no other origin', () => {
    const csp = consoleContentSecurityPolicy(['https://api.example.com']);
    assert.match(csp, /connect-src 'self' https:\/\/api\.example\.com;/);
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe/);
  });
});
