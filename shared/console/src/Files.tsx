// Files: uploaded straight to S3 with the presigned form the API issues (progress shown), then
// the processing's outcome (status, the thumbnail of an image) as the API reports it.
import { useCallback, useEffect, useState } from "react";
import type { components } from "@tenantry/client";
import { apiFor, type Session } from "./session";
import { ProblemNote } from "./ProblemNote";

type StoredFile = components["schemas"]["StoredFile"];

/** POSTs the file with the presigned form's fields, reporting progress (0..1). */
function postForm(url: string, fields: Record<string, string>, file: File, progress: (p: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.upload.onprogress = (e) => e.lengthComputable && progress(e.loaded / e.total);
    xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new Error(`the upload was refused (${xhr.status})`)));
    xhr.onerror = () => reject(new Error("the upload failed"));
    xhr.send(form);
  });
}

function Thumbnail({ session, orgId, file }: { session: Session; orgId: string; file: StoredFile }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    // The link itself (a presigned GET, for the <img>): a script's fetch cannot follow the
    // API's redirect to S3 across origins.
    void apiFor(session)
      .GET("/orgs/{orgId}/files/{fileId}/thumbnail", { params: { path: { orgId, fileId: file.id } }, headers: { accept: "application/json" } })
      .then(({ data }) => setSrc(data?.url ?? null));
  }, [file.id]);
  return src ? <img src={src} alt={`Thumbnail of ${file.name}`} width={file.width ? Math.min(160, file.width) : 160} /> : null;
}

export function Files({ session, orgId }: { session: Session; orgId: string }) {
  const api = apiFor(session);
  const [files, setFiles] = useState<StoredFile[]>([]);
  const [progress, setProgress] = useState<number | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const reload = useCallback(async () => {
    const { data } = await api.GET("/orgs/{orgId}/files", { params: { path: { orgId } } });
    setFiles((data?.items as StoredFile[] | undefined) ?? []);
  }, [orgId, session.idToken]);
  useEffect(() => {
    void reload();
  }, [reload]);
  // While a file is still arriving or being processed, look again every second.
  useEffect(() => {
    if (!files.some((f) => f.status === "uploading" || f.status === "processing")) return;
    const t = setTimeout(() => void reload(), 1000);
    return () => clearTimeout(t);
  }, [files, reload]);
  const upload = async (file: File) => {
    setProblem(null);
    const { data, error } = await api.POST("/orgs/{orgId}/files", {
      params: { path: { orgId } },
      body: { name: file.name, size: file.size, contentType: file.type || "application/octet-stream" } as never,
    });
    if (error || !data) return setProblem((error as { detail?: string; title?: string })?.detail ?? "refused");
    const ticket = data as unknown as { upload: { url: string; fields: Record<string, string> } };
    try {
      setProgress(0);
      await postForm(ticket.upload.url, ticket.upload.fields, file, setProgress);
    } catch (e) {
      setProblem(e instanceof Error ? e.message : String(e));
    } finally {
      setProgress(null);
      await reload();
    }
  };
  return (
    <section aria-labelledby="files-title">
      <h2 id="files-title">Files</h2>
      <label htmlFor="file">Upload a file</label>
      <input id="file" type="file" onChange={(e) => e.target.files?.[0] && void upload(e.target.files[0])} />
      {progress !== null && <progress aria-label="Upload progress" max={1} value={progress} />}
      <ProblemNote problem={problem} />
      <ul aria-label="Files">
        {files.map((f) => (
          <li key={f.id}>
            {f.name} — <span>{f.status}</span>
            {f.hasThumbnail && <Thumbnail session={session} orgId={orgId} file={f} />}
          </li>
        ))}
      </ul>
    </section>
  );
}
