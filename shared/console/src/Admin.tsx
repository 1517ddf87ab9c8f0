// Usage against the plan, and the audit log (admins and owners; others see the API's 403).
import { useEffect, useState } from "react";
import { isProblem, type components } from "@tenantry/client";
import { ProblemNote } from "./ProblemNote";
import { apiFor, type Session } from "./session";

type Usage = components["schemas"]["Usage"];
type AuditEntry = components["schemas"]["AuditEntry"];

function Meter({ label, used, limit }: { label: string; used: number; limit: number }) {
  return (
    <li>
      {label}: {used.toLocaleString()} of {limit.toLocaleString()} <meter aria-label={label} min={0} max={limit} value={used} />
    </li>
  );
}

export function UsagePanel({ session, orgId }: { session: Session; orgId: string }) {
  const [usage, setUsage] = useState<Usage | null>(null);
  useEffect(() => {
    void apiFor(session)
      .GET("/orgs/{orgId}/usage", { params: { path: { orgId } } })
      .then(({ data }) => setUsage(data ?? null));
  }, [orgId, session.idToken]);
  if (!usage) return null;
  const chat = usage.chat as { tokensUsed?: number; tokensPerMonth?: number };
  return (
    <section aria-labelledby="usage-title">
      <h2 id="usage-title">Usage ({String(usage.plan)} plan)</h2>
      <ul>
        <Meter label="Seats" used={usage.seatsUsed} limit={usage.limits.maxMembers} />
        <Meter label="Projects" used={usage.projects} limit={usage.limits.maxProjects} />
        <Meter label="Storage (bytes)" used={usage.storageBytes} limit={usage.limits.storageBytes} />
        <Meter label="Chat tokens this month" used={chat.tokensUsed ?? 0} limit={chat.tokensPerMonth ?? usage.limits.chatTokensPerMonth} />
      </ul>
    </section>
  );
}

export function AuditLog({ session, orgId }: { session: Session; orgId: string }) {
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [problem, setProblem] = useState<unknown>(null);
  useEffect(() => {
    void apiFor(session)
      .GET("/orgs/{orgId}/audit", { params: { path: { orgId } } })
      .then(({ data, error }) => {
        setProblem(error ?? null);
        setEntries((data?.items as AuditEntry[] | undefined) ?? []);
      });
  }, [orgId, session.idToken]);
  if (isProblem(problem) && problem.status === 403) return null; // not an admin's: nothing to show
  return (
    <section aria-labelledby="audit-title">
      <h2 id="audit-title">Audit log</h2>
      <ProblemNote problem={problem} />
      <table>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">What</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={String(e.seq)}>
              <td>{String(e.time)}</td>
              <td>{String(e.actorEmail ?? e.actor)}</td>
              <td>{String(e.action)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
