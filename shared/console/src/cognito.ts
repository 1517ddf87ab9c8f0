// Sign-up and sign-in against the Amazon Cognito user pool's public API, straight from the
// browser: `POST https://cognito-idp.{region}.amazonaws.com/` with the JSON 1.1 protocol
// (`Content-Type: application/x-amz-json-1.1`, `X-Amz-Target:
// AWSCognitoIdentityProviderService.<Operation>`), unsigned. No dependency: `fetch`,
// `crypto.subtle`, `crypto.getRandomValues` and BigInt.
//
// The pool (infra/lib/tenantry-stack.ts): users sign up with their email as Username and sign
// in with it; Cognito's own user name is the user's `sub`, which InitiateAuth returns as
// USER_ID_FOR_SRP and which the password proof and every later challenge answer use. The app
// client has no secret and allows USER_SRP_AUTH (and refresh). MFA is TOTP only: optional, or
// required, in which case a user without an authenticator is asked to enrol one (MFA_SETUP).
//
// Exports:
//   cognitoAuth(config)       the operations below, bound to one pool and app client
//     signUp(email, password)                   SignUp; `confirmed` is Cognito's UserConfirmed
//     confirmSignUp(email, code)                ConfirmSignUp (the code mailed at sign-up)
//     resendCode(email)                         ResendConfirmationCode
//     signIn(email, password)                   InitiateAuth USER_SRP_AUTH, then
//                                               RespondToAuthChallenge PASSWORD_VERIFIER, then
//                                               whichever challenge follows (SignInStep)
//     answerTotp(step, code)                    RespondToAuthChallenge SOFTWARE_TOKEN_MFA
//     completeMfaSetup(step, code, deviceName?) VerifySoftwareToken, then
//                                               RespondToAuthChallenge MFA_SETUP
//     setNewPassword(step, password)            RespondToAuthChallenge NEW_PASSWORD_REQUIRED
//     refresh(refreshToken)                     InitiateAuth REFRESH_TOKEN_AUTH; Cognito sends no
//                                               new refresh token (no rotation), so the answer
//                                               carries the one given
//   CognitoError              every failure: `code` is Cognito's error type (NotAuthorizedException,
//                             CodeMismatchException, UsernameExistsException, ...), or
//                             NetworkError (no answer), UnsupportedChallenge (a challenge this
//                             pool never sends: SMS, custom, device), InvalidSrpParameter (a
//                             server value SRP must refuse), InvalidResponse (a success
//                             without tokens); CodeMismatchException also when
//                             VerifySoftwareToken answers Status ERROR. `status` is the HTTP
//                             status (0 without an answer)
//   SignInStep                the next thing sign-in needs; a step other than `done` is handed
//                             back to answerTotp / completeMfaSetup / setNewPassword as it is
//                             (its `username` is the user's USER_ID_FOR_SRP, `email` what the
//                             user typed, for the authenticator's label)
//   The SRP pieces (Cognito's variant of SRP-6a over RFC 5054's 3072-bit group, g = 2):
//     N, g, padHex, modPow, srpA, passwordAuthenticationKey, passwordClaim, cognitoTimestamp,
//     randomSmallA

/** The user pool and its web client (the deployment's `config.json`). */
export interface CognitoConfig {
  region: string;
  /** `{region}_{poolName}`; the part after the underscore enters the password proof. */
  userPoolId: string;
  clientId: string;
  /** overrides https://cognito-idp.{region}.amazonaws.com/ */
  endpoint?: string;
  /** The issuer an authenticator app shows for the account (default "Tenantry"). */
  issuer?: string;
}

export interface Tokens {
  idToken: string;
  accessToken: string;
  refreshToken?: string;
  /** Seconds the ID and access tokens are valid for. */
  expiresIn: number;
}

/** What a step other than `done` carries back to the pool. */
export interface ChallengeStep {
  /** The user's USER_ID_FOR_SRP (their `sub`), which challenge answers name. */
  username: string;
  /** Cognito's session for the next answer (valid for a few minutes). */
  session: string;
  /** The email the user signed in with (labels the authenticator entry). */
  email?: string;
}

export type SignInStep =
  | { kind: "done"; tokens: Tokens }
  /** SOFTWARE_TOKEN_MFA: the authenticator's current code. */
  | ({ kind: "totp" } & ChallengeStep)
  /** MFA_SETUP, after AssociateSoftwareToken: the key to add to an authenticator, then its code. */
  | ({ kind: "mfa-setup"; secret: string; otpauthUri: string } & ChallengeStep)
  /** NEW_PASSWORD_REQUIRED: a user created by an administrator chooses a password. */
  | ({ kind: "new-password" } & ChallengeStep);

/** A failure: Cognito's error type as `code` (without its namespace), its message as `message`. */
export class CognitoError extends Error {
  readonly code: string;
  /** The HTTP status of Cognito's answer (0 when there was none). */
  readonly status: number;

  constructor(code: string, message: string, status = 0) {
    super(message || code);
    this.name = "CognitoError";
    this.code = code;
    this.status = status;
  }
}

// ---- SRP ------------------------------------------------------------------------------------

/** RFC 5054's 3072-bit group prime, as Cognito (and amazon-cognito-identity-js) use it. */
export const N = BigInt(
  "0x" +
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1" +
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245" +
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D" +
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F" +
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D" +
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9" +
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510" +
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64" +
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7" +
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6B" +
    "F12FFA06D98A0864D87602733EC86A64521F2B18177B200C" +
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB31" +
    "43DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);
export const g = 2n;

const INFO = "Caldera Derived Key";

/**
 * A non-negative integer as Cognito hashes it: Java's `BigInteger.toByteArray()` in hex, i.e.
 * the shortest even-length hex, with a leading `00` when the top bit is set (a sign byte). Not
 * RFC 5054's padding to the length of N.
 */
export function padHex(n: bigint): string {
  if (n < 0n) throw new RangeError("padHex: negative");
  let hex = n.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  if (/^[89a-f]/.test(hex)) hex = "00" + hex;
  return hex;
}

/** base^exp mod m, left to right over 4-bit windows. */
export function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  if (m === 1n) return 0n;
  if (exp < 0n) throw new RangeError("modPow: negative exponent");
  base %= m;
  if (base < 0n) base += m;
  const table: bigint[] = [1n, base];
  for (let i = 2; i < 16; i++) table.push((table[i - 1] * base) % m);
  const hex = exp.toString(16);
  let result = 1n;
  for (let i = 0; i < hex.length; i++) {
    if (i > 0) {
      result = (result * result) % m;
      result = (result * result) % m;
      result = (result * result) % m;
      result = (result * result) % m;
    }
    const nibble = parseInt(hex[i], 16);
    if (nibble) result = (result * table[nibble]) % m;
  }
  return result;
}

/** A random private value: 128 bytes, as amazon-cognito-identity-js draws it. */
export function randomSmallA(): bigint {
  const bytes = crypto.getRandomValues(new Uint8Array(128));
  return BigInt("0x" + toHex(bytes));
}

/** The client's public value A = g^a mod N (sent as SRP_A, in plain hex). */
export function srpA(a: bigint): bigint {
  const A = modPow(g, a, N);
  if (A === 0n) throw new CognitoError("InvalidSrpParameter", "A mod N is 0");
  return A;
}

export interface PasswordKeyInput {
  /** The part of the user pool id after the underscore. */
  poolName: string;
  /** USER_ID_FOR_SRP from InitiateAuth's challenge. */
  userIdForSrp: string;
  password: string;
  /** The client's private value (A = g^a mod N was sent as SRP_A). */
  a: bigint;
  /** SRP_B from the challenge (hex). */
  srpB: string;
  /** SALT from the challenge (hex). */
  salt: string;
}

export interface PasswordClaimInput extends PasswordKeyInput {
  /** SECRET_BLOCK from the challenge (base64). */
  secretBlock: string;
  /** cognitoTimestamp(), sent as TIMESTAMP beside the signature. */
  timestamp: string;
}

/**
 * The 16-byte key both sides derive: x = H(salt || H(poolName + userIdForSrp + ":" + password)),
 * S = (B - k g^x)^(a + u x) mod N with k = H(N || g) and u = H(A || B), every integer in
 * padHex form; then HKDF-SHA256 (RFC 5869) with salt u, input S and info "Caldera Derived Key".
 */
export async function passwordAuthenticationKey(input: PasswordKeyInput): Promise<Uint8Array> {
  const B = parseHex(input.srpB, "SRP_B");
  if (B % N === 0n) throw new CognitoError("InvalidSrpParameter", "B mod N is 0");
  const A = srpA(input.a);
  const u = await hashHexToInt(padHex(A) + padHex(B));
  if (u === 0n) throw new CognitoError("InvalidSrpParameter", "u is 0");
  const salt = parseHex(input.salt, "SALT");
  const inner = toHex(await sha256(utf8(`${input.poolName}${input.userIdForSrp}:${input.password}`)));
  const x = await hashHexToInt(padHex(salt) + inner);
  const k = await multiplier();
  const base = (((B - ((k * modPow(g, x, N)) % N)) % N) + N) % N;
  const S = modPow(base, input.a + u * x, N);
  const ikm = await crypto.subtle.importKey("raw", fromHex(padHex(S)), "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: fromHex(padHex(u)), info: utf8(INFO) },
    ikm,
    128,
  );
  return new Uint8Array(bits);
}

/**
 * PASSWORD_CLAIM_SIGNATURE: base64 of HMAC-SHA256 under the derived key over
 * poolName || userIdForSrp || base64-decoded SECRET_BLOCK || timestamp.
 */
export async function passwordClaim(input: PasswordClaimInput): Promise<string> {
  const key = await passwordAuthenticationKey(input);
  const message = concat(utf8(input.poolName), utf8(input.userIdForSrp), fromBase64(input.secretBlock), utf8(input.timestamp));
  const hmac = await crypto.subtle.importKey("raw", copy(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return toBase64(new Uint8Array(await crypto.subtle.sign("HMAC", hmac, message)));
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** TIMESTAMP as Cognito reads it: "ddd MMM D HH:mm:ss UTC YYYY" in UTC, the day without a leading zero. */
export function cognitoTimestamp(date: Date = new Date()): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return (
    `${DAYS[date.getUTCDay()]} ${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} UTC ${date.getUTCFullYear()}`
  );
}

let kValue: Promise<bigint> | null = null;

/** k = H(padHex(N) || padHex(g)). */
function multiplier(): Promise<bigint> {
  kValue ??= hashHexToInt(padHex(N) + padHex(g));
  return kValue;
}

async function hashHexToInt(hex: string): Promise<bigint> {
  return BigInt("0x" + toHex(await sha256(fromHex(hex))));
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

function parseHex(hex: string, what: string): bigint {
  if (typeof hex !== "string" || !/^[0-9a-fA-F]+$/.test(hex)) throw new CognitoError("InvalidSrpParameter", `${what} is not hex`);
  return BigInt("0x" + hex);
}

function utf8(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>;
}

function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function fromBase64(b64: string): Uint8Array<ArrayBuffer> {
  let binary: string;
  try {
    binary = atob(b64);
  } catch {
    throw new CognitoError("InvalidSrpParameter", "SECRET_BLOCK is not base64");
  }
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

// ---- The API --------------------------------------------------------------------------------

interface AuthenticationResult {
  IdToken?: string;
  AccessToken?: string;
  RefreshToken?: string;
  ExpiresIn?: number;
}

interface ChallengeAnswer {
  ChallengeName?: string;
  ChallengeParameters?: Record<string, string>;
  Session?: string;
  AuthenticationResult?: AuthenticationResult;
}

export function cognitoAuth(config: CognitoConfig) {
  const endpoint = config.endpoint ?? `https://cognito-idp.${config.region}.amazonaws.com/`;
  const poolName = config.userPoolId.split("_")[1] ?? "";
  const clientId = config.clientId;
  const issuer = config.issuer ?? "Tenantry";

  async function call<T>(operation: string, body: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(endpoint, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-amz-json-1.1",
          "X-Amz-Target": `AWSCognitoIdentityProviderService.${operation}`,
        },
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw new CognitoError("NetworkError", e instanceof Error ? e.message : String(e));
    }
    const text = await res.text().catch(() => "");
    let data: Record<string, unknown> = {};
    try {
      data = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      data = {};
    }
    if (res.ok) return data as T;
    const type = String(data.__type ?? data.code ?? res.headers.get("x-amzn-ErrorType") ?? `HTTP${res.status}`);
    const code = type.split("#").pop()!.split(":")[0];
    const message = String(data.message ?? data.Message ?? res.statusText ?? "");
    throw new CognitoError(code, message, res.status);
  }

  function tokensOf(result: AuthenticationResult, refreshToken?: string): Tokens {
    if (!result.IdToken || !result.AccessToken) throw new CognitoError("InvalidResponse", "Cognito answered without tokens");
    return {
      idToken: result.IdToken,
      accessToken: result.AccessToken,
      refreshToken: result.RefreshToken ?? refreshToken,
      expiresIn: result.ExpiresIn ?? 3600,
    };
  }

  function otpauthUri(secret: string, account: string): string {
    const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
    return `otpauth://totp/${label}?secret=${encodeURIComponent(secret)}&issuer=${encodeURIComponent(issuer)}`;
  }

  /** The step an answer of InitiateAuth or RespondToAuthChallenge leads to. */
  async function next(answer: ChallengeAnswer, username: string, email: string | undefined): Promise<SignInStep> {
    if (answer.AuthenticationResult) return { kind: "done", tokens: tokensOf(answer.AuthenticationResult) };
    const name = answer.ChallengeName ?? "";
    const user = answer.ChallengeParameters?.USER_ID_FOR_SRP ?? username;
    const session = answer.Session ?? "";
    const base = email === undefined ? { username: user, session } : { username: user, session, email };
    switch (name) {
      case "SOFTWARE_TOKEN_MFA":
        return { kind: "totp", ...base };
      case "NEW_PASSWORD_REQUIRED":
        return { kind: "new-password", ...base };
      case "MFA_SETUP": {
        const associated = await call<{ SecretCode?: string; Session?: string }>("AssociateSoftwareToken", { Session: session });
        const secret = associated.SecretCode ?? "";
        return {
          kind: "mfa-setup",
          ...base,
          session: associated.Session ?? session,
          secret,
          otpauthUri: otpauthUri(secret, email ?? user),
        };
      }
      default:
        throw new CognitoError("UnsupportedChallenge", `Cognito asked for ${name || "an unknown challenge"}`);
    }
  }

  async function respond(step: ChallengeStep, challenge: string, responses: Record<string, string>, session = step.session): Promise<SignInStep> {
    const answer = await call<ChallengeAnswer>("RespondToAuthChallenge", {
      ChallengeName: challenge,
      ClientId: clientId,
      ...(session ? { Session: session } : {}),
      ChallengeResponses: { USERNAME: step.username, ...responses },
    });
    return next(answer, step.username, step.email);
  }

  return {
    /** SignUp with the email as Username and as the `email` attribute; Cognito mails a code. */
    async signUp(email: string, password: string): Promise<{ confirmed: boolean }> {
      const answer = await call<{ UserConfirmed?: boolean }>("SignUp", {
        ClientId: clientId,
        Username: email,
        Password: password,
        UserAttributes: [{ Name: "email", Value: email }],
      });
      return { confirmed: answer.UserConfirmed === true };
    },

    async confirmSignUp(email: string, code: string): Promise<void> {
      await call("ConfirmSignUp", { ClientId: clientId, Username: email, ConfirmationCode: code.trim() });
    },

    async resendCode(email: string): Promise<void> {
      await call("ResendConfirmationCode", { ClientId: clientId, Username: email });
    },

    /** USER_SRP_AUTH: the password never leaves the browser, only a proof of it. */
    async signIn(email: string, password: string): Promise<SignInStep> {
      const a = randomSmallA();
      const A = srpA(a);
      const init = await call<ChallengeAnswer>("InitiateAuth", {
        AuthFlow: "USER_SRP_AUTH",
        ClientId: clientId,
        AuthParameters: { USERNAME: email, SRP_A: A.toString(16) },
      });
      if (init.AuthenticationResult || init.ChallengeName !== "PASSWORD_VERIFIER") return next(init, email, email);
      const p = init.ChallengeParameters ?? {};
      const userIdForSrp = p.USER_ID_FOR_SRP ?? p.USERNAME ?? email;
      const timestamp = cognitoTimestamp();
      const signature = await passwordClaim({
        poolName,
        userIdForSrp,
        password,
        a,
        srpB: p.SRP_B ?? "",
        salt: p.SALT ?? "",
        secretBlock: p.SECRET_BLOCK ?? "",
        timestamp,
      });
      return respond({ username: userIdForSrp, session: init.Session ?? "", email }, "PASSWORD_VERIFIER", {
        PASSWORD_CLAIM_SECRET_BLOCK: p.SECRET_BLOCK ?? "",
        PASSWORD_CLAIM_SIGNATURE: signature,
        TIMESTAMP: timestamp,
      });
    },

    answerTotp(step: ChallengeStep, code: string): Promise<SignInStep> {
      return respond(step, "SOFTWARE_TOKEN_MFA", { SOFTWARE_TOKEN_MFA_CODE: code.trim() });
    },

    /** Confirms the authenticator enrolled at MFA_SETUP with its first code, then finishes sign-in. */
    async completeMfaSetup(step: ChallengeStep, code: string, deviceName?: string): Promise<SignInStep> {
      const verified = await call<{ Status?: string; Session?: string }>("VerifySoftwareToken", {
        Session: step.session,
        UserCode: code.trim(),
        ...(deviceName ? { FriendlyDeviceName: deviceName } : {}),
      });
      if (verified.Status !== undefined && verified.Status !== "SUCCESS") {
        throw new CognitoError("CodeMismatchException", "The authenticator's code was not accepted", 400);
      }
      return respond(step, "MFA_SETUP", {}, verified.Session ?? step.session);
    },

    setNewPassword(step: ChallengeStep, password: string): Promise<SignInStep> {
      return respond(step, "NEW_PASSWORD_REQUIRED", { NEW_PASSWORD: password });
    },

    /** Fresh ID and access tokens; the refresh token stays the one given. */
    async refresh(refreshToken: string): Promise<Tokens> {
      const answer = await call<ChallengeAnswer>("InitiateAuth", {
        AuthFlow: "REFRESH_TOKEN_AUTH",
        ClientId: clientId,
        AuthParameters: { REFRESH_TOKEN: refreshToken },
      });
      if (!answer.AuthenticationResult) throw new CognitoError("InvalidResponse", "Cognito answered the refresh without tokens");
      return tokensOf(answer.AuthenticationResult, refreshToken);
    },

    /** RevokeToken: the refresh token, and the tokens it issued, stop working (sign-out). */
    async revoke(refreshToken: string): Promise<void> {
      await call<unknown>("RevokeToken", { Token: refreshToken, ClientId: clientId });
    },
  };
}
