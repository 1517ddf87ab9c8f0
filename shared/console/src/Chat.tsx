// Chat: the answer streams in as the model writes it; its citations link to the org's documents.
import { useState, type FormEvent } from "react";
import { ProblemError, streamChat, type TurnAnswer } from "@tenantry/client";
import { API_URL, apiFor, freshToken, type Session } from "./session";
import { ProblemNote } from "./ProblemNote";

type Citation = { number: number; title: string; page?: number | null; link: string };

export function Chat({ session, orgId }: { session: Session; orgId: string }) {
  const [conversation, setConversation] = useState<string | null>(null);
  const [question, setQuestion] = useState("");
  const [answer, setAnswer] = useState("");
  const [citations, setCitations] = useState<Citation[]>([]);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const ask = async (e: FormEvent) => {
    e.preventDefault();
    setProblem(null);
    setAnswer("");
    setCitations([]);
    setBusy(true);
    try {
      let id = conversation;
      if (!id) {
        const { data, error } = await apiFor(session).POST("/orgs/{orgId}/conversations", { params: { path: { orgId } }, body: {} as never });
        if (error || !data) throw new Error((error as { detail?: string })?.detail ?? "the conversation could not be started");
        id = (data as { id: string }).id;
        setConversation(id);
      }
      for await (const event of streamChat({ baseUrl: API_URL, token: () => freshToken(session) }, orgId, id, question)) {
        if (event.event === "delta") setAnswer((a) => a + event.data.text);
        if (event.event === "done") {
          const turn = event.data as TurnAnswer & { answer?: { content?: string; citations?: Citation[] } };
          setAnswer(turn.answer?.content ?? "");
          setCitations(turn.answer?.citations ?? []);
        }
        if (event.event === "error") setProblem(event.data.detail ?? event.data.title);
      }
      setQuestion("");
    } catch (err) {
      setProblem(err instanceof ProblemError ? (err.problem.detail ?? err.problem.title) : err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="chat-title">
      <h2 id="chat-title">Chat</h2>
      <form onSubmit={ask}>
        <label htmlFor="question">Ask about your organization's work and documents</label>
        <input id="question" required value={question} onChange={(e) => setQuestion(e.target.value)} />{" "}
        <button type="submit" disabled={busy}>
          Ask
        </button>
      </form>
      <div aria-live="polite" aria-label="Answer">
        {answer && <p>{answer}</p>}
      </div>
      {citations.length > 0 && (
        <ol aria-label="Citations">
          {citations.map((c) => (
            <li key={c.number}>
              <a href={c.link.startsWith("/") ? `${API_URL}${c.link}` : c.link}>
                [{c.number}] {c.title}
                {c.page ? `, page ${c.page}` : ""}
              </a>
            </li>
          ))}
        </ol>
      )}
      <ProblemNote problem={problem} />
    </section>
  );
}
