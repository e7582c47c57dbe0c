import { test, expect, Page, BrowserContext } from "@playwright/test";
import { hydrated, register, uniqueEmail } from "./helpers";
import { startServer, stopServer, ServerHandle } from "../server";
import { startMockModel, MockModel } from "../mock-model";

// Live replies in Chromium, against release servers whose model is a scripted
// OpenAI-compatible server streaming 50 ms apart.
const base = Number(process.env.E2E_PORT ?? 3100);
let model: MockModel;
let a: ServerHandle;
let b: ServerHandle;

test.beforeAll(async () => {
  model = await startMockModel();
  const env = { OPENAI_API_KEY: "e2e", OPENAI_BASE_URL: model.baseUrl, MODEL_MAX_RETRIES: "0" };
  a = await startServer(base + 20, env);
  b = await startServer(base + 21, env);
});

test.afterAll(async () => {
  await stopServer(a);
  await stopServer(b);
  await model.close();
});

async function send(page: Page, text: string) {
  await page.getByPlaceholder("Type a message...").fill(text);
  await page.getByRole("button", { name: "Send", exact: true }).click();
}

async function signedIn(context: BrowserContext, server: ServerHandle): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${server.url}/register`);
  await hydrated(page);
  await page.getByLabel("Email").fill(uniqueEmail("live"));
  await page.getByLabel("Password").fill("correct horse 1");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/chat/);
  return page;
}

/** Opens a new conversation and sends `text` from it; returns its URL. */
async function startTurn(page: Page, server: ServerHandle, text: string): Promise<string> {
  await page.goto(`${server.url}/chat`);
  await hydrated(page);
  await send(page, text);
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
  return page.url();
}

function story(n: number): string {
  return Array.from({ length: n }, (_, i) => `word${i} `).join("").trim();
}

test("the answer grows as the model writes it", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await signedIn(context, a);
  await startTurn(page, a, "story please");
  const streaming = page.getByTestId("streaming");
  const seen = new Set<string>();
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const text = (await streaming.textContent({ timeout: 100 }).catch(() => null)) ?? "";
    if (text.includes("word")) seen.add(text);
    if ((await page.getByTestId("assistant-message").count()) > 0) break;
    await page.waitForTimeout(40);
  }
  expect(seen.size).toBeGreaterThanOrEqual(3);
  await expect(page.getByTestId("assistant-message").last()).toContainText(story(40));
  await expect(streaming).toBeHidden();
  await context.close();
});

test("Stop keeps the partial answer, marked stopped, and closes the model's connection", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await signedIn(context, a);
  const closedBefore = model.closed();
  await startTurn(page, a, "long story");
  await expect(page.getByTestId("streaming")).toContainText("word5 ");
  await page.getByTestId("stop").click();
  const reply = page.getByTestId("assistant-message").last();
  await expect(reply).toHaveAttribute("data-status", "stopped");
  await expect(reply).toContainText("word5");
  await expect(reply).not.toContainText("word199");
  await expect(reply.getByRole("button", { name: "Retry" })).toBeVisible();
  await expect(page.getByTestId("typing")).toBeHidden();
  await expect.poll(() => model.closed()).toBeGreaterThan(closedBefore);
  // It stays stopped after a reload.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("assistant-message").last()).toHaveAttribute("data-status", "stopped");
  await context.close();
});

test("a reload and a second tab mid-turn show the answer so far, then live", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await signedIn(context, a);
  const url = await startTurn(page, a, "long story");
  await expect(page.getByTestId("streaming")).toContainText("word10 ");

  const second = await context.newPage();
  await second.goto(url);
  await hydrated(second);
  // The partial text arrives at once, then keeps growing.
  await expect(second.getByTestId("streaming")).toContainText("word10 ");
  const before = ((await second.getByTestId("streaming").textContent()) ?? "").length;
  await expect
    .poll(async () => ((await second.getByTestId("streaming").textContent()) ?? "").length)
    .toBeGreaterThan(before);

  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("streaming")).toContainText("word20 ");
  await expect(page.getByTestId("assistant-message").last()).toContainText(story(200), { timeout: 20_000 });
  await expect(second.getByTestId("assistant-message").last()).toContainText(story(200));
  await context.close();
});

test("a tab on another replica watches the turn live", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await signedIn(context, a);
  const url = await startTurn(page, a, "story for the other replica");
  // The session cookie is the host's (ports share it); both replicas share the database.
  const watcher = await context.newPage();
  await watcher.goto(url.replace(a.url, b.url));
  await hydrated(watcher);
  const seen = new Set<string>();
  for (let i = 0; i < 100 && (await watcher.getByTestId("assistant-message").count()) === 0; i++) {
    const text = (await watcher.getByTestId("streaming").textContent({ timeout: 100 }).catch(() => null)) ?? "";
    if (text.includes("word")) seen.add(text);
    await watcher.waitForTimeout(40);
  }
  expect(seen.size).toBeGreaterThanOrEqual(2);
  await expect(watcher.getByTestId("assistant-message").last()).toContainText(story(40));
  await context.close();
});

test("the sidebar keeps every loaded page through sends and an idle wait, with no polling", async ({ browser }) => {
  test.setTimeout(120_000);
  const context = await browser.newContext();
  const page = await signedIn(context, a);
  // 60 conversations, created through the API with the page's session.
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) {
    const res = await page.request.post(`${a.url}/api/chat/conversations`, {
      data: { title: `Conversation ${String(i).padStart(2, "0")}` },
      headers: { origin: a.url },
    });
    expect(res.status()).toBe(201);
    ids.push((await res.json()).id);
  }
  await page.goto(`${a.url}/chat`);
  await hydrated(page);
  const items = page.getByTestId("conversation");
  const list = page.locator(".conversation-scroll");
  for (let i = 0; i < 10 && (await items.count()) < 60; i++) {
    await list.evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await page.waitForTimeout(300);
  }
  await expect(items).toHaveCount(60);

  // An idle tab: no request at all for 30 s (the event stream is already open).
  const requests: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  await page.waitForTimeout(30_000);
  expect(requests).toEqual([]);

  // Three sends elsewhere (the API): the oldest conversation moves to the top, live.
  const oldest = ids[0];
  for (const text of ["hi", "hello", "bye"]) {
    const res = await page.request.post(`${a.url}/api/chat/conversations/${oldest}/messages`, {
      data: { content: text },
      headers: { origin: a.url },
    });
    expect(res.status()).toBe(201);
  }
  await expect(items.first()).toContainText("Conversation 00");
  await expect(items).toHaveCount(60);
  const titles = await page.locator(".conversation-title").allTextContents();
  expect(new Set(titles).size).toBe(60);
  await context.close();
});
