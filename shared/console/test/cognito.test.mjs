// The user pool client (src/cognito.ts), without a user pool: its SRP math against
// amazon-cognito-identity-js (AWS's own browser SDK, an independent implementation), and its
// sign-up and sign-in flows against a fake Cognito on loopback that checks the password proof
// as a real SRP server does (from the verifier v = g^x mod N only, never the password).
// `npm test` in shared/console; the module is transpiled by the TypeScript compiler on load.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { createRequire } from "node:module";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";

const require = createRequire(import.meta.url);
const helperPath = require.resolve("amazon-cognito-identity-js/lib/AuthenticationHelper.js");
const AuthenticationHelper = require(helperPath).default;
const BigInteger = require("amazon-cognito-identity-js/lib/BigInteger.js").default;
const DateHelper = require("amazon-cognito-identity-js/lib/DateHelper.js").default;
const { Sha256 } = createRequire(helperPath)("@aws-crypto/sha256-js");

const source = readFileSync(new URL("../src/cognito.ts", import.meta.url), "utf8");
const { outputText } = ts.transpileModule(source, {
  compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 },
  fileName: "cognito.ts",
});
const buildDir = mkdtempSync(join(tmpdir(), "tenantry-cognito-"));
writeFileSync(join(buildDir, "cognito.mjs"), outputText);
const cognito = await import(pathToFileURL(join(buildDir, "cognito.mjs")).href);
rmSync(buildDir, { recursive: true, force: true });
const { cognitoAuth, CognitoError, srpA, passwordAuthenticationKey, passwordClaim, cognitoTimestamp, padHex, modPow, N, g } = cognito;

// ---- the SDK's side ---------------------------------------------------------------------------

/** amazon-cognito-identity-js with a chosen private value `a` (it draws one at construction). */
function sdkHelper(poolName, aHex) {
  const helper = new AuthenticationHelper(poolName);
  helper.smallAValue = new BigInteger(aHex, 16);
  helper.largeAValue = undefined;
  let A;
  helper.getLargeAValue((err, value) => {
    if (err) throw err;
    A = value;
  });
  return { helper, A };
}

/** The SDK's key and PASSWORD_CLAIM_SIGNATURE, as CognitoUser.authenticateUserDefaultAuth computes them. */
function sdkClaim({ poolName, userIdForSrp, password, aHex, srpB, salt, secretBlock, timestamp }) {
  const { helper, A } = sdkHelper(poolName, aHex);
  let key;
  helper.getPasswordAuthenticationKey(userIdForSrp, password, new BigInteger(srpB, 16), new BigInteger(salt, 16), (err, hkdf) => {
    if (err) throw err;
    key = Buffer.from(hkdf);
  });
  const message = Buffer.concat([
    Buffer.from(poolName, "utf8"),
    Buffer.from(userIdForSrp, "utf8"),
    Buffer.from(secretBlock, "base64"),
    Buffer.from(timestamp, "utf8"),
  ]);
  const hmac = new Sha256(key);
  hmac.update(message);
  return { A: A.toString(16), key: key.toString("hex"), signature: Buffer.from(hmac.digestSync()).toString("base64"), helper };
}

const hex = (bytes) => Buffer.from(bytes).toString("hex");
/** A fixed hex string of `bytes` bytes drawn from `seed` (SHA-256 in counter mode), its first nibble `lead`. */
function fixedHex(seed, bytes, lead) {
  let out = "";
  for (let i = 0; out.length < 2 * bytes; i++) out += createHash("sha256").update(`${seed}/${i}`).digest("hex");
  return lead + out.slice(1, 2 * bytes);
}
const fixedBase64 = (seed, bytes) => Buffer.from(fixedHex(seed, bytes, "4"), "hex").toString("base64");

test("the group and padHex are Cognito's: a sign byte before a set top bit, even length", () => {
  assert.equal(N.toString(16).length, 768);
  assert.equal(g, 2n);
  assert.equal(padHex(0x7fn), "7f");
  assert.equal(padHex(0x80n), "0080");
  assert.equal(padHex(0xabcn), "0abc");
  assert.equal(padHex(0xf00n), "0f00");
  assert.equal(padHex(0xffffn), "00ffff");
  assert.equal(padHex(N).slice(0, 6), "00ffff");
  const sdk = new AuthenticationHelper("x");
  for (const h of ["1", "7f", "80", "abc", "f00", "ffff", "0123456789abcdef0", N.toString(16)]) {
    assert.equal(padHex(BigInt("0x" + h)), sdk.padHex(new BigInteger(h, 16)), h);
  }
});

test("modPow agrees with the SDK's BigInteger and with plain square-and-multiply", () => {
  const plain = (b, e, m) => {
    let r = 1n;
    for (b %= m; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
    return r;
  };
  for (let i = 0; i < 5; i++) {
    const base = BigInt("0x" + randomBytes(384).toString("hex")) % N;
    const exp = BigInt("0x" + randomBytes(128 + 64 * i).toString("hex"));
    const mine = modPow(base, exp, N);
    assert.equal(mine, plain(base, exp, N));
    let sdk;
    new BigInteger(base.toString(16), 16).modPow(new BigInteger(exp.toString(16), 16), new BigInteger(N.toString(16), 16), (err, r) => {
      sdk = r.toString(16);
    });
    assert.equal(mine.toString(16), sdk);
  }
  assert.equal(modPow(5n, 0n, N), 1n);
  assert.equal(modPow(0n, 7n, N), 0n);
  assert.equal(modPow(N - 1n, 2n, N), 1n);
});

test("the 3072-bit exponentiations are quick (A = g^a and a full-size exponent)", () => {
  const times = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    modPow(BigInt("0x" + randomBytes(384).toString("hex")) % N, BigInt("0x" + randomBytes(384).toString("hex")), N);
    times.push(performance.now() - start);
  }
  times.sort((x, y) => x - y);
  const start = performance.now();
  srpA(BigInt("0x" + randomBytes(128).toString("hex")));
  const forA = performance.now() - start;
  console.log(`modPow over N: 3072-bit exponent ${times[2].toFixed(1)} ms (median of 5), A = g^a (1024-bit a) ${forA.toFixed(1)} ms`);
  assert.ok(times[2] < 500, `3072-bit modPow took ${times[2]} ms`);
});

const KNOWN_CASES = [
  {
    name: "top bit set in salt and B",
    poolName: "Ab3dEf9Gh",
    userIdForSrp: "3c7d2f9e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
    password: "Correct-Horse-42",
    aHex: fixedHex("top/a", 128, "9"),
    srpB: fixedHex("top/B", 384, "c"),
    salt: fixedHex("top/salt", 16, "f"),
  },
  {
    name: "top bit clear in salt and B, odd-length B",
    poolName: "eXaMpLe01",
    userIdForSrp: "a2c2e290-6d0f-4a08-a5ca-f0162935f3a6",
    password: "Another-Passw0rd",
    aHex: fixedHex("clear/a", 128, "1"),
    srpB: fixedHex("clear/B", 383, "0").slice(1),
    salt: fixedHex("clear/salt", 16, "2"),
  },
  {
    name: "non-ASCII password, short salt with a leading zero byte",
    poolName: "Zz9",
    userIdForSrp: "00000000-0000-4000-8000-000000000001",
    password: "pässwörd mit € und 日本語",
    aHex: fixedHex("utf8/a", 128, "f"),
    srpB: fixedHex("utf8/B", 384, "8"),
    salt: "00" + fixedHex("utf8/salt", 15, "8"),
  },
  {
    name: "salt of one byte with the top bit set, empty password",
    poolName: "P",
    userIdForSrp: "u",
    password: "",
    aHex: fixedHex("short/a", 128, "4"),
    srpB: fixedHex("short/B", 384, "5"),
    salt: "80",
  },
];

for (const c of KNOWN_CASES) {
  test(`known answer against amazon-cognito-identity-js: ${c.name}`, async () => {
    const secretBlock = fixedBase64(`${c.name}/secret`, 64 + (c.password.length % 7));
    const timestamp = "Sun Mar 1 09:05:07 UTC 2026";
    const sdk = sdkClaim({ ...c, secretBlock, timestamp });
    const a = BigInt("0x" + c.aHex);
    assert.equal(srpA(a).toString(16), sdk.A, "A");
    const input = { poolName: c.poolName, userIdForSrp: c.userIdForSrp, password: c.password, a, srpB: c.srpB, salt: c.salt };
    assert.equal(hex(await passwordAuthenticationKey(input)), sdk.key, "HKDF key");
    assert.equal(await passwordClaim({ ...input, secretBlock, timestamp }), sdk.signature, "PASSWORD_CLAIM_SIGNATURE");
    // A different password, user or timestamp changes the signature.
    assert.notEqual(await passwordClaim({ ...input, password: c.password + "x", secretBlock, timestamp }), sdk.signature);
    assert.notEqual(await passwordClaim({ ...input, userIdForSrp: c.userIdForSrp + "x", secretBlock, timestamp }), sdk.signature);
    assert.notEqual(await passwordClaim({ ...input, secretBlock, timestamp: "Sun Mar 01 09:05:07 UTC 2026" }), sdk.signature);
  });
}

test("known answer against amazon-cognito-identity-js: u whose hash starts with a zero byte (the HKDF salt is 31 bytes)", async () => {
  const poolName = "ZeroU";
  const aHex = fixedHex("zero-u/a", 128, "3");
  const { helper, A } = sdkHelper(poolName, aHex);
  const padA = helper.padHex(A);
  let srpB;
  for (let i = 0; ; i++) {
    const candidate = fixedHex(`zero-u/B/${i}`, 384, "6");
    const u = createHash("sha256").update(Buffer.from(padA + helper.padHex(new BigInteger(candidate, 16)), "hex")).digest();
    // A leading zero byte before one without the top bit: padHex(u) is 31 bytes, not 32.
    if (u[0] === 0 && u[1] < 0x80) {
      srpB = candidate;
      break;
    }
    assert.ok(i < 20000);
  }
  const c = { poolName, userIdForSrp: "user-zero-u", password: "Pw-zero-u-123", aHex, srpB, salt: fixedHex("zero-u/salt", 16, "a") };
  const secretBlock = fixedBase64("zero-u/secret", 48);
  const timestamp = "Mon Jan 5 00:00:00 UTC 2026";
  const sdk = sdkClaim({ ...c, secretBlock, timestamp });
  const input = { ...c, a: BigInt("0x" + aHex), secretBlock, timestamp };
  assert.equal(hex(await passwordAuthenticationKey(input)), sdk.key);
  assert.equal(await passwordClaim(input), sdk.signature);
});

test("SRP refuses B = 0 mod N and values that are not hex", async () => {
  const base = { poolName: "P", userIdForSrp: "u", password: "p", a: 12345n, salt: "abcd", secretBlock: "AAAA", timestamp: "t" };
  for (const srpB of ["0", N.toString(16), (2n * N).toString(16)]) {
    await assert.rejects(passwordClaim({ ...base, srpB }), (e) => e instanceof CognitoError && e.code === "InvalidSrpParameter");
  }
  await assert.rejects(passwordClaim({ ...base, srpB: "xyz" }), (e) => e instanceof CognitoError && e.code === "InvalidSrpParameter");
  await assert.rejects(passwordClaim({ ...base, srpB: "12", salt: "" }), (e) => e instanceof CognitoError && e.code === "InvalidSrpParameter");
});

// ---- the timestamp ----------------------------------------------------------------------------

test("TIMESTAMP: ddd MMM D HH:mm:ss UTC YYYY in UTC, the day without a leading zero", () => {
  assert.equal(cognitoTimestamp(new Date("2026-03-01T09:05:07Z")), "Sun Mar 1 09:05:07 UTC 2026");
  assert.equal(cognitoTimestamp(new Date("2026-03-09T00:00:00Z")), "Mon Mar 9 00:00:00 UTC 2026");
  assert.equal(cognitoTimestamp(new Date("2026-03-10T23:59:59Z")), "Tue Mar 10 23:59:59 UTC 2026");
  assert.equal(cognitoTimestamp(new Date("2025-12-31T23:59:59.999Z")), "Wed Dec 31 23:59:59 UTC 2025");
  assert.equal(cognitoTimestamp(new Date("2024-02-29T12:00:00Z")), "Thu Feb 29 12:00:00 UTC 2024");
  // Another offset is turned into UTC (here across a day and a month).
  assert.equal(cognitoTimestamp(new Date("2026-03-01T00:30:00+02:00")), "Sat Feb 28 22:30:00 UTC 2026");
  assert.match(cognitoTimestamp(), /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) [A-Z][a-z]{2} [1-9]\d? \d\d:\d\d:\d\d UTC \d{4}$/);
});

test("TIMESTAMP agrees with the SDK's DateHelper over a year and a half of days", () => {
  const RealDate = globalThis.Date;
  try {
    for (let t = RealDate.UTC(2025, 0, 1, 0, 0, 1); t < RealDate.UTC(2026, 6, 1); t += 86_400_000 + 3_723_000) {
      globalThis.Date = class extends RealDate {
        constructor(...args) {
          super(...(args.length ? args : [t]));
        }
      };
      const sdk = new DateHelper().getNowString();
      assert.equal(cognitoTimestamp(new RealDate(t)), sdk);
    }
  } finally {
    globalThis.Date = RealDate;
  }
});

// ---- a fake Cognito ---------------------------------------------------------------------------

const POOL_ID = "eu-west-1_TenantryT1";
const POOL_NAME = "TenantryT1";
const CLIENT_ID = "7abc1defghij2klmnopq3rstuv";
const TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSW";
const GOOD_CODE = "123456";
const sha256 = (...parts) => createHash("sha256").update(Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : p)))).digest();
const big = (buf) => BigInt("0x" + (Buffer.from(buf).toString("hex") || "0"));
const pad = (n) => {
  let h = n.toString(16);
  if (h.length % 2) h = "0" + h;
  return /^[89a-f]/.test(h) ? "00" + h : h;
};
const bytesOf = (n) => Buffer.from(pad(n), "hex");
function serverModPow(b, e, m) {
  let r = 1n;
  for (b %= m; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
}
const K = big(sha256(bytesOf(N), bytesOf(g)));

/** What the pool stores at sign-up: a salt and the verifier, never the password. */
function enrol(email, password, mode, sub = crypto.randomUUID()) {
  const saltBytes = randomBytes(16);
  const salt = big(saltBytes);
  const x = big(sha256(bytesOf(salt), Buffer.from(sha256(`${POOL_NAME}${sub}:${password}`).toString("hex"), "hex")));
  return { email, sub, salt: saltBytes.toString("hex"), verifier: serverModPow(g, x, N), mode };
}

class Rejection extends Error {
  constructor(type, message, { status = 400, form = "body" } = {}) {
    super(message);
    this.type = type;
    this.status = status;
    this.form = form;
  }
}

function fakeCognito() {
  const users = new Map();
  const pending = new Map(); // SECRET_BLOCK -> the SRP exchange it belongs to
  const sessions = new Map(); // Session -> { user, expects }
  const requests = [];
  const newSession = (user, expects) => {
    const s = randomBytes(48).toString("base64");
    sessions.set(s, { user, expects });
    return s;
  };
  const takeSession = (s, expects) => {
    const found = sessions.get(s);
    if (!found || found.expects !== expects) throw new Rejection("NotAuthorizedException", "Invalid session for the user.");
    sessions.delete(s);
    return found.user;
  };
  const tokens = (user, withRefresh = true) => ({
    AuthenticationResult: {
      IdToken: `id.${user.sub}`,
      AccessToken: `access.${user.sub}`,
      ...(withRefresh ? { RefreshToken: `refresh.${user.sub}` } : {}),
      ExpiresIn: 3600,
      TokenType: "Bearer",
    },
    ChallengeParameters: {},
  });
  const afterPassword = (user) => {
    const params = { USER_ID_FOR_SRP: user.sub };
    switch (user.mode) {
      case "totp":
        return { ChallengeName: "SOFTWARE_TOKEN_MFA", ChallengeParameters: params, Session: newSession(user, "SOFTWARE_TOKEN_MFA") };
      case "setup":
        return {
          ChallengeName: "MFA_SETUP",
          ChallengeParameters: { ...params, MFAS_CAN_SETUP: '["SOFTWARE_TOKEN_MFA"]' },
          Session: newSession(user, "AssociateSoftwareToken"),
        };
      case "new-password":
        return {
          ChallengeName: "NEW_PASSWORD_REQUIRED",
          ChallengeParameters: { ...params, userAttributes: JSON.stringify({ email: user.email }), requiredAttributes: "[]" },
          Session: newSession(user, "NEW_PASSWORD_REQUIRED"),
        };
      default:
        return tokens(user);
    }
  };

  const operations = {
    SignUp(body) {
      const email = body.Username;
      if ([...users.values()].some((u) => u.email === email)) throw new Rejection("UsernameExistsException", "An account with the given email already exists.");
      const user = enrol(email, body.Password, "none");
      users.set(email, user);
      return { UserConfirmed: false, UserSub: user.sub, CodeDeliveryDetails: { AttributeName: "email", DeliveryMedium: "EMAIL", Destination: "a***@e***" } };
    },
    ConfirmSignUp(body) {
      if (body.ConfirmationCode !== GOOD_CODE) throw new Rejection("CodeMismatchException", "Invalid verification code provided, please try again.");
      return {};
    },
    ResendConfirmationCode() {
      return { CodeDeliveryDetails: { AttributeName: "email", DeliveryMedium: "EMAIL", Destination: "a***@e***" } };
    },
    InitiateAuth(body) {
      if (body.AuthFlow === "REFRESH_TOKEN_AUTH") {
        const sub = String(body.AuthParameters.REFRESH_TOKEN).replace(/^refresh\./, "");
        const user = [...users.values()].find((u) => u.sub === sub);
        if (!user) throw new Rejection("NotAuthorizedException", "Invalid Refresh Token", { form: "header" });
        return tokens(user, false);
      }
      if (body.AuthFlow !== "USER_SRP_AUTH") throw new Rejection("InvalidParameterException", "USER_SRP_AUTH only");
      const { USERNAME, SRP_A } = body.AuthParameters;
      assert.match(SRP_A, /^[0-9a-f]+$/);
      const A = BigInt("0x" + SRP_A);
      if (A % N === 0n) throw new Rejection("InvalidParameterException", "SRP_A");
      // As with preventUserExistenceErrors: an unknown user gets a challenge that cannot be met.
      const user = users.get(USERNAME) ?? { email: USERNAME, sub: crypto.randomUUID(), salt: randomBytes(16).toString("hex"), verifier: big(randomBytes(384)) % N, mode: "none", phantom: true };
      const b = big(randomBytes(32));
      const B = (K * user.verifier + serverModPow(g, b, N)) % N;
      const secretBlock = randomBytes(96).toString("base64");
      pending.set(secretBlock, { user, A, b, B });
      return {
        ChallengeName: "PASSWORD_VERIFIER",
        ChallengeParameters: { SALT: user.salt, SECRET_BLOCK: secretBlock, SRP_B: B.toString(16), USERNAME: user.sub, USER_ID_FOR_SRP: user.sub },
      };
    },
    RespondToAuthChallenge(body) {
      assert.equal(body.ClientId, CLIENT_ID);
      const r = body.ChallengeResponses;
      switch (body.ChallengeName) {
        case "PASSWORD_VERIFIER": {
          const exchange = pending.get(r.PASSWORD_CLAIM_SECRET_BLOCK);
          if (!exchange) throw new Rejection("NotAuthorizedException", "Incorrect username or password.");
          pending.delete(r.PASSWORD_CLAIM_SECRET_BLOCK);
          const { user, A, b, B } = exchange;
          assert.equal(r.USERNAME, user.sub, "PASSWORD_VERIFIER names USER_ID_FOR_SRP");
          assert.equal(body.Session, undefined, "no Session was given, none comes back");
          assert.match(r.TIMESTAMP, /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [1-9]\d? \d\d:\d\d:\d\d UTC \d{4}$/);
          assert.ok(Math.abs(Date.parse(r.TIMESTAMP.replace(" UTC ", " ") + " UTC") - Date.now()) < 5 * 60_000, r.TIMESTAMP);
          // The server's side of SRP-6a: S = (A v^u)^b mod N.
          const u = big(sha256(bytesOf(A), bytesOf(B)));
          const S = serverModPow(A * serverModPow(user.verifier, u, N), b, N);
          const key = Buffer.from(hkdfSync("sha256", bytesOf(S), bytesOf(u), "Caldera Derived Key", 16));
          const expected = createHmac("sha256", key)
            .update(Buffer.concat([Buffer.from(POOL_NAME), Buffer.from(user.sub), Buffer.from(r.PASSWORD_CLAIM_SECRET_BLOCK, "base64"), Buffer.from(r.TIMESTAMP)]))
            .digest();
          const given = Buffer.from(r.PASSWORD_CLAIM_SIGNATURE, "base64");
          if (user.phantom || given.length !== expected.length || !timingSafeEqual(given, expected)) {
            throw new Rejection("NotAuthorizedException", "Incorrect username or password.");
          }
          return afterPassword(user);
        }
        case "SOFTWARE_TOKEN_MFA": {
          const user = takeSession(body.Session, "SOFTWARE_TOKEN_MFA");
          assert.equal(r.USERNAME, user.sub);
          if (r.SOFTWARE_TOKEN_MFA_CODE !== GOOD_CODE) {
            throw new Rejection("com.amazonaws.cognito.identity.idp.model#CodeMismatchException", "Invalid code received for user");
          }
          return tokens(user);
        }
        case "MFA_SETUP": {
          const user = takeSession(body.Session, "MFA_SETUP");
          assert.equal(r.USERNAME, user.sub);
          user.mode = "totp";
          return tokens(user);
        }
        case "NEW_PASSWORD_REQUIRED": {
          const user = takeSession(body.Session, "NEW_PASSWORD_REQUIRED");
          assert.equal(r.USERNAME, user.sub);
          Object.assign(user, enrol(user.email, r.NEW_PASSWORD, "none", user.sub));
          return tokens(user);
        }
        default:
          throw new Rejection("InvalidParameterException", `unexpected challenge ${body.ChallengeName}`);
      }
    },
    AssociateSoftwareToken(body) {
      const user = takeSession(body.Session, "AssociateSoftwareToken");
      return { SecretCode: TOTP_SECRET, Session: newSession(user, "VerifySoftwareToken") };
    },
    VerifySoftwareToken(body) {
      const user = takeSession(body.Session, "VerifySoftwareToken");
      if (body.UserCode !== GOOD_CODE) {
        sessions.set(body.Session, { user, expects: "VerifySoftwareToken" });
        throw new Rejection("CodeMismatchException", "Invalid code received for user");
      }
      user.deviceName = body.FriendlyDeviceName;
      return { Status: "SUCCESS", Session: newSession(user, "MFA_SETUP") };
    },
  };

  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk) => (raw += chunk));
    req.on("end", () => {
      const target = req.headers["x-amz-target"] ?? "";
      const operation = target.replace(/^AWSCognitoIdentityProviderService\./, "");
      let body = {};
      try {
        body = JSON.parse(raw);
      } catch {}
      requests.push({ method: req.method, url: req.url, headers: req.headers, operation, body });
      const answer = (status, data, headers = {}) => {
        res.writeHead(status, { "content-type": "application/x-amz-json-1.1", ...headers });
        res.end(data === undefined ? "" : JSON.stringify(data));
      };
      try {
        if (req.method !== "POST" || req.headers["content-type"] !== "application/x-amz-json-1.1" || !operations[operation]) {
          throw new Rejection("UnknownOperationException", `${req.method} ${req.headers["content-type"]} ${target}`);
        }
        if (body.ClientId !== undefined) assert.equal(body.ClientId, CLIENT_ID);
        answer(200, operations[operation](body));
      } catch (e) {
        if (!(e instanceof Rejection)) {
          answer(500, { __type: "InternalErrorException", message: String(e.message) });
          return;
        }
        const short = e.type.split("#").pop();
        if (e.form === "header") answer(e.status, undefined, { "x-amzn-ErrorType": `${short}:http://internal.amazon.com/coral/com.amazon.coral.validate/` });
        else answer(e.status, { __type: e.type, message: e.message }, { "x-amzn-ErrorType": `${short}:` });
      }
    });
  });
  return { server, users, requests, enrol: (email, password, mode) => users.set(email, enrol(email, password, mode)).get(email) };
}

let fake;
let auth;
before(async () => {
  fake = fakeCognito();
  await new Promise((resolve) => fake.server.listen(0, "127.0.0.1", resolve));
  auth = cognitoAuth({ region: "eu-west-1", userPoolId: POOL_ID, clientId: CLIENT_ID, endpoint: `http://127.0.0.1:${fake.server.address().port}/` });
});
after(() => new Promise((resolve) => fake.server.close(resolve)));

const lastOf = (operation) => fake.requests.filter((r) => r.operation === operation).at(-1);

test("every request: POST to the endpoint, the JSON 1.1 content type and the operation's target, unsigned", async () => {
  fake.enrol("headers@example.com", "Headers-Pass-1", "none");
  fake.requests.length = 0;
  await auth.signIn("headers@example.com", "Headers-Pass-1");
  await auth.resendCode("headers@example.com");
  assert.deepEqual(
    fake.requests.map((r) => r.headers["x-amz-target"]),
    ["InitiateAuth", "RespondToAuthChallenge", "ResendConfirmationCode"].map((op) => `AWSCognitoIdentityProviderService.${op}`),
  );
  for (const r of fake.requests) {
    assert.equal(r.method, "POST");
    assert.equal(r.url, "/");
    assert.equal(r.headers["content-type"], "application/x-amz-json-1.1");
    assert.equal(r.headers.authorization, undefined);
    assert.equal(r.headers["x-amz-date"], undefined);
  }
});

test("the default endpoint is the region's cognito-idp", async () => {
  const seen = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    seen.push({ url: String(url), init });
    return new Response("{}", { status: 200, headers: { "content-type": "application/x-amz-json-1.1" } });
  };
  try {
    await cognitoAuth({ region: "ap-southeast-2", userPoolId: "ap-southeast-2_Xyz", clientId: "c" }).resendCode("a@example.com");
  } finally {
    globalThis.fetch = realFetch;
  }
  assert.equal(seen[0].url, "https://cognito-idp.ap-southeast-2.amazonaws.com/");
  assert.equal(seen[0].init.method, "POST");
});

test("sign-up, confirmation and a new code: the client id, the email as Username and as the email attribute", async () => {
  const email = "new.user@example.com";
  assert.deepEqual(await auth.signUp(email, "Brand-New-Pass-1"), { confirmed: false });
  assert.deepEqual(lastOf("SignUp").body, {
    ClientId: CLIENT_ID,
    Username: email,
    Password: "Brand-New-Pass-1",
    UserAttributes: [{ Name: "email", Value: email }],
  });
  await assert.rejects(auth.signUp(email, "Brand-New-Pass-1"), (e) => e instanceof CognitoError && e.code === "UsernameExistsException" && e.status === 400 && /already exists/.test(e.message));

  await auth.resendCode(email);
  assert.deepEqual(lastOf("ResendConfirmationCode").body, { ClientId: CLIENT_ID, Username: email });

  await assert.rejects(auth.confirmSignUp(email, "999999"), (e) => e.code === "CodeMismatchException");
  await auth.confirmSignUp(email, ` ${GOOD_CODE} `);
  assert.deepEqual(lastOf("ConfirmSignUp").body, { ClientId: CLIENT_ID, Username: email, ConfirmationCode: GOOD_CODE });

  // The account signs in with the password chosen at sign-up (no MFA for this one).
  const step = await auth.signIn(email, "Brand-New-Pass-1");
  assert.equal(step.kind, "done");
});

test("sign-in without MFA: the server verifies the proof and answers tokens", async () => {
  const user = fake.enrol("plain@example.com", "Plain-Password-1", "none");
  const step = await auth.signIn("plain@example.com", "Plain-Password-1");
  assert.deepEqual(step, { kind: "done", tokens: { idToken: `id.${user.sub}`, accessToken: `access.${user.sub}`, refreshToken: `refresh.${user.sub}`, expiresIn: 3600 } });
  const init = lastOf("InitiateAuth").body;
  assert.equal(init.AuthFlow, "USER_SRP_AUTH");
  assert.equal(init.ClientId, CLIENT_ID);
  assert.equal(init.AuthParameters.USERNAME, "plain@example.com");
  assert.deepEqual(Object.keys(init.AuthParameters).sort(), ["SRP_A", "USERNAME"]);
  const verifier = lastOf("RespondToAuthChallenge").body;
  assert.equal(verifier.ChallengeName, "PASSWORD_VERIFIER");
  assert.deepEqual(Object.keys(verifier.ChallengeResponses).sort(), ["PASSWORD_CLAIM_SECRET_BLOCK", "PASSWORD_CLAIM_SIGNATURE", "TIMESTAMP", "USERNAME"]);
  assert.equal(verifier.ChallengeResponses.USERNAME, user.sub);
});

test("a wrong password, or an unknown user, is NotAuthorizedException", async () => {
  fake.enrol("victim@example.com", "Right-Password-1", "totp");
  for (const [email, password] of [
    ["victim@example.com", "Wrong-Password-1"],
    ["victim@example.com", "right-password-1"],
    ["nobody@example.com", "Right-Password-1"],
  ]) {
    await assert.rejects(auth.signIn(email, password), (e) => {
      assert.ok(e instanceof CognitoError);
      assert.ok(e instanceof Error);
      assert.equal(e.code, "NotAuthorizedException");
      assert.equal(e.message, "Incorrect username or password.");
      assert.equal(e.status, 400);
      return true;
    });
  }
});

test("SOFTWARE_TOKEN_MFA: the authenticator's code, a wrong one refused", async () => {
  const user = fake.enrol("totp@example.com", "Totp-Password-1", "totp");
  const step = await auth.signIn("totp@example.com", "Totp-Password-1");
  assert.equal(step.kind, "totp");
  assert.equal(step.username, user.sub);
  assert.equal(step.email, "totp@example.com");
  assert.ok(step.session.length > 20);

  await assert.rejects(auth.answerTotp(step, "000000"), (e) => e instanceof CognitoError && e.code === "CodeMismatchException" && e.message === "Invalid code received for user");

  const again = await auth.signIn("totp@example.com", "Totp-Password-1");
  const done = await auth.answerTotp(again, GOOD_CODE);
  assert.equal(done.kind, "done");
  assert.equal(done.tokens.idToken, `id.${user.sub}`);
  const answer = lastOf("RespondToAuthChallenge").body;
  assert.deepEqual(answer, {
    ChallengeName: "SOFTWARE_TOKEN_MFA",
    ClientId: CLIENT_ID,
    Session: again.session,
    ChallengeResponses: { USERNAME: user.sub, SOFTWARE_TOKEN_MFA_CODE: GOOD_CODE },
  });
});

test("MFA_SETUP: the secret from AssociateSoftwareToken, then VerifySoftwareToken and MFA_SETUP with the new sessions", async () => {
  const user = fake.enrol("enrol@example.com", "Enrol-Password-1", "setup");
  const step = await auth.signIn("enrol@example.com", "Enrol-Password-1");
  assert.equal(step.kind, "mfa-setup");
  assert.equal(step.username, user.sub);
  assert.equal(step.secret, TOTP_SECRET);
  assert.equal(step.otpauthUri, `otpauth://totp/Tenantry:enrol%40example.com?secret=${TOTP_SECRET}&issuer=Tenantry`);
  const associate = lastOf("AssociateSoftwareToken");
  assert.equal(associate.headers["x-amz-target"], "AWSCognitoIdentityProviderService.AssociateSoftwareToken");
  assert.deepEqual(Object.keys(associate.body), ["Session"]);
  assert.notEqual(step.session, associate.body.Session, "the step carries AssociateSoftwareToken's session");

  // A wrong first code: refused, and the enrolment can be tried again with the same step.
  await assert.rejects(auth.completeMfaSetup(step, "000000"), (e) => e.code === "CodeMismatchException");

  const done = await auth.completeMfaSetup(step, GOOD_CODE, "Phone");
  assert.equal(done.kind, "done");
  assert.equal(done.tokens.accessToken, `access.${user.sub}`);
  assert.deepEqual(lastOf("VerifySoftwareToken").body, { Session: step.session, UserCode: GOOD_CODE, FriendlyDeviceName: "Phone" });
  assert.equal(user.deviceName, "Phone");
  const final = lastOf("RespondToAuthChallenge").body;
  assert.equal(final.ChallengeName, "MFA_SETUP");
  assert.deepEqual(final.ChallengeResponses, { USERNAME: user.sub });
  assert.notEqual(final.Session, step.session, "MFA_SETUP answers with VerifySoftwareToken's session");

  // Enrolled: the next sign-in asks for the code.
  const next = await auth.signIn("enrol@example.com", "Enrol-Password-1");
  assert.equal(next.kind, "totp");
});

test("NEW_PASSWORD_REQUIRED: the new password, then the user signs in with it", async () => {
  const user = fake.enrol("invited@example.com", "Temporary-Pass-1", "new-password");
  const step = await auth.signIn("invited@example.com", "Temporary-Pass-1");
  assert.equal(step.kind, "new-password");
  assert.equal(step.username, user.sub);
  const done = await auth.setNewPassword(step, "Chosen-Password-2");
  assert.equal(done.kind, "done");
  assert.deepEqual(lastOf("RespondToAuthChallenge").body.ChallengeResponses, { USERNAME: user.sub, NEW_PASSWORD: "Chosen-Password-2" });
  await assert.rejects(auth.signIn("invited@example.com", "Temporary-Pass-1"), (e) => e.code === "NotAuthorizedException");
  assert.equal((await auth.signIn("invited@example.com", "Chosen-Password-2")).kind, "done");
});

test("refresh: REFRESH_TOKEN_AUTH, new ID and access tokens, the refresh token kept", async () => {
  const user = fake.enrol("refresh@example.com", "Refresh-Password-1", "none");
  const tokens = await auth.refresh(`refresh.${user.sub}`);
  assert.deepEqual(tokens, { idToken: `id.${user.sub}`, accessToken: `access.${user.sub}`, refreshToken: `refresh.${user.sub}`, expiresIn: 3600 });
  assert.deepEqual(lastOf("InitiateAuth").body, { AuthFlow: "REFRESH_TOKEN_AUTH", ClientId: CLIENT_ID, AuthParameters: { REFRESH_TOKEN: `refresh.${user.sub}` } });
  // An error named only by the x-amzn-ErrorType header.
  await assert.rejects(auth.refresh("refresh.revoked"), (e) => e instanceof CognitoError && e.code === "NotAuthorizedException" && e.status === 400);
});

test("no answer at all is NetworkError", async () => {
  const closed = cognitoAuth({ region: "eu-west-1", userPoolId: POOL_ID, clientId: CLIENT_ID, endpoint: "http://127.0.0.1:9/" });
  await assert.rejects(closed.resendCode("a@example.com"), (e) => e instanceof CognitoError && e.code === "NetworkError");
});
