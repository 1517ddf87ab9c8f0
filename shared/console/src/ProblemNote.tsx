// A refusal as the console shows it: the API's problem (title and detail), or a message, in a
// live region that screen readers announce.
import { isProblem } from "@tenantry/client";

export function ProblemNote({ problem }: { problem: unknown }) {
  if (!problem) return null;
  const text = isProblem(problem) ? `${problem.title}${problem.detail ? `: ${problem.detail}` : ""}` : String(problem);
  return (
    <p role="alert" className="problem">
      {text}
    </p>
  );
}
