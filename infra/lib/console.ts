// The web console (shared/console), hosted when context console=true: a private S3 bucket that
// only CloudFront reads (origin access control), one distribution in front of it with security
// headers, and the built files deployed under /app with the deployment's config.json beside them
// (the API's URL and the user pool's client, which the console signs in through).
import * as fs from 'node:fs';
import {
  Duration,
  Lazy,
  RemovalPolicy,
  aws_certificatemanager as acm,
  aws_cloudfront as cloudfront,
  aws_cloudfront_origins as origins,
  aws_s3 as s3,
  aws_s3_deployment as s3deploy,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { ConsoleSettings } from './settings';

/** Where the console lives on its domain: the path it is built for (shared/console/vite.config.ts). */
export const CONSOLE_BASE_PATH = '/app/';

/** The console's files that keep their names from build to build (the rest carry a hash of
 * their content): index.html and the deployment's config.json. */
export const CONSOLE_ENTRY_POINTS = ['index.html', 'config.json'] as const;

/** Where the distribution's access logs go in their bucket. */
export const CONSOLE_ACCESS_LOG_PREFIX = 'console-distribution/';

/** What the console reads at start-up from `config.json` beside its index.html. */
export interface ConsoleConfig {
  /** the API's base URL (the stage's) */
  readonly apiUrl: string;
  readonly region: string;
  readonly userPoolId: string;
  readonly userPoolClientId: string;
}

export interface ConsoleHostingProps {
  readonly settings: ConsoleSettings;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  readonly autoDeleteObjects: boolean;
  /** use this directory when settings.dir holds no build (tests only) */
  readonly placeholderDir?: string;
}

/** The Content-Security-Policy of the console: its own files only, no inline script or style
 * sheet, no frames; it may connect to itself and to `connectTo` (the API, the user pool, the
 * upload bucket) and show images from `imagesFrom` (thumbnails: presigned GETs of the upload
 * bucket). React sets styles through the DOM, which style-src does not restrict. */
export function consoleContentSecurityPolicy(connectTo: readonly string[], imagesFrom: readonly string[] = []): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    ["img-src 'self' blob: data:", ...imagesFrom].join(' '),
    `connect-src 'self' ${connectTo.join(' ')}`,
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export class ConsoleHosting extends Construct {
  readonly bucket: s3.Bucket;
  readonly logBucket: s3.Bucket;
  readonly distribution: cloudfront.Distribution;
  readonly responseHeaders: cloudfront.ResponseHeadersPolicy;
  /** the console's origin (https://domain), a token when CloudFront's generated domain */
  readonly origin: string;
  /** the console's URL: origin + /app */
  readonly url: string;
  /** the build deployed: settings.dir, or the placeholder in tests */
  private readonly sourceDir: string;
  private connectTo: string[] = [];
  private imagesFrom: string[] = [];

  constructor(scope: Construct, id: string, props: ConsoleHostingProps) {
    super(scope, id);
    const { settings } = props;

    // CloudFront's standard logs are written with an ACL grant, so this bucket (unlike the others)
    // lets object writers own their objects; nothing else writes here, and nothing is public.
    this.logBucket = new s3.Bucket(this, 'LogBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.OBJECT_WRITER,
      removalPolicy: props.removalPolicy,
      autoDeleteObjects: props.autoDeleteObjects,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(props.logRetentionDays) }],
    });

    // The files: private, read by CloudFront only (origin access control adds the bucket policy),
    // replaced as a whole by each deploy, so no versions.
    this.bucket = new s3.Bucket(this, 'Bucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 'console-bucket/',
      removalPolicy: RemovalPolicy.DESTROY,
      autoDeleteObjects: true,
    });

    this.responseHeaders = new cloudfront.ResponseHeadersPolicy(this, 'SecurityHeaders', {
      comment: 'Tenantry console: CSP, HSTS, no framing, no sniffing, no referrer paths across origins',
      securityHeadersBehavior: {
        contentSecurityPolicy: {
          contentSecurityPolicy: Lazy.string({ produce: () => consoleContentSecurityPolicy(this.connectTo, this.imagesFrom) }),
          override: true,
        },
        strictTransportSecurity: { accessControlMaxAge: Duration.days(365), includeSubdomains: true, override: true },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN, override: true },
      },
    });

    const index = `${CONSOLE_BASE_PATH}index.html`;
    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'Tenantry console',
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: this.responseHeaders,
        compress: true,
      },
      defaultRootObject: index.slice(1),
      // A single-page app: a path that is no file (a deep link such as /app/orgs/…) answers its
      // index.html, which routes in the browser. S3 answers 403 for a missing key (CloudFront may
      // not list the bucket).
      errorResponses: [403, 404].map((status) => ({
        httpStatus: status,
        responseHttpStatus: 200,
        responsePagePath: index,
        ttl: Duration.seconds(10),
      })),
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      enableLogging: true,
      logBucket: this.logBucket,
      logFilePrefix: CONSOLE_ACCESS_LOG_PREFIX,
      ...(settings.domain !== undefined && settings.certificateArn !== undefined
        ? {
            domainNames: [settings.domain],
            certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', settings.certificateArn),
            minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
          }
        : {}),
      webAclId: settings.webAclArn,
    });

    this.origin = settings.domain !== undefined ? `https://${settings.domain}` : `https://${this.distribution.distributionDomainName}`;
    this.url = `${this.origin}${CONSOLE_BASE_PATH.replace(/\/$/, '')}`;

    const built = fs.existsSync(`${settings.dir}/index.html`);
    if (!built && props.placeholderDir === undefined) {
      throw new Error(`context console=true: ${settings.dir} holds no built console; run make console first (or set context consoleDir)`);
    }
    this.sourceDir = built ? settings.dir : props.placeholderDir!;
  }

  /** Deploys the files and their config.json, and lets the console connect to `connectTo` and
   * show images from `imagesFrom`.
   * Two deployments: the build's files, whose names change with their content, cached for a
   * year; then the two that keep their names (index.html, config.json), which browsers must
   * check again each time, and the distribution's cache invalidated. Files of older builds are
   * removed (a page loaded before the deploy loads no more of them: it has its whole bundle). */
  deploy(config: ConsoleConfig, connectTo: readonly string[], imagesFrom: readonly string[]): s3deploy.BucketDeployment[] {
    this.connectTo = [...connectTo];
    this.imagesFrom = [...imagesFrom];
    const destinationKeyPrefix = CONSOLE_BASE_PATH.slice(1);
    const entryPoints = [...CONSOLE_ENTRY_POINTS];
    const assets = new s3deploy.BucketDeployment(this, 'Files', {
      sources: [s3deploy.Source.asset(this.sourceDir)],
      destinationBucket: this.bucket,
      destinationKeyPrefix,
      exclude: entryPoints,
      cacheControl: [s3deploy.CacheControl.fromString('public, max-age=31536000, immutable')],
      prune: true,
      memoryLimit: 256,
    });
    const entries = new s3deploy.BucketDeployment(this, 'EntryPoints', {
      sources: [s3deploy.Source.asset(this.sourceDir), s3deploy.Source.jsonData('config.json', config)],
      destinationBucket: this.bucket,
      destinationKeyPrefix,
      exclude: ['*'],
      include: entryPoints,
      cacheControl: [s3deploy.CacheControl.noCache()],
      prune: false,
      distribution: this.distribution,
      distributionPaths: ['/*'],
      memoryLimit: 256,
    });
    // The new index.html goes live after the files it names.
    entries.node.addDependency(assets);
    return [assets, entries];
  }
}
