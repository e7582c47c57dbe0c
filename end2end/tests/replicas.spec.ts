import { test, expect } from "@playwright/test";
import { spawn, ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { hydrated, uniqueEmail } from "./helpers";
import { startServer, ServerHandle } from "../server";
import { startMockModel, MockModel } from "../mock-model";

// Three release replicas on NATS behind HAProxy (round-robin, no stickiness). A browser tab and
// an API client follow a turn; the replica running it is killed with SIGKILL mid-answer.
const base = Number(process.env.E2E_PORT ?? 3100) + 30;
let model: MockModel;
let replicas: ServerHandle[] = [];
let haproxy: ChildProcess;
const balancer = `http://127.0.0.1:${base + 3}`;

function story(n: number): string {
  return Array.from({ length: n }, (_, i) => `word${i} `).join("").trim();
}

test.beforeAll(async () => {
  model = await startMockModel();
  // A database of their own: the suite's other servers (the offline assistant) must not take
  // the killed replica's turn over.
  const database = process.env.E2E_REPLICAS_DATABASE_URL;
  if (!database) throw new Error("E2E_REPLICAS_DATABASE_URL must be set (scripts/test.sh sets it)");
  const env = {
    DATABASE_URL: database,
    OPENAI_API_KEY: "e2e",
    OPENAI_BASE_URL: model.baseUrl,
    MODEL_MAX_RETRIES: "0",
    TURN_LEASE_SECS: "3",
    TURN_SWEEP_SECS: "1",
    EVENT_BUS_URL: process.env.E2E_NATS_URL ?? "nats://127.0.0.1:4222",
  };
  for (let i = 0; i < 3; i++) replicas.push(await startServer(base + i, env));
  const config = [
    "global",
    "    maxconn 4000",
    "defaults",
    "    mode http",
    "    timeout connect 1s",
    "    timeout client 120s",
    "    timeout server 120s",
    "    timeout tunnel 1h",
    "    option redispatch",
    "    retries 3",
    "frontend web",
    `    bind 127.0.0.1:${base + 3}`,
    "    default_backend replicas",
    "backend replicas",
    "    balance roundrobin",
    "    option httpchk GET /readyz",
    "    default-server inter 250ms fall 2 rise 1",
    ...replicas.map((r, i) => `    server r${i} ${r.url.replace("http://", "")} check`),
    "",
  ].join("\n");
  const file = path.join(tmpdir(), `chatkit-e2e-haproxy-${base}.cfg`);
  writeFileSync(file, config);
  haproxy = spawn(process.env.HAPROXY_BIN ?? "/usr/sbin/haproxy", ["-f", file, "-db"], { stdio: "inherit" });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${balancer}/readyz`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("HAProxy did not come up");
});

test.afterAll(async () => {
  haproxy?.kill("SIGKILL");
  for (const r of replicas) if (r.process.exitCode === null) r.process.kill("SIGKILL");
  await model?.close();
});

/** The replica whose /readyz says it runs a turn. */
async function replicaRunningTheTurn(): Promise<ServerHandle> {
  for (let attempt = 0; attempt < 100; attempt++) {
    for (const replica of replicas) {
      const said = await fetch(`${replica.url}/readyz`).then((r) => r.text()).catch(() => "");
      if (said.includes("turns running: 1")) return replica;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no replica runs the turn");
}

/** An API client's event stream through the balancer, reconnecting with Last-Event-ID. */
function follow(token: string) {
  const seen = { ids: [] as number[], replies: [] as any[], reconnects: 0, done: false };
  (async () => {
    while (!seen.done) {
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (seen.ids.length) headers["last-event-id"] = String(seen.ids[seen.ids.length - 1]);
      try {
        const res = await fetch(`${balancer}/api/chat/events`, { headers });
        const reader = res.body!.getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done || seen.done) break;
          buffer += new TextDecoder().decode(value);
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const id = block.match(/^id:\s*(\d+)/m)?.[1];
            const data = block.match(/^data:\s*(.*)$/m)?.[1];
            if (id) seen.ids.push(Number(id));
            if (!data) continue;
            const event = JSON.parse(data);
            if (event.type === "message" && event.role === "assistant") seen.replies.push(event);
          }
        }
      } catch {
        // its replica died: reconnect through the balancer
      }
      seen.reconnects += 1;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return seen;
}

test("a tab and an API client see the answer once when the turn's replica is killed", async ({ browser }) => {
  test.setTimeout(90_000);
  const context = await browser.newContext();
  const page = await context.newPage();
  const email = uniqueEmail("balanced");
  await page.goto(`${balancer}/register`);
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("correct horse 1");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/chat/);
  await hydrated(page);

  const login = await fetch(`${balancer}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: "correct horse 1" }),
  });
  const token = (await login.json()).access_token;
  const api = follow(token);

  await page.getByPlaceholder("Type a message...").fill("story through the balancer");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await expect(page.getByTestId("streaming")).toContainText("word3 ", { timeout: 15_000 });

  const owner = await replicaRunningTheTurn();
  owner.process.kill("SIGKILL");

  // Another replica takes the turn over (lease 3 s) and answers; both see it once.
  const replies = page.getByTestId("assistant-message");
  await expect(replies.last()).toContainText(story(40), { timeout: 30_000 });
  await expect.poll(() => api.replies.length, { timeout: 15_000 }).toBe(1);
  await page.waitForTimeout(1500);
  await expect(replies).toHaveCount(1);
  expect(api.replies.length).toBe(1);
  expect(api.replies[0].content.trim()).toBe(story(40));
  expect(new Set(api.ids).size).toBe(api.ids.length);
  // The tab is not left showing a failure: the message was sent, and it was answered.
  await expect(page.getByText("Not sent")).toHaveCount(0);
  await expect(page.getByText("Connection lost")).toHaveCount(0);
  await expect(page.getByTestId("user-message")).toHaveCount(1);
  api.done = true;

  // The answer is stored once, and a reload (through the balancer) shows it.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("assistant-message")).toHaveCount(1);
  await expect(page.getByTestId("assistant-message")).toContainText(story(40));
  await context.close();
});
