// The CDK app: `npx cdk synth -c stage=dev` (see infra/README.md). Offline: no look-ups, and
// the stack is environment-agnostic unless CDK_DEFAULT_ACCOUNT/REGION are set (the CDK CLI
// sets them from your credentials when it has some).
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readSettings } from '../lib/settings';
import { TenantryStack } from '../lib/tenantry-stack';

const app = new App();
const settings = readSettings(app.node);
const account = process.env.CDK_DEFAULT_ACCOUNT;
const region = process.env.CDK_DEFAULT_REGION;

new TenantryStack(app, `Tenantry-${settings.stage}`, {
  settings,
  description: `Tenantry (${settings.stage}): multi-tenant SaaS backend`,
  env: account !== undefined && region !== undefined ? { account, region } : undefined,
  terminationProtection: settings.stage === 'prod',
});

// Every synth (and so every deploy) runs the AWS Solutions rules (cdk-nag); an unacknowledged
// error fails it. The acknowledgements, each with its reason, are in lib/nag.ts.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
