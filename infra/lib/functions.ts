// Every Lambda function Tenantry deploys, in one typed table: what it is, how big, how long it
// may run and why, what it is told (environment) and what it may do (IAM). The stack builds
// each function's role from `permissions` and nothing else, so a function gets only the
// actions listed here.
//
// Which functions are deployed:
//   - kind 'http': exactly the functions that infra/routes.json names (a route manifest that
//     names a function missing from this table fails synth);
//   - every other kind: always.
// Future wiring hangs off this table, so nothing dangles before its function exists:
//   - `s3Uploads: true` subscribes the function to object-created events of the upload bucket
//     (the `files` function);
//   - `schedules` creates EventBridge rules that invoke the function (the `notifications`
//     function).

/** DynamoDB operations a function calls. Scan is deliberately absent: every access pattern of
 * the single table is a key lookup or a Query on the table or a GSI. TransactWriteItems and
 * TransactGetItems have no IAM action: DynamoDB authorizes each part of a transaction with the
 * item action it performs (PutItem, UpdateItem, DeleteItem, ConditionCheckItem, GetItem), so a
 * function that transacts must also list the item actions its transactions contain. */
export type DynamoDbAction =
  | 'GetItem'
  | 'PutItem'
  | 'UpdateItem'
  | 'DeleteItem'
  | 'Query'
  | 'BatchGetItem'
  | 'BatchWriteItem'
  | 'TransactGetItems'
  | 'TransactWriteItems'
  | 'ConditionCheckItem';

export type FunctionKind =
  /** behind the REST API (Lambda proxy integration), routes from routes.json */
  | 'http'
  /** the Cognito user pool triggers (one binary serves all five) */
  | 'cognito-triggers'
  /** invoked by events only (S3, schedules, queues) */
  | 'worker';

export interface FunctionPermissions {
  /** on the table, and (Query only) on its indexes */
  readonly dynamodb: readonly DynamoDbAction[];
  /** secretsmanager:GetSecretValue on the cursor-signing secret (that one secret only) */
  readonly readCursorSecret: boolean;
  /** ses:SendEmail on the stack's SES identity only */
  readonly sesSendEmail: boolean;
}

export interface FunctionEnvironment {
  /** USER_POOL_ID. Not possible for the Cognito triggers themselves (the pool references the
   * function, so the function cannot reference the pool: a cycle); triggers get the pool id
   * in every event anyway. */
  readonly userPoolId: boolean;
  /** SES_FROM_ADDRESS */
  readonly sesFromAddress: boolean;
  /** optional variables taken from CDK context when given: ENV_NAME -> context key */
  readonly fromContext?: Readonly<Record<string, string>>;
}

export interface ScheduleConfig {
  /** construct id, unique per function */
  readonly id: string;
  /** an EventBridge schedule expression: rate(5 minutes), cron(0 8 * * ? *) */
  readonly expression: string;
  readonly description: string;
}

export interface FunctionConfig {
  /** the cargo binary; cargo-lambda writes target/lambda/<binary>/bootstrap(.zip) */
  readonly binary: string;
  readonly kind: FunctionKind;
  readonly description: string;
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
  /** why these numbers */
  readonly sizingReason: string;
  readonly environment: FunctionEnvironment;
  readonly permissions: FunctionPermissions;
  /** subscribe to object-created events of the upload bucket (future `files` function) */
  readonly s3Uploads?: boolean;
  /** EventBridge schedules (future `notifications` function) */
  readonly schedules?: readonly ScheduleConfig[];
}

/** What the HTTP functions of the single table do: reads, conditional writes, transactions. */
const HTTP_TABLE_ACTIONS: readonly DynamoDbAction[] = [
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'BatchGetItem',
  'BatchWriteItem',
  'TransactWriteItems',
  'ConditionCheckItem',
];

const HTTP_SIZING =
  '256 MB / 10 s: a Rust handler needs ~30 MB, but Lambda CPU scales with memory and 256 MB keeps ' +
  'cold starts and the SDK TLS handshakes fast; 10 s covers a transaction retried under contention ' +
  'and stays well inside API Gateway\u2019s 29 s integration timeout.';

export const FUNCTIONS: Readonly<Record<string, FunctionConfig>> = {
  organizations: {
    binary: 'organizations',
    kind: 'http',
    description: 'Tenantry HTTP API: organizations, members, roles, plans, /me and platform admin',
    memoryMb: 256,
    timeoutSeconds: 10,
    sizingReason: HTTP_SIZING,
    environment: { userPoolId: true, sesFromAddress: false },
    permissions: { dynamodb: HTTP_TABLE_ACTIONS, readCursorSecret: true, sesSendEmail: false },
  },
  invites: {
    binary: 'invites',
    kind: 'http',
    description: 'Tenantry HTTP API: invitations by email',
    memoryMb: 256,
    timeoutSeconds: 10,
    sizingReason: `${HTTP_SIZING} The SES SendEmail call adds well under a second.`,
    environment: { userPoolId: true, sesFromAddress: true },
    permissions: { dynamodb: HTTP_TABLE_ACTIONS, readCursorSecret: true, sesSendEmail: true },
  },
  'cognito-triggers': {
    binary: 'cognito-triggers',
    kind: 'cognito-triggers',
    description:
      'Tenantry Cognito triggers: PreSignUp, PostConfirmation, PreTokenGeneration (V2), PostAuthentication, CustomMessage',
    memoryMb: 128,
    timeoutSeconds: 5,
    sizingReason:
      '128 MB / 5 s: Cognito waits at most 5 s for a trigger (and retries up to 3 times), so a longer ' +
      'timeout buys nothing; each trigger does one or two small DynamoDB calls.',
    environment: {
      userPoolId: false,
      sesFromAddress: false,
      // Sign-up policy and mail branding (functions/cognito-triggers/src/config.rs).
      fromContext: {
        BLOCKED_EMAIL_DOMAINS: 'blockedEmailDomains',
        SIGNUP_INVITE_ONLY: 'signupInviteOnly',
        PERSONAL_ORG: 'personalOrg',
        PRODUCT_NAME: 'productName',
        PRODUCT_LOGO_URL: 'productLogoUrl',
      },
    },
    permissions: {
      dynamodb: ['GetItem', 'PutItem', 'UpdateItem', 'Query', 'TransactWriteItems'],
      readCursorSecret: false,
      sesSendEmail: false,
    },
  },
};

export const LOG_LEVEL = 'info';
