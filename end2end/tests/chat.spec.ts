import { test, expect, Page } from "@playwright/test";
import { hydrated, register, uniqueEmail } from "./helpers";
import { startServer, stopServer } from "../server";

async function send(page: Page, text: string) {
  const box = page.getByPlaceholder("Type a message...");
  await box.fill(text);
  await page.getByRole("button", { name: "Send", exact: true }).click();
}

/** Starts a conversation from the empty state and waits for the reply. */
async function startConversation(page: Page, text: string) {
  await page.goto("/chat");
  await hydrated(page);
  await send(page, text);
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
  await expect(page.getByTestId("assistant-message").last()).toBeVisible();
}

test("a new user adds a task by chatting, and it persists", async ({ browser }) => {
  // Its own server, whose offline assistant pauses 1.5 s before each answer, so the typing
  // indicator and the "Using add_task…" step can be watched as a user would see them.
  const server = await startServer(Number(process.env.E2E_PORT ?? 3100) + 9, { OFFLINE_THINK_MS: "1500" });
  const context = await browser.newContext({ baseURL: server.url });
  const page = await context.newPage();
  try {
    const email = uniqueEmail("first");
    await register(page, email);
    await expect(page.getByRole("heading", { name: "What needs doing?" })).toBeVisible();
    await expect(page.getByText("Offline assistant")).toBeVisible();

    await send(page, "Add a task to buy groceries");
    await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
    const typing = page.getByTestId("typing");
    await expect(typing).toContainText("Assistant is working…");
    await expect(typing).toContainText("Using add_task…");
    const reply = page.getByTestId("assistant-message").last();
    await expect(reply).toContainText("Added task 1: Buy groceries");
    await expect(typing).toBeHidden();
    const tool = reply.getByTestId("tool-call");
    await expect(tool).toContainText("add_task");
    await expect(tool).toContainText("done");
    await tool.locator("summary").click();
    await expect(tool).toContainText('"title": "Buy groceries"');
    await expect(tool).toContainText('"status": "created"');
    await expect(page.getByTestId("tasks-pending")).toContainText("Buy groceries");

    // Another tab on the conversation follows the assistant's progress too.
    const watcher = await context.newPage();
    await watcher.goto(page.url());
    await hydrated(watcher);
    await send(page, "remember to call mum");
    await expect(watcher.getByTestId("typing")).toContainText("Using add_task…");
    await expect(watcher.getByTestId("assistant-message").last()).toContainText("Call mum");
    await expect(watcher.getByTestId("typing")).toBeHidden();
    await watcher.close();

    await page.reload();
    await hydrated(page);
    await expect(page.getByTestId("user-message").first()).toContainText("Add a task to buy groceries");
    await expect(page.getByTestId("assistant-message").first()).toContainText("Added task 1");
    await expect(page.getByTestId("tasks-pending")).toContainText("Buy groceries");

    await page.getByRole("button", { name: "Log out" }).click();
    await expect(page).toHaveURL(/\/login/);
    await hydrated(page);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("correct horse 1");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL(/\/chat/);
    await page.getByTestId("conversation").first().getByRole("link").click();
    await expect(page.getByTestId("assistant-message").first()).toContainText("Added task 1");

    // Ticking the task off in the panel moves it to Completed.
    await page.getByTestId("tasks-pending").getByRole("checkbox").first().check();
    await expect(page.getByTestId("tasks-completed")).toContainText("Buy groceries");
  } finally {
    await context.close();
    await stopServer(server);
  }
});

test("several conversations: switch, rename, delete, ordered by activity", async ({ page }) => {
  await register(page, uniqueEmail("multi"));
  await startConversation(page, "add alpha task");
  await startConversation(page, "add beta task");
  await startConversation(page, "add gamma task");
  const items = page.getByTestId("conversation");
  await expect(items).toHaveCount(3);
  await expect(items.nth(0)).toContainText("add gamma task");
  await expect(items.nth(2)).toContainText("add alpha task");

  // Switch to the oldest and write there: it moves to the top.
  await items.nth(2).getByRole("link").click();
  await expect(page.getByTestId("user-message").first()).toContainText("add alpha task");
  await expect(items.nth(2)).toHaveClass(/active/);
  await send(page, "show my tasks");
  await expect(page.getByTestId("assistant-message").last()).toContainText("You have 3 tasks");
  await expect(items.nth(0)).toContainText("add alpha task");
  await expect(items.nth(0)).toHaveClass(/active/);

  // Rename inline: Escape cancels, Enter saves.
  await items.nth(1).getByRole("button", { name: /^Rename/ }).click();
  await page.getByLabel("Conversation title").fill("Never saved");
  await page.getByLabel("Conversation title").press("Escape");
  await expect(items.nth(1)).toContainText("add gamma task");
  await items.nth(1).getByRole("button", { name: /^Rename/ }).click();
  await page.getByLabel("Conversation title").fill("Gamma plans");
  await page.getByLabel("Conversation title").press("Enter");
  await expect(items.nth(1)).toContainText("Gamma plans");

  // Delete with confirmation.
  await items.nth(2).getByRole("button", { name: /^Delete/ }).click();
  await page.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(items).toHaveCount(2);
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("conversation")).toHaveCount(2);
  await expect(page.getByTestId("conversation-list")).not.toContainText("add beta task");
  await expect(page.getByTestId("conversation-list")).toContainText("Gamma plans");
});

test("a message sent in one tab appears in another without reload", async ({ browser }) => {
  const context = await browser.newContext();
  const first = await context.newPage();
  await register(first, uniqueEmail("tabs"));
  await startConversation(first, "add shared task");
  const url = first.url();
  const second = await context.newPage();
  await second.goto(url);
  await hydrated(second);
  await expect(second.getByTestId("assistant-message")).toHaveCount(1);

  await send(first, "remember to water the plants");
  await expect(first.getByTestId("assistant-message")).toHaveCount(2);
  await expect(second.getByTestId("user-message").last()).toContainText("remember to water the plants", { timeout: 8000 });
  await expect(second.getByTestId("assistant-message").last()).toContainText("Water the plants", { timeout: 8000 });
  await context.close();
});

test("the chat never blanks while the sidebar and tasks refresh", async ({ page }) => {
  await register(page, uniqueEmail("steady"));
  await startConversation(page, "add steady task");
  // Count removals of the thread: a suspense boundary falling back would remove it.
  await page.evaluate(() => {
    const w = window as any;
    w.__threadRemoved = 0;
    new MutationObserver((records) => {
      for (const record of records)
        for (const node of record.removedNodes)
          if (node instanceof Element && (node.matches(".thread") || node.querySelector(".thread"))) w.__threadRemoved += 1;
    }).observe(document.body, { childList: true, subtree: true });
  });
  const box = page.getByPlaceholder("Type a message...");
  for (let i = 1; i <= 3; i++) {
    await send(page, `add steady item ${i}`);
    await expect(page.getByTestId("assistant-message")).toHaveCount(i + 1);
  }
  // A draft typed now survives the sidebar's periodic refresh (every 5 s).
  await box.fill("a draft in progress");
  await page.waitForTimeout(5500);
  await expect(box).toHaveValue("a draft in progress");
  expect(await page.evaluate(() => (window as any).__threadRemoved)).toBe(0);
});

test("markdown renders, and no XSS payload ever executes", async ({ page }) => {
  let dialogs = 0;
  page.on("dialog", async (dialog) => {
    dialogs += 1;
    await dialog.dismiss();
  });
  await register(page, uniqueEmail("md"));
  await startConversation(page, "add first item");
  await send(page, "add second item");
  await send(page, "show my tasks");
  const table = page.getByTestId("assistant-message").last().locator("table");
  await expect(table).toBeVisible();
  await expect(table.locator("td").filter({ hasText: "Second item" })).toHaveCount(1);
  // Words it does not understand get the short list of examples (a list and a code block).
  await send(page, "hello there");
  const help = page.getByTestId("assistant-message").last();
  await expect(help.locator("ul li").first()).toBeVisible();
  await expect(help.locator(".code-block pre code")).toContainText("add call the dentist");
  await expect(help.getByRole("button", { name: "Copy code" })).toBeVisible();

  const corpus = [
    "<script>window.__xss = 1; alert(1)</script>",
    "add <img src=x onerror=\"window.__xss=1;alert(1)\">",
    "add [click me](javascript:window.__xss=1)",
    "add <svg onload=\"window.__xss=1\"></svg>",
    "add [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "add ![pic](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "add <a href=\"javascript:alert(1)\">x</a>",
  ];
  for (const payload of corpus) {
    await send(page, payload);
    await expect(page.getByTestId("assistant-message").last()).toContainText(/Added task|I'm the offline assistant/);
  }
  await page.reload();
  await hydrated(page);
  await page.waitForTimeout(500);
  expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  expect(dialogs).toBe(0);
  const thread = page.locator(".thread");
  await expect(thread.locator("script")).toHaveCount(0);
  await expect(thread.locator("img")).toHaveCount(0);
  await expect(thread.locator("svg")).toHaveCount(0);
  await expect(thread.locator('a[href^="javascript:"], a[href^="data:"]')).toHaveCount(0);
  // The raw HTML is shown as text.
  await expect(page.getByTestId("user-message").filter({ hasText: "<script>window.__xss" })).toHaveCount(1);
});

test("composer: limit, Enter and Shift+Enter", async ({ page }) => {
  await register(page, uniqueEmail("composer"));
  await startConversation(page, "add composer task");
  const box = page.getByPlaceholder("Type a message...");
  const sendButton = page.getByRole("button", { name: "Send", exact: true });
  await expect(sendButton).toBeDisabled();
  await box.fill("x".repeat(10_001));
  await expect(page.locator("#composer-counter")).toHaveText("10001 / 10000");
  await expect(sendButton).toBeDisabled();
  await box.press("Enter");
  await expect(page.getByTestId("user-message")).toHaveCount(1);
  await box.fill("x".repeat(10_000));
  await expect(sendButton).toBeEnabled();

  await box.fill("line one");
  await box.press("Shift+Enter");
  await box.type("line two");
  await expect(box).toHaveValue("line one\nline two");
  await expect(page.getByTestId("user-message")).toHaveCount(1);
  await box.press("Enter");
  await expect(page.getByTestId("user-message")).toHaveCount(2);
  await expect(page.getByTestId("user-message").last()).toContainText("line one\nline two");
  await expect(box).toHaveValue("");
});

test("a failed send keeps the message and succeeds on retry once the server is back", async ({ browser }) => {
  const port = Number(process.env.E2E_PORT ?? 3100) + 7;
  let server = await startServer(port);
  const context = await browser.newContext({ baseURL: server.url });
  const page = await context.newPage();
  try {
    await register(page, uniqueEmail("retry"));
    await startConversation(page, "add before outage");
    await stopServer(server);
    await send(page, "add during outage");
    const failed = page.getByTestId("outgoing");
    await expect(failed).toContainText("add during outage");
    await expect(failed.getByRole("alert")).toContainText("Not sent");
    await expect(page.getByText("Connection lost. Reconnecting…")).toBeVisible({ timeout: 8000 });

    server = await startServer(port);
    await expect(page.getByText("Connection lost. Reconnecting…")).toBeHidden({ timeout: 8000 });
    await failed.getByRole("button", { name: "Retry" }).click();
    await expect(page.getByTestId("assistant-message").last()).toContainText("Added task 2: During outage");
    await expect(page.getByTestId("outgoing")).toHaveCount(0);
    await expect(page.getByTestId("user-message").filter({ hasText: "add during outage" })).toHaveCount(1);
  } finally {
    await context.close();
    await stopServer(server);
  }
});

test.describe("on a phone", () => {
  test.use({ viewport: { width: 375, height: 740 } });

  test("the sidebar is a drawer and messages can be sent", async ({ page }) => {
    await register(page, uniqueEmail("mobile"));
    await startConversation(page, "add phone task");
    const sidebar = page.locator("#sidebar");
    await expect(sidebar).not.toBeInViewport();
    await page.getByRole("button", { name: "Open the conversation list" }).click();
    await expect(sidebar).toBeInViewport();
    await sidebar.getByTestId("conversation").first().getByRole("link").click();
    await expect(sidebar).not.toBeInViewport();
    await send(page, "show my tasks");
    await expect(page.getByTestId("assistant-message").last()).toContainText("Phone task");
  });
});

test.describe("without JavaScript", () => {
  test("history is visible and a message can be sent", async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const email = uniqueEmail("nojs-chat");
    await page.goto("/register");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("correct horse 1");
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page).toHaveURL(/\/chat/);
    await page.getByPlaceholder("Type a message...").fill("add a task to read a book");
    await page.getByRole("button", { name: "Send", exact: true }).click();
    await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
    await expect(page.getByTestId("assistant-message")).toContainText("Added task 1: Read a book");
    await page.getByPlaceholder("Type a message...").fill("show my tasks");
    await page.getByRole("button", { name: "Send", exact: true }).click();
    await expect(page.getByTestId("assistant-message").last().locator("table")).toContainText("Read a book");
    await expect(page.getByTestId("conversation")).toHaveCount(1);
    // A failed send (too long) comes back with the reason, and the typed text is still there.
    const tooLong = "x".repeat(10_001);
    await page.getByPlaceholder("Type a message...").fill(tooLong);
    await page.getByRole("button", { name: "Send", exact: true }).click();
    await expect(page.getByRole("alert")).toContainText("Not sent:");
    await expect(page.getByRole("alert")).toContainText("10000");
    await expect(page.getByPlaceholder("Type a message...")).toHaveValue(tooLong);
    // The text came back from the server, not in the URL.
    expect(page.url()).not.toContain("xxxx");
    expect(page.url().length).toBeLessThan(1024);
    await context.close();
  });
});

test.describe("on a tablet", () => {
  test.use({ viewport: { width: 800, height: 900 } });

  test("the task panel opens as a drawer and shows the tasks", async ({ page }) => {
    await register(page, uniqueEmail("tablet"));
    await startConversation(page, "add tablet task");
    const panel = page.locator("#task-panel");
    await expect(panel).not.toBeInViewport();
    await page.getByRole("button", { name: "Tasks", exact: true }).click();
    await expect(panel).toBeInViewport();
    await expect(panel.getByTestId("tasks-pending")).toContainText("Tablet task");
    await page.getByRole("button", { name: "Close the side panel" }).click({ position: { x: 10, y: 400 } });
    await expect(panel).not.toBeInViewport();
  });
});
