// The member's notification inbox with its unread count; marking read is the API's.
import { useCallback, useEffect, useState } from "react";
import type { components } from "@tenantry/client";
import { apiFor, type Session } from "./session";

type Notification = components["schemas"]["Notification"];

export function Inbox({ session, orgId }: { session: Session; orgId: string }) {
  const api = apiFor(session);
  const [items, setItems] = useState<Notification[]>([]);
  const [unread, setUnread] = useState(0);
  const path = { orgId };
  const reload = useCallback(async () => {
    const [list, count] = await Promise.all([
      api.GET("/orgs/{orgId}/notifications", { params: { path } }),
      api.GET("/orgs/{orgId}/notifications/unread-count", { params: { path } }),
    ]);
    setItems(list.data?.items ?? []);
    setUnread((count.data as { unread?: number } | undefined)?.unread ?? 0);
  }, [orgId, session.idToken]);
  useEffect(() => {
    void reload();
  }, [reload]);
  const readAll = async () => {
    await api.POST("/orgs/{orgId}/notifications/read-all", { params: { path } });
    await reload();
  };
  return (
    <section aria-labelledby="inbox-title">
      <h2 id="inbox-title">
        Notifications <span aria-label={`${unread} unread`}>({unread} unread)</span>
      </h2>
      <button className="secondary" onClick={() => void reload()}>
        Refresh
      </button>{" "}
      <button className="secondary" onClick={() => void readAll()} disabled={unread === 0}>
        Mark all read
      </button>
      <ul aria-label="Inbox">
        {items.map((n) => (
          <li key={n.id}>
            {n.read ? "" : "● "}
            <strong>{n.title}</strong> {n.body}
          </li>
        ))}
      </ul>
    </section>
  );
}
