// The console: sign-in, an org switcher, members and roles, invitations. Thin on purpose: it
// holds no rule the API does not enforce; what it shows is what the API answered, problems
// included.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { type components } from "@tenantry/client";
import { ProblemNote } from "./ProblemNote";
import { CognitoError } from "./cognito";
import {
  answerChallenge,
  apiFor,
  confirm,
  load,
  orgsOf,
  resendCode,
  save,
  signIn,
  signUp,
  signUpNeedsCode,
  signOut,
  type Session,
  type SignIn as SignInState,
} from "./session";
import { Projects } from "./Board";
import { Inbox } from "./Inbox";
import { Files } from "./Files";
import { Chat } from "./Chat";
import { AuditLog, UsagePanel } from "./Admin";

type Member = components["schemas"]["Member"];
type Invitation = components["schemas"]["InviteView"];

type Challenge = Exclude<SignInState, { kind: "session" }>;

/** Sign-in and sign-up. With the user pool (on AWS): the mailed code after sign-up, then the
 * authenticator's code at sign-in, or its enrolment when the pool requires MFA; locally the
 * pool needs neither. */
function SignIn({ onSession }: { onSession: (s: Session) => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [confirming, setConfirming] = useState(false);
  const [challenge, setChallenge] = useState<Challenge | null>(null);
  const [problem, setProblem] = useState<unknown>(null);
  const attempt = async (work: () => Promise<SignInState | void>) => {
    setProblem(null);
    try {
      const next = await work();
      if (!next) return;
      if (next.kind === "session") onSession(next.session);
      else {
        setCode("");
        setChallenge(next);
      }
    } catch (err) {
      const code = err instanceof CognitoError ? err.code : undefined;
      if (code === "UserNotConfirmedException") {
        // Signed up earlier without confirming: a new code, and the form to enter it.
        await resendCode(email).catch(() => undefined);
        setCode("");
        setConfirming(true);
        setProblem("Confirm your email first: we sent you a new code");
        return;
      }
      // The sign-in session ran out (its few minutes): start again from the password.
      if (code === "NotAuthorizedException") setChallenge(null);
      setProblem(err instanceof Error ? err.message : err);
    }
  };
  const submit = (e: FormEvent, create: boolean) => {
    e.preventDefault();
    void attempt(async () => {
      if (create) {
        await signUp(email, password);
        if (signUpNeedsCode()) {
          setConfirming(true);
          return;
        }
      }
      return signIn(email, password);
    });
  };
  if (confirming) {
    return (
      <form
        aria-labelledby="confirm-title"
        onSubmit={(e) => {
          e.preventDefault();
          void attempt(async () => {
            await confirm(email, code);
            setConfirming(false);
            return signIn(email, password);
          });
        }}
      >
        <h2 id="confirm-title">Confirm your email</h2>
        <p>We sent a code to {email}.</p>
        <label htmlFor="code">Code from the email</label>
        <input id="code" inputMode="numeric" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} />
        <p>
          <button type="submit">Confirm</button>{" "}
          <button type="button" className="secondary" onClick={() => void attempt(() => resendCode(email))}>
            Send the code again
          </button>
        </p>
        <ProblemNote problem={problem} />
      </form>
    );
  }
  if (challenge) {
    const label = challenge.kind === "new-password" ? "New password" : "Code from your authenticator app";
    return (
      <form
        aria-labelledby="challenge-title"
        onSubmit={(e) => {
          e.preventDefault();
          void attempt(() => answerChallenge(email, challenge, code));
        }}
      >
        <h2 id="challenge-title">{challenge.kind === "new-password" ? "Choose a new password" : "Two-step sign-in"}</h2>
        {challenge.kind === "mfa-setup" && (
          <p>
            Add this account to an authenticator app with the key <code aria-label="Authenticator key">{challenge.secret}</code>{" "}
            (or <a href={challenge.otpauthUri}>open it in the app</a>), then enter the code it shows.
          </p>
        )}
        <label htmlFor="challenge">{label}</label>
        <input
          id="challenge"
          type={challenge.kind === "new-password" ? "password" : "text"}
          inputMode={challenge.kind === "new-password" ? undefined : "numeric"}
          autoComplete={challenge.kind === "new-password" ? "new-password" : "one-time-code"}
          required
          value={code}
          onChange={(e) => setCode(e.target.value)}
        />
        <p>
          <button type="submit">Continue</button>{" "}
          <button
            type="button"
            className="secondary"
            onClick={() => {
              setChallenge(null);
              setProblem(null);
            }}
          >
            Start over
          </button>
        </p>
        <ProblemNote problem={problem} />
      </form>
    );
  }
  return (
    <form onSubmit={(e) => submit(e, false)} aria-labelledby="signin-title">
      <h2 id="signin-title">Sign in</h2>
      <label htmlFor="email">Email</label>
      <input id="email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
      <label htmlFor="password">Password</label>
      <input id="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
      <p>
        <button type="submit">Sign in</button> <button type="button" className="secondary" onClick={(e) => submit(e, true)}>Create an account</button>
      </p>
      <ProblemNote problem={problem} />
    </form>
  );
}

function Members({ session, orgId }: { session: Session; orgId: string }) {
  const api = apiFor(session);
  const [members, setMembers] = useState<Member[]>([]);
  const [invites, setInvites] = useState<Invitation[]>([]);
  const [problem, setProblem] = useState<unknown>(null);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState("member");
  const reload = useCallback(async () => {
    const m = await api.GET("/orgs/{orgId}/members", { params: { path: { orgId } } });
    if (m.error) return setProblem(m.error);
    setMembers(m.data.items);
    const i = await api.GET("/orgs/{orgId}/invites", { params: { path: { orgId } } });
    setInvites(i.data?.items ?? []);
  }, [orgId, session.idToken]);
  useEffect(() => {
    void reload();
  }, [reload]);
  const invite = async (e: FormEvent) => {
    e.preventDefault();
    const { error } = await api.POST("/orgs/{orgId}/invites", { params: { path: { orgId } }, body: { email, role } as never });
    setProblem(error ?? null);
    if (!error) {
      setEmail("");
      await reload();
    }
  };
  const act = async (call: Promise<{ error?: unknown }>) => {
    const { error } = await call;
    setProblem(error ?? null);
    await reload();
  };
  return (
    <>
      <section aria-labelledby="members-title">
        <h2 id="members-title">Members</h2>
        <table>
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <tr key={m.userId}>
                <td>{m.email}</td>
                <td>
                  <label className="visually-hidden" htmlFor={`role-${m.userId}`}>
                    Role of {m.email}
                  </label>
                  <select
                    id={`role-${m.userId}`}
                    value={m.role}
                    onChange={(e) =>
                      act(api.PATCH("/orgs/{orgId}/members/{userId}", { params: { path: { orgId, userId: m.userId } }, body: { role: e.target.value } as never }))
                    }
                  >
                    {["owner", "admin", "member", "viewer"].map((r) => (
                      <option key={r}>{r}</option>
                    ))}
                  </select>
                </td>
                <td>
                  <button className="secondary" onClick={() => act(api.DELETE("/orgs/{orgId}/members/{userId}", { params: { path: { orgId, userId: m.userId } } }))}>
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="invites-title">
        <h2 id="invites-title">Invitations</h2>
        <form onSubmit={invite}>
          <label htmlFor="invite-email">Email to invite</label>
          <input id="invite-email" type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
          <label htmlFor="invite-role">Role</label>
          <select id="invite-role" value={role} onChange={(e) => setRole(e.target.value)}>
            {["admin", "member", "viewer"].map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>{" "}
          <button type="submit">Invite</button>
        </form>
        <ul>
          {invites.map((i) => (
            <li key={i.id}>
              {i.email} ({i.role}){" "}
              <button className="secondary" onClick={() => act(api.POST("/orgs/{orgId}/invites/{inviteId}/resend", { params: { path: { orgId, inviteId: i.id } } }))}>
                Resend
              </button>{" "}
              <button className="secondary" onClick={() => act(api.DELETE("/orgs/{orgId}/invites/{inviteId}", { params: { path: { orgId, inviteId: i.id } } }))}>
                Revoke
              </button>
            </li>
          ))}
        </ul>
      </section>
      <ProblemNote problem={problem} />
    </>
  );
}

/** The invitation link's token (`…/invites/accept#token=…`: in the fragment, never sent to a server). */
function invitationToken(): string | null {
  if (!window.location.pathname.endsWith("/invites/accept")) return null;
  return new URLSearchParams(window.location.hash.slice(1)).get("token");
}

function AcceptInvitation({ session, token, onJoined }: { session: Session; token: string; onJoined: (orgId: string) => void }) {
  const [problem, setProblem] = useState<unknown>(null);
  const accept = async () => {
    const { data, error } = await apiFor(session).POST("/invites/accept", { body: { token } as never });
    setProblem(error ?? null);
    if (data) {
      window.history.replaceState(null, "", window.location.pathname.replace(/invites\/accept$/, ""));
      onJoined((data as { orgId: string }).orgId);
    }
  };
  return (
    <section aria-labelledby="accept-title">
      <h2 id="accept-title">You are invited</h2>
      <button onClick={() => void accept()}>Accept invitation</button>
      <ProblemNote problem={problem} />
    </section>
  );
}

function CreateOrg({ session, onCreated }: { session: Session; onCreated: (orgId: string) => void }) {
  const [name, setName] = useState("");
  const [problem, setProblem] = useState<unknown>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const { data, error } = await apiFor(session).POST("/orgs", { body: { name } as never });
    setProblem(error ?? null);
    if (data) onCreated((data as { id: string }).id);
  };
  return (
    <form onSubmit={submit} aria-labelledby="create-org-title">
      <h2 id="create-org-title">Create an organization</h2>
      <label htmlFor="org-name">Name</label>
      <input id="org-name" required value={name} onChange={(e) => setName(e.target.value)} /> <button type="submit">Create</button>
      <ProblemNote problem={problem} />
    </form>
  );
}

/** The org's own pages, once the API answered the org: otherwise only its problem (a stranger's
 * deep link gets "Not found" and nothing else). */
function OrgPages({ session, orgId }: { session: Session; orgId: string }) {
  const [state, setState] = useState<"loading" | "ok" | { problem: unknown }>("loading");
  useEffect(() => {
    setState("loading");
    void apiFor(session)
      .GET("/orgs/{orgId}", { params: { path: { orgId } } })
      .then(({ error }) => setState(error ? { problem: error } : "ok"));
  }, [orgId, session.idToken]);
  if (state === "loading") return <p aria-busy="true">Loading…</p>;
  if (state !== "ok") return <ProblemNote problem={state.problem} />;
  return (
    <>
      <Inbox session={session} orgId={orgId} />
      <Members session={session} orgId={orgId} />
      <Projects session={session} orgId={orgId} />
      <Files session={session} orgId={orgId} />
      <Chat session={session} orgId={orgId} />
      <UsagePanel session={session} orgId={orgId} />
      <AuditLog session={session} orgId={orgId} />
    </>
  );
}

export function App() {
  const [session, setSession] = useState<Session | null>(load);
  // A deep link (`/app/orgs/{orgId}`) opens that org; what the API answers for it (a stranger's
  // 404 included) is what is shown.
  const [orgId, setOrgId] = useState<string>(() => /\/orgs\/([0-9A-Za-z]{26})/.exec(window.location.pathname)?.[1] ?? "");
  const [invitation, setInvitation] = useState<string | null>(invitationToken);
  // The token's claim names the orgs the user had when it was issued; the API's list adds those
  // joined or created since (and their names).
  const [listed, setListed] = useState<{ orgId: string; role: string; name?: string }[]>([]);
  useEffect(() => save(session), [session]);
  useEffect(() => {
    if (!session) return;
    void apiFor(session)
      .GET("/orgs")
      .then(({ data }) => setListed(((data as { items?: { id: string; name: string; role: string }[] })?.items ?? []).map((o) => ({ orgId: o.id, role: o.role, name: o.name }))));
  }, [session, orgId]);
  const claimed = session ? orgsOf(session) : [];
  const orgs = [...listed, ...claimed.filter((c) => !listed.some((l) => l.orgId === c.orgId))];
  const current = orgId || orgs[0]?.orgId || "";
  return (
    <>
      <header>
        <h1>Tenantry</h1>
        {session && (
          <>
            <label htmlFor="org" style={{ margin: 0 }}>
              Organization
            </label>
            <select id="org" value={current} onChange={(e) => setOrgId(e.target.value)}>
              {orgs.map((o) => (
                <option key={o.orgId} value={o.orgId}>
                  {(o as { name?: string }).name ?? o.orgId} ({o.role})
                </option>
              ))}
            </select>
            <button
              className="secondary"
              onClick={() => {
                void signOut(session);
                setSession(null);
              }}
            >
              Sign out
            </button>
          </>
        )}
      </header>
      <main>
        {!session ? (
          <SignIn onSession={setSession} />
        ) : (
          <>
            {invitation && (
              <AcceptInvitation
                session={session}
                token={invitation}
                onJoined={(id) => {
                  setInvitation(null);
                  setOrgId(id);
                }}
              />
            )}
            {current ? (
              <OrgPages session={session} orgId={current} />
            ) : (
              <p>You belong to no organization yet.</p>
            )}
            <CreateOrg session={session} onCreated={setOrgId} />
          </>
        )}
      </main>
    </>
  );
}
