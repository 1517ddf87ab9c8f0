// The console in headless Chromium (Debian's, through playwright-core) against a local stack
// (TENANTRY_URL) whose CORS policy allows the console's origin (CONSOLE_URL, `vite preview`):
// sign up, create an org, see yourself as its owner, invite someone, see the invitation, and
// a refusal shown as the API's problem. Screenshots go to SCREENSHOTS (a directory).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const CONSOLE = process.env.CONSOLE_URL ?? "http://127.0.0.1:4173/app/";
const SHOTS = process.env.SCREENSHOTS ?? "dist-screenshots";
mkdirSync(SHOTS, { recursive: true });

test("an owner signs up, creates an org and invites from the console", async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
  try {
    const page = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
    const email = `ada-${Date.now()}@example.com`;
    await page.goto(CONSOLE);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("CorrectHorse42x");
    await page.getByRole("button", { name: "Create an account" }).click();
    await page.getByLabel("Name").fill("Analytical Engines");
    await page.screenshot({ path: `${SHOTS}/1-signed-in.png`, fullPage: true });
    await page.getByRole("button", { name: "Create", exact: true }).click();
    await page.getByRole("cell", { name: email, exact: true }).waitFor();
    assert.equal(await page.getByLabel(`Role of ${email}`).inputValue(), "owner");
    await page.getByLabel("Email to invite").fill("bob@example.com");
    await page.getByRole("button", { name: "Invite" }).click();
    await page.getByText("bob@example.com (member)").waitFor();
    await page.screenshot({ path: `${SHOTS}/2-invited.png`, fullPage: true });
    // The last owner cannot leave: the API's problem is shown, not swallowed.
    await page.getByRole("button", { name: "Remove" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    assert.match(await alert.innerText(), /owner/i);
    await page.screenshot({ path: `${SHOTS}/3-refused.png`, fullPage: true });
  } finally {
    await browser.close();
  }
});
