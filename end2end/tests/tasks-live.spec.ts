// Tasks live: a tab's task panel follows every change of the user's tasks, whichever interface
// made it (REST, server functions, MCP, the chat agent in another tab), without a reload; the
// event stream is opened with a single-use ticket, never with the token in a URL; logging out
// closes the session's open streams at once.
import { test, expect, Locator, Page, Response as PageResponse } from "@playwright/test";
import { execFile } from "node:child_process";
import type { Server } from "node:http";
import { homedir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { hydrated, register, uniqueEmail } from "./helpers";
import { startServer, stopServer, ServerHandle } from "../server";
import { serveStatic } from "../static-server";

const base = Number(process.env.E2E_PORT ?? 3100);
const password = "correct horse 1";
const root = path.resolve(__dirname, "../..");
// The official MCP Python SDK, installed by scripts/setup.sh --test (as tests/chatkit.rs finds it).
const python =
  process.env.CHATKIT_PYTHON ??
  path.join(process.env.TOOLS_DIR ?? path.join(homedir(), ".cache/chatkit/tools"), "venv/bin/python");
const mcpCall = path.resolve(__dirname, "../mcp-call.py");

// A server of its own (offline assistant) for everything but the CSR build, which is built to
// call the suite's server (scripts/test.sh) and served from the origin that server allows.
let server: ServerHandle;

test.beforeAll(async () => {
  server = await startServer(base + 50);
});

test.afterAll(async () => {
  await stopServer(server);
});

interface Task {
  id: number;
  title: string;
  completed: boolean;
}

function unique(prefix: string): string {
  return `${prefix} ${Date.now() % 1e7}-${Math.floor(Math.random() * 1e6)}`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Resolves when the page's event stream has answered 200 (its headers arrived, so the server
 * has subscribed it). Start it before whatever opens the stream. */
function streamOpened(page: Page, origin?: string): Promise<PageResponse> {
  return page.waitForResponse(
    (res) => {
      const url = new URL(res.url());
      return url.pathname === "/api/chat/events" && res.status() === 200 && (!origin || url.origin === origin);
    },
    { timeout: 20_000 },
  );
}

/** The task whose title is `title` (a string: exactly; a RegExp: matching) in `list`. */
function taskIn(list: Locator, title: string | RegExp): Locator {
  const pattern = typeof title === "string" ? new RegExp(`^\\s*${escapeRegExp(title)}\\s*$`) : title;
  return list.getByTestId("task").filter({ has: list.page().locator(".task-title", { hasText: pattern }) });
}

function panel(page: Page) {
  const aside = page.locator("#task-panel");
  return { root: aside, pending: aside.getByTestId("tasks-pending"), completed: aside.getByTestId("tasks-completed") };
}

/** Marks the page, so a test can prove later that it was never reloaded. */
async function markPage(page: Page): Promise<void> {
  await page.evaluate(() => ((window as any).__notReloaded = true));
}

async function expectNotReloaded(page: Page): Promise<void> {
  expect(await page.evaluate(() => (window as any).__notReloaded)).toBe(true);
}

async function send(page: Page, text: string) {
  await page.getByPlaceholder("Type a message...").fill(text);
  await page.getByRole("button", { name: "Send", exact: true }).click();
}

/** A bearer token of a new session of the user, as any API client gets one. */
async function login(url: string, email: string): Promise<string> {
  const res = await fetch(`${url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const body = await res.text();
  expect(res.status, `login: ${body}`).toBe(200);
  return JSON.parse(body).access_token as string;
}

/** `fetch` with the bearer token; a JSON body when `body` is given. */
function call(url: string, token: string, method: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  return fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function expectStatus(res: Response, status: number, what: string): Promise<string> {
  const text = await res.text();
  expect(res.status, `${what}: ${text}`).toBe(status);
  return text;
}

const rest = {
  async add(url: string, token: string, title: string): Promise<number> {
    const text = await expectStatus(await call(`${url}/api/tasks`, token, "POST", { title }), 201, "POST /api/tasks");
    return (JSON.parse(text) as Task).id;
  },
  async complete(url: string, token: string, id: number): Promise<void> {
    const res = await call(`${url}/api/tasks/${id}/complete`, token, "POST");
    await expectStatus(res, 200, `POST /api/tasks/${id}/complete`);
  },
  async remove(url: string, token: string, id: number): Promise<void> {
    await expectStatus(await call(`${url}/api/tasks/${id}`, token, "DELETE"), 204, `DELETE /api/tasks/${id}`);
  },
};

/** A server function called as any HTTP client would: URL-encoded arguments (Leptos's `PostUrl`,
 * nested fields as `task[title]`), a JSON answer. */
async function sfn(url: string, token: string, name: string, form: string): Promise<Task> {
  const res = await fetch(`${url}/sfn/tasks/${name}`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    },
    body: form,
  });
  return JSON.parse(await expectStatus(res, 200, `POST /sfn/tasks/${name}`)) as Task;
}

const run = promisify(execFile);

/** One MCP tool call through the official Python SDK (end2end/mcp-call.py); its JSON result. */
async function mcp(url: string, token: string, tool: string, args: object): Promise<any> {
  try {
    const { stdout } = await run(python, [mcpCall, `${url}/mcp`, tool, JSON.stringify(args)], {
      env: { ...process.env, MCP_BEARER_TOKEN: token },
      timeout: 60_000,
    });
    return JSON.parse(stdout);
  } catch (err: any) {
    throw new Error(`MCP ${tool} failed (${python} ${mcpCall}): ${err.stderr || err.message}`);
  }
}

/** Opens /chat signed in as a new user, waits until its event stream is open and its task panel
 * has loaded (empty), and marks it; returns the user's email. */
async function openChat(page: Page): Promise<string> {
  const email = uniqueEmail("tasks-live");
  const opened = streamOpened(page);
  await register(page, email, password);
  await hydrated(page);
  await opened;
  const { pending } = panel(page);
  await expect(pending).toBeAttached();
  await expect(pending.getByTestId("task")).toHaveCount(0);
  await markPage(page);
  return email;
}

interface Ops {
  add(title: string): Promise<number>;
  complete(id: number): Promise<void>;
  remove(id: number): Promise<void>;
}

/** Adds, completes and deletes one task through `ops`; the open tab follows each within 1 s of
 * the call's answer. */
async function followsLive(page: Page, title: string, ops: Ops): Promise<void> {
  const { root, pending, completed } = panel(page);
  const id = await ops.add(title);
  await expect(taskIn(pending, title)).toBeVisible({ timeout: 1000 });
  await ops.complete(id);
  await expect(taskIn(completed, title)).toBeVisible({ timeout: 1000 });
  await expect(taskIn(pending, title)).toHaveCount(0, { timeout: 1000 });
  await ops.remove(id);
  await expect(taskIn(root, title)).toHaveCount(0, { timeout: 1000 });
}

test("an open tab follows task changes made through REST, server functions and MCP", async ({ browser }) => {
  const context = await browser.newContext({ baseURL: server.url });
  const page = await context.newPage();
  try {
    const email = await openChat(page);
    // Another client of the same user: a session of its own, with a bearer token.
    const token = await login(server.url, email);
    const url = server.url;

    await test.step("REST /api/tasks", () =>
      followsLive(page, unique("rest task"), {
        add: (title) => rest.add(url, token, title),
        complete: (id) => rest.complete(url, token, id),
        remove: (id) => rest.remove(url, token, id),
      }),
    );

    await test.step("server functions /sfn/tasks/*", () =>
      followsLive(page, unique("sfn task"), {
        add: async (title) => {
          const task = await sfn(url, token, "add", `task[title]=${encodeURIComponent(title)}`);
          expect(task.title).toBe(title);
          return task.id;
        },
        complete: async (id) => {
          expect((await sfn(url, token, "set_completed", `id=${id}&completed=true`)).completed).toBe(true);
        },
        remove: async (id) => {
          expect((await sfn(url, token, "delete", `id=${id}`)).id).toBe(id);
        },
      }),
    );

    await test.step("MCP /mcp (official Python SDK)", () =>
      followsLive(page, unique("mcp task"), {
        add: async (title) => {
          const result = await mcp(url, token, "add_task", { title });
          expect(result).toMatchObject({ status: "created", title });
          return result.task_id as number;
        },
        complete: async (id) => {
          expect(await mcp(url, token, "complete_task", { task_id: id })).toMatchObject({ status: "completed" });
        },
        remove: async (id) => {
          expect(await mcp(url, token, "delete_task", { task_id: id })).toMatchObject({ status: "deleted" });
        },
      }),
    );

    await expectNotReloaded(page);
  } finally {
    await context.close();
  }
});

test("a task the assistant adds in one tab appears in the user's other tab", async ({ browser }) => {
  const context = await browser.newContext({ baseURL: server.url });
  const a = await context.newPage();
  try {
    await openChat(a);
    // Tab B: the same user (the context's session cookie), its stream open.
    const b = await context.newPage();
    const opened = streamOpened(b);
    await b.goto("/chat");
    await hydrated(b);
    await opened;
    await expect(panel(b).pending).toBeAttached();
    await markPage(b);

    // The offline assistant understands "add <title>" (and capitalises the title).
    await send(a, "add buy milk");
    await expect(a.getByTestId("assistant-message").last()).toContainText(/Added task \d+: Buy milk/);
    await expect(taskIn(panel(a).pending, /^\s*buy milk\s*$/i)).toBeVisible();
    await expect(taskIn(panel(b).pending, /^\s*buy milk\s*$/i)).toBeVisible({ timeout: 2000 });
    await expectNotReloaded(b);
  } finally {
    await context.close();
  }
});

/** Fails with the offending URLs if any request URL contains `secret`. */
function expectNoUrlContains(urls: string[], secret: string, what: string): void {
  expect(
    urls.filter((u) => u.includes(secret)),
    `request URLs containing ${what}`,
  ).toEqual([]);
}

function eventsUrls(urls: string[]): URL[] {
  return urls.map((u) => new URL(u)).filter((u) => u.pathname === "/api/chat/events");
}

test.describe("the CSR build on another origin", () => {
  // Built to call the suite's server, which allows this origin (server.ts, cross-origin.spec.ts).
  const api = `http://127.0.0.1:${base}`;
  const csrOrigin = `http://127.0.0.1:${base + 1}`;
  let csr: Server;

  test.beforeAll(async () => {
    csr = await serveStatic(path.join(root, "target/csr"), base + 1);
  });

  test.afterAll(async () => {
    await new Promise((resolve) => csr.close(resolve));
  });

  test("opens its event stream with a ticket: no request URL carries the token", async ({ page }) => {
    const urls: string[] = [];
    page.on("request", (req) => urls.push(req.url()));
    const opened = streamOpened(page, api);
    await page.goto(`${csrOrigin}/register`);
    await hydrated(page);
    await page.getByLabel("Email").fill(uniqueEmail("csr-ticket"));
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page).toHaveURL(new RegExp(`^${csrOrigin}/chat`));
    await opened;
    const token = await page.evaluate(() => localStorage.getItem("chatkit.token"));
    expect(token, "the CSR build keeps its bearer token in localStorage").toBeTruthy();
    await expect(panel(page).pending).toBeAttached();

    // The stream is really open: a task added elsewhere appears live.
    const title = unique("csr live task");
    await rest.add(api, token!, title);
    await expect(taskIn(panel(page).pending, title)).toBeVisible({ timeout: 1000 });

    expectNoUrlContains(urls, token!, "the access token");
    expectNoUrlContains(urls, "access_token=", "access_token=");
    const streams = eventsUrls(urls);
    expect(
      streams.filter((u) => u.origin === api && u.searchParams.has("ticket")),
      `an /api/chat/events?ticket= request among ${streams.map(String).join(", ") || "none"}`,
    ).not.toHaveLength(0);
  });
});

test("the server-rendered page's event stream URL carries no token", async ({ browser }) => {
  const context = await browser.newContext({ baseURL: server.url });
  const page = await context.newPage();
  try {
    const urls: string[] = [];
    page.on("request", (req) => urls.push(req.url()));
    await openChat(page);
    const session = (await context.cookies(server.url)).find((c) => c.name === "chatkit_session")?.value;
    expect(session, "the session cookie holds the token").toBeTruthy();
    const streams = eventsUrls(urls);
    expect(streams).not.toHaveLength(0);
    expectNoUrlContains(urls, session!, "the session token");
    expectNoUrlContains(urls, "access_token", "access_token");
  } finally {
    await context.close();
  }
});

interface Followed {
  status: number;
  events: any[];
  ended: boolean;
  close(): void;
}

/** Opens an event stream as a plain HTTP client and reads it in the background. */
async function follow(url: string): Promise<Followed> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  const seen: Followed = { status: res.status, events: [], ended: false, close: () => controller.abort() };
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    seen.ended = true;
    return seen;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  void (async () => {
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block
            .split("\n")
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).replace(/^ /, ""))
            .join("\n");
          if (!data) continue;
          try {
            seen.events.push(JSON.parse(data));
          } catch {
            seen.events.push({ unparsed: data });
          }
        }
      }
    } catch {
      // the connection went away (or close() aborted it)
    }
    seen.ended = true;
  })();
  return seen;
}

async function statusOf(url: string, init: RequestInit = {}): Promise<number> {
  const res = await fetch(url, init);
  await res.body?.cancel();
  return res.status;
}

test("a stream ticket is single use, and logging out ends the session's stream at once", async () => {
  const url = server.url;
  const email = uniqueEmail("ticket");
  const created = await fetch(`${url}/api/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const token = JSON.parse(await expectStatus(created, 201, "register")).access_token as string;
  expect(token).toBeTruthy();

  // The token in the query is no credential any more.
  expect(await statusOf(`${url}/api/chat/events?access_token=${encodeURIComponent(token)}`)).toBe(401);

  const issued = await call(`${url}/api/chat/events/ticket`, token, "POST");
  const { ticket, expires_in } = JSON.parse(await expectStatus(issued, 201, "POST /api/chat/events/ticket"));
  expect(typeof ticket).toBe("string");
  expect(ticket).not.toContain(token);
  expect(expires_in).toBeGreaterThan(0);
  expect(expires_in).toBeLessThanOrEqual(60);

  const streamUrl = `${url}/api/chat/events?ticket=${encodeURIComponent(ticket)}`;
  const stream = await follow(streamUrl);
  try {
    expect(stream.status).toBe(200);
    // Single use: the same ticket again, while the session is still signed in.
    expect(await statusOf(streamUrl)).toBe(401);

    // The stream is live: a task added now arrives on it.
    const title = unique("ticket task");
    await rest.add(url, token, title);
    await expect
      .poll(() => stream.events.some((e) => e.type === "task" && e.title === title), { timeout: 1000, intervals: [50] })
      .toBe(true);
    expect(stream.ended).toBe(false);

    const logout = await call(`${url}/api/auth/logout`, token, "POST");
    await expectStatus(logout, 204, "POST /api/auth/logout");
    await expect.poll(() => stream.ended, { timeout: 2000, intervals: [50] }).toBe(true);

    expect(await statusOf(streamUrl)).toBe(401);
  } finally {
    stream.close();
  }
});
