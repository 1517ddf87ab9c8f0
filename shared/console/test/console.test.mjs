// The console in headless Chromium (Debian's, through playwright-core) against a local stack
// (TENANTRY_URL) serving it at CONSOLE_URL (the runner's /app, or another origin its CORS allows):
// the walk-through of the README's "Web console" (two users: invite, accept, a board and its
// If-Match conflict, comments, a thumbnail, a cited chat answer, the assignee's notification,
// the audit log, and a stranger's "Not found"). Screenshots go to SCREENSHOTS (a directory).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";

const CONSOLE = process.env.CONSOLE_URL ?? "http://127.0.0.1:4173/app/";
const SHOTS = process.env.SCREENSHOTS ?? "dist-screenshots";
mkdirSync(SHOTS, { recursive: true });

/** What the browser refused under the console's Content-Security-Policy, from every page. */
const violations = [];
function watched(page) {
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  return page;
}

test("two users walk through the console: invite, accept, board, files, chat, notification; a stranger sees nothing", async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
  try {
    const page = watched(await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage());
    const email = `ada-${Date.now()}@example.com`;
    const bob = `bob-${Date.now()}@example.com`;
    const first = await page.goto(CONSOLE);
    if (process.env.TENANTRY_URL && CONSOLE.startsWith(process.env.TENANTRY_URL)) {
      assert.match(first.headers()["content-security-policy"] ?? "", /script-src 'self'/, "the runner serves it under its Content-Security-Policy");
    }
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("CorrectHorse42x");
    await page.getByRole("button", { name: "Create an account" }).click();
    await page.getByLabel("Name").fill("Analytical Engines");
    await page.screenshot({ path: `${SHOTS}/1-signed-in.png`, fullPage: true });
    await page.getByRole("button", { name: "Create", exact: true }).click();
    // (The audit log's table names the owner too, once its entries arrive: look in the members'.)
    await page.getByRole("region", { name: "Members" }).getByRole("cell", { name: email, exact: true }).waitFor();
    assert.equal(await page.getByLabel(`Role of ${email}`).inputValue(), "owner");
    await page.getByLabel("Email to invite").fill(bob);
    await page.getByRole("button", { name: "Invite" }).click();
    await page.getByText(`${bob} (member)`).waitFor();
    await page.screenshot({ path: `${SHOTS}/2-invited.png`, fullPage: true });
    // The last owner cannot leave: the API's problem is shown, not swallowed.
    await page.getByRole("button", { name: "Remove" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    assert.match(await alert.innerText(), /owner/i);
    await page.screenshot({ path: `${SHOTS}/3-refused.png`, fullPage: true });

    // The board: a project, a task moved to another column.
    await page.getByLabel("New project").fill("Difference Engine");
    await page.getByRole("button", { name: "Add project" }).click();
    await page.getByLabel("New task").fill("Cast the gears");
    await page.getByRole("button", { name: "Add task" }).click();
    await page.getByRole("region", { name: "To do" }).getByText("Cast the gears", { exact: true }).waitFor();
    await page.getByLabel("Status of Cast the gears").selectOption("in_progress");
    await page.getByRole("region", { name: "In progress" }).getByText("Cast the gears", { exact: true }).waitFor();
    // The task's detail: a comment.
    await page.getByRole("button", { name: "Cast the gears", exact: true }).click();
    await page.getByLabel("Comment (mention with @handle)").fill("Brass, not iron.");
    await page.getByRole("button", { name: "Comment", exact: true }).click();
    await page.getByRole("list", { name: "Comments" }).getByText("Brass, not iron.").waitFor();
    await page.getByRole("button", { name: "Close" }).click();

    // Someone else changes the task meanwhile (here, through the API with the same user's
    // token): the console's next move carries the version it showed in If-Match, is refused
    // with 412, and the refusal is shown.
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem("tenantry.session")).idToken);
    const call = async (method, path, body) => {
      const res = await fetch(`${process.env.TENANTRY_URL}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body ? JSON.stringify(body) : undefined,
      });
      assert.ok(res.ok, `${method} ${path}: ${res.status}`);
      return res.json();
    };
    const org = (await call("GET", "/orgs")).items.find((o) => o.name === "Analytical Engines");
    const project = (await call("GET", `/orgs/${org.id}/projects`)).items[0];
    const tasks = `/orgs/${org.id}/projects/${project.id}/tasks`;
    const task = (await call("GET", `${tasks}?status=in_progress`)).items[0];
    await call("PATCH", `${tasks}/${task.id}`, { title: "Cast the gears" , priority: "high" });
    await page.getByLabel("Status of Cast the gears").selectOption("done");
    const conflict = page.getByRole("alert");
    await conflict.filter({ hasText: /changed/i }).waitFor();
    await page.screenshot({ path: `${SHOTS}/4-board.png`, fullPage: true });

    // A PNG uploaded straight to S3, processed, and its thumbnail shown.
    const png = `${SHOTS}/gears.png`;
    execFileSync("python3", [new URL("../../local-runner/demo_files.py", import.meta.url).pathname, "png", "320", "200", png]);
    await page.getByLabel("Upload a file").setInputFiles(png);
    const thumbnail = page.getByRole("img", { name: "Thumbnail of gears.png" });
    await thumbnail.waitFor({ timeout: 60_000 });
    await page.waitForFunction(() => document.querySelector('img[alt="Thumbnail of gears.png"]')?.naturalWidth > 0);
    assert.match(await page.getByRole("list", { name: "Files" }).innerText(), /gears\.png — ready/);
    await thumbnail.scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${SHOTS}/4b-thumbnail.png` });

    // A PDF uploaded and indexed; the chat's streamed answer cites it.
    const pdf = `${SHOTS}/tables.pdf`;
    execFileSync("python3", [new URL("../../local-runner/demo_files.py", import.meta.url).pathname, "pdf", pdf, "Table of squares: 1 4 9 16 25", "Table of cubes: 1 8 27 64 125"]);
    await page.getByLabel("Upload a file").setInputFiles(pdf);
    await page.getByRole("list", { name: "Files" }).getByText(/tables\.pdf — ready/).waitFor({ timeout: 60_000 });
    // The file.processed event reaches the chat's ingest queue through the stream: ask until a
    // citation of the document comes back.
    const citations = page.getByRole("list", { name: "Citations" });
    for (let i = 0; i < 20 && (await citations.getByRole("link", { name: /tables\.pdf/ }).count()) === 0; i++) {
      await page.getByLabel("Ask about your organization's work and documents").fill("What is in the table of cubes?");
      await page.getByRole("button", { name: "Ask", exact: true }).click();
      await page.getByRole("button", { name: "Ask", exact: true }).and(page.locator(":enabled")).waitFor();
      if ((await citations.count()) === 0) await page.waitForTimeout(1000);
    }
    assert.ok((await citations.getByRole("link", { name: /tables\.pdf/ }).count()) > 0, "the answer cites tables.pdf");
    assert.ok((await page.getByLabel("Answer").innerText()).length > 0);
    await citations.scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${SHOTS}/4c-chat-citation.png` });

    // Usage against the plan, and the audit log for the owner.
    await page.reload();
    await page.getByRole("meter", { name: "Seats" }).waitFor();
    await page.getByRole("heading", { name: "Audit log" }).waitFor();
    await page.getByRole("cell", { name: /org\.created|invitation/ }).first().waitFor({ timeout: 30_000 });

    // Bob follows the mail's link in a browser of his own, signs up and accepts.
    const mail = await (await fetch(`${process.env.TENANTRY_URL}/local/mail?to=${encodeURIComponent(bob)}`)).json();
    const link = /(https?:\/\/[^\s"<>\\]+\/invites\/accept#token=[A-Za-z0-9_.~-]+)/.exec(JSON.stringify(mail.items));
    assert.ok(link, "the invitation mail has its link");
    assert.ok(link[1].startsWith(CONSOLE), `the link opens the console: ${link[1]}`);
    const bobs = watched(await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage());
    await bobs.goto(link[1]);
    await bobs.getByLabel("Email").fill(bob);
    await bobs.getByLabel("Password").fill("CorrectHorse42x");
    await bobs.getByRole("button", { name: "Create an account" }).click();
    await bobs.getByRole("button", { name: "Accept invitation" }).click();
    await bobs.getByRole("option", { name: "Analytical Engines (member)" }).waitFor({ state: "attached" });

    // Ada assigns the task to Bob; Bob's inbox shows it.
    await page.reload();
    await page.getByLabel("Assignee of Cast the gears").selectOption({ label: bob });
    const inbox = bobs.getByRole("list", { name: "Inbox" });
    // The inbox item and the unread count are written apart: wait for both.
    const heading = bobs.getByRole("heading", { name: /Notifications/ });
    for (let i = 0; i < 40 && ((await inbox.getByRole("listitem").count()) === 0 || !/\(1 unread\)/.test(await heading.innerText())); i++) {
      await bobs.waitForTimeout(500);
      await bobs.getByRole("button", { name: "Refresh" }).click();
    }
    assert.match(await inbox.innerText(), /Cast the gears/);
    assert.match(await heading.innerText(), /\(1 unread\)/);
    await bobs.screenshot({ path: `${SHOTS}/5-assignee-notified.png`, fullPage: true });
    assert.equal(await bobs.getByRole("heading", { name: "Audit log" }).count(), 0, "a member sees no audit log");

    // A stranger's deep link to Ada's org shows the API's "not found", and nothing of the org.
    const stranger = watched(await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage());
    await stranger.goto(`${CONSOLE}orgs/${org.id}`);
    await stranger.getByLabel("Email").fill(`eve-${Date.now()}@example.com`);
    await stranger.getByLabel("Password").fill("CorrectHorse42x");
    await stranger.getByRole("button", { name: "Create an account" }).click();
    const refusal = stranger.getByRole("alert").first();
    await refusal.waitFor();
    assert.match(await refusal.innerText(), /not found/i);
    assert.equal(await stranger.getByText(email).count(), 0, "nothing of the org is shown");
    await stranger.screenshot({ path: `${SHOTS}/6-stranger-not-found.png`, fullPage: true });
    assert.deepEqual(violations, [], "nothing the console does breaks its Content-Security-Policy");
  } finally {
    await browser.close();
  }
});
