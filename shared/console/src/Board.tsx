// Projects and their board: a column per status, cards dragged between columns (or moved with
// the card's own control, for the keyboard). A move is a PATCH with If-Match the card's version:
// when someone changed the task meanwhile, the API's 412 is shown and the board reloaded, never
// swallowed.
import { useCallback, useEffect, useState, type DragEvent, type FormEvent } from "react";
import { type components } from "@tenantry/client";
import { ProblemNote } from "./ProblemNote";
import { apiFor, type Session } from "./session";
import { TaskDetail } from "./TaskDetail";

type Task = components["schemas"]["Task"];
type Project = components["schemas"]["Project"];
type Status = components["schemas"]["TaskStatus"];
const STATUSES: Status[] = ["todo", "in_progress", "blocked", "done", "canceled"];
const LABELS: Record<Status, string> = { todo: "To do", in_progress: "In progress", blocked: "Blocked", done: "Done", canceled: "Canceled" };

export function Projects({ session, orgId }: { session: Session; orgId: string }) {
  const api = apiFor(session);
  const [projects, setProjects] = useState<Project[]>([]);
  const [projectId, setProjectId] = useState("");
  const [name, setName] = useState("");
  const [problem, setProblem] = useState<unknown>(null);
  const reload = useCallback(async () => {
    const { data, error } = await api.GET("/orgs/{orgId}/projects", { params: { path: { orgId } } });
    if (error) return setProblem(error);
    setProjects(data.items);
  }, [orgId, session.idToken]);
  useEffect(() => {
    void reload();
  }, [reload]);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    const { data, error } = await api.POST("/orgs/{orgId}/projects", { params: { path: { orgId } }, body: { name } as never });
    setProblem(error ?? null);
    if (data) {
      setName("");
      await reload();
      setProjectId(data.id);
    }
  };
  const current = projectId || projects[0]?.id || "";
  return (
    <section aria-labelledby="projects-title">
      <h2 id="projects-title">Projects</h2>
      {projects.length > 0 && (
        <>
          <label htmlFor="project">Project</label>
          <select id="project" value={current} onChange={(e) => setProjectId(e.target.value)}>
            {projects.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </>
      )}
      <form onSubmit={create}>
        <label htmlFor="project-name">New project</label>
        <input id="project-name" required value={name} onChange={(e) => setName(e.target.value)} /> <button type="submit">Add project</button>
      </form>
      <ProblemNote problem={problem} />
      {current && <Board session={session} orgId={orgId} projectId={current} />}
    </section>
  );
}

export function Board({ session, orgId, projectId }: { session: Session; orgId: string; projectId: string }) {
  const api = apiFor(session);
  const [columns, setColumns] = useState<Record<string, Task[]>>({});
  const [title, setTitle] = useState("");
  const [problem, setProblem] = useState<unknown>(null);
  const [members, setMembers] = useState<components["schemas"]["Member"][]>([]);
  const [open, setOpen] = useState<string | null>(null);
  const path = { orgId, projectId };
  useEffect(() => {
    void api.GET("/orgs/{orgId}/members", { params: { path: { orgId } } }).then(({ data }) => setMembers(data?.items ?? []));
  }, [orgId, session.idToken]);
  const reload = useCallback(async () => {
    const out: Record<string, Task[]> = {};
    for (const status of STATUSES) {
      const { data } = await api.GET("/orgs/{orgId}/projects/{projectId}/tasks", { params: { path, query: { status } } });
      out[status] = data?.items ?? [];
    }
    setColumns(out);
  }, [orgId, projectId, session.idToken]);
  useEffect(() => {
    void reload();
  }, [reload]);
  const add = async (e: FormEvent) => {
    e.preventDefault();
    const { error } = await api.POST("/orgs/{orgId}/projects/{projectId}/tasks", { params: { path }, body: { title } as never });
    setProblem(error ?? null);
    if (!error) setTitle("");
    await reload();
  };
  const change = async (task: Task, body: Record<string, unknown>) => {
    const { error } = await api.PATCH("/orgs/{orgId}/projects/{projectId}/tasks/{taskId}", {
      params: { path: { ...path, taskId: task.id } },
      headers: { "If-Match": `"${task.version}"` },
      body: body as never,
    });
    setProblem(error ?? null);
    await reload();
  };
  const move = async (task: Task, status: Status) => {
    if (task.status !== status) await change(task, { status });
  };
  const drop = (status: Status) => (e: DragEvent) => {
    e.preventDefault();
    const id = e.dataTransfer.getData("text/plain");
    const task = Object.values(columns).flat().find((t) => t.id === id);
    if (task) void move(task, status);
  };
  return (
    <div aria-label="Board">
      <form onSubmit={add}>
        <label htmlFor="task-title">New task</label>
        <input id="task-title" required value={title} onChange={(e) => setTitle(e.target.value)} /> <button type="submit">Add task</button>
      </form>
      <ProblemNote problem={problem} />
      {open && (() => {
        const task = Object.values(columns).flat().find((t) => t.id === open);
        return task ? <TaskDetail session={session} orgId={orgId} task={task} members={members} onClose={() => setOpen(null)} /> : null;
      })()}
      <div className="board">
        {STATUSES.map((status) => (
          <section key={status} className="column" aria-label={LABELS[status]} onDragOver={(e) => e.preventDefault()} onDrop={drop(status)}>
            <h3>
              {LABELS[status]} ({columns[status]?.length ?? 0})
            </h3>
            {(columns[status] ?? []).map((t) => (
              <article key={t.id} className="card" draggable onDragStart={(e) => e.dataTransfer.setData("text/plain", t.id)} aria-label={t.title}>
                <p>
                  <button className="link" onClick={() => setOpen(t.id)}>
                    {t.title}
                  </button>
                </p>
                <label className="visually-hidden" htmlFor={`move-${t.id}`}>
                  Status of {t.title}
                </label>
                <select id={`move-${t.id}`} value={t.status} onChange={(e) => void move(t, e.target.value as Status)}>
                  {STATUSES.map((s) => (
                    <option key={s} value={s}>
                      {LABELS[s]}
                    </option>
                  ))}
                </select>
                <label className="visually-hidden" htmlFor={`assignee-${t.id}`}>
                  Assignee of {t.title}
                </label>
                <select id={`assignee-${t.id}`} value={t.assignee ?? ""} onChange={(e) => void change(t, { assignee: e.target.value || null })}>
                  <option value="">Unassigned</option>
                  {members.map((m) => (
                    <option key={m.userId} value={m.userId}>
                      {m.email}
                    </option>
                  ))}
                </select>
              </article>
            ))}
          </section>
        ))}
      </div>
    </div>
  );
}
