// A task's detail: its description and comments; `@handle` mentions notify the members named
// (the API resolves them; the console only offers the handles).
import { useCallback, useEffect, useState, type FormEvent } from "react";
import type { components } from "@tenantry/client";
import { apiFor, type Session } from "./session";
import { ProblemNote } from "./ProblemNote";

type Task = components["schemas"]["Task"];
type Comment = components["schemas"]["Comment"];
type Member = components["schemas"]["Member"];

export function TaskDetail({ session, orgId, task, members, onClose }: { session: Session; orgId: string; task: Task; members: Member[]; onClose: () => void }) {
  const api = apiFor(session);
  const path = { orgId, projectId: task.projectId, taskId: task.id };
  const [comments, setComments] = useState<Comment[]>([]);
  const [text, setText] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const reload = useCallback(async () => {
    const { data } = await api.GET("/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments", { params: { path } });
    setComments((data?.items as Comment[] | undefined) ?? []);
  }, [task.id, session.idToken]);
  useEffect(() => {
    void reload();
  }, [reload]);
  const post = async (e: FormEvent) => {
    e.preventDefault();
    const { error } = await api.POST("/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments", { params: { path }, body: { text } as never });
    setProblem(error ? ((error as { detail?: string; title?: string }).detail ?? "refused") : null);
    if (!error) setText("");
    await reload();
  };
  const nameOf = (userId: string) => members.find((m) => m.userId === userId)?.email ?? userId;
  return (
    <section aria-label={`Task ${task.title}`} className="detail">
      <h3>{task.title}</h3>
      <p>{task.description || "No description."}</p>
      <button className="secondary" onClick={onClose}>
        Close
      </button>
      <h4>Comments</h4>
      <ul aria-label="Comments">
        {comments.map((c) => (
          <li key={c.id}>
            <strong>{nameOf(String(c.author))}</strong>: {c.text}
          </li>
        ))}
      </ul>
      <form onSubmit={post}>
        <label htmlFor="comment">Comment (mention with @handle)</label>
        <input id="comment" list="handles" required value={text} onChange={(e) => setText(e.target.value)} />
        <datalist id="handles">
          {members.map((m) => (
            <option key={m.userId} value={`${text}@${(m as { handle?: string }).handle ?? ""} `} />
          ))}
        </datalist>{" "}
        <button type="submit">Comment</button>
      </form>
      <ProblemNote problem={problem} />
    </section>
  );
}
