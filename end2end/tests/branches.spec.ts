// Branches (#23): edit a sent message, regenerate an answer, and move between the versions
// with the "‹ 2/3 ›" navigator, with the mouse and with the keyboard; the choice is stored
// (a reload keeps it) and a second tab follows it live; a regenerated answer does not do its
// task twice; axe on the new states in light and dark mode, and at 375 px wide.
//
// Against the suite's server, whose offline assistant answers at once: "Add a task to buy milk"
// calls add_task ("Added task 1: Buy milk"), "Show my pending tasks" / "What's pending?" list
// the pending tasks in a table, "What have I completed?" the completed ones. A regeneration
// replays the earlier answer's tool calls to the model, so the offline assistant confirms
// instead of adding again. Data a test only reads is read through the REST API with the page's
// session cookie.
import { test, expect, Locator, Page } from "@playwright/test";
import { expectNoAxeViolations, hydrated, register, streamOpened, uniqueEmail } from "./helpers";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const composer = (page: Page) => page.getByPlaceholder("Type a message...");
const users = (page: Page) => page.getByTestId("user-message");
const replies = (page: Page) => page.getByTestId("assistant-message");

async function send(page: Page, text: string) {
  await composer(page).fill(text);
  await page.getByRole("button", { name: "Send", exact: true }).click();
}

/** Starts a conversation from the empty state and waits for the reply. */
async function startConversation(page: Page, text: string) {
  await page.goto("/chat");
  await hydrated(page);
  await send(page, text);
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
  await expect(replies(page).last()).toBeVisible();
}

async function signedIn(page: Page, prefix: string) {
  await register(page, uniqueEmail(prefix));
  await hydrated(page);
}

/** The conversation open in `page` (from its URL). */
function conversationId(page: Page): string {
  const id = new URL(page.url()).pathname.split("/").pop() ?? "";
  expect(id, "a conversation is open").toMatch(/^[0-9a-f-]{36}$/);
  return id;
}

/** One GET through REST with the page's session (the page must be on the app's origin). */
async function getJson(page: Page, path: string): Promise<any> {
  const origin = new URL(page.url()).origin;
  const res = await page.request.get(`${origin}${path}`);
  const text = await res.text();
  expect(res.status(), `GET ${path}: ${text}`).toBe(200);
  return JSON.parse(text);
}

/** The navigator of a message, found by its label ("Version 2 of 3 of this message"). */
function versions(message: Locator, index: number, count: number, what: "message" | "answer"): Locator {
  return message.getByRole("group", { name: `Version ${index} of ${count} of this ${what}`, exact: true });
}

/** The message shows the navigator at `index`/`count`, and only then. */
async function expectVersion(message: Locator, index: number, count: number, what: "message" | "answer") {
  const nav = versions(message, index, count, what);
  await expect(nav).toBeVisible();
  await expect(nav).toHaveAttribute("data-testid", "branch-nav");
  await expect(nav.locator(".branch-count")).toHaveText(`${index}/${count}`);
  const previous = nav.getByRole("button", { name: `Previous version of this ${what}` });
  const next = nav.getByRole("button", { name: `Next version of this ${what}` });
  if (index === 1) await expect(previous).toBeDisabled();
  else await expect(previous).toBeEnabled();
  if (index === count) await expect(next).toBeDisabled();
  else await expect(next).toBeEnabled();
}

/** What has the focus, for messages. */
async function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return "body";
    const name = (el.getAttribute("aria-label") ?? el.textContent ?? "").trim().slice(0, 40);
    return `<${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}> ${name}`;
  });
}

async function isFocused(target: Locator): Promise<boolean> {
  return target.evaluate((el) => el === document.activeElement, undefined, { timeout: 2000 }).catch(() => false);
}

/** Presses `key` (Tab, or Shift+Tab) until `target` has the focus. */
async function tabTo(page: Page, target: Locator, what: string, key = "Tab", max = 80) {
  await expect(target, what).toHaveCount(1);
  for (let i = 0; i < max; i++) {
    if (await isFocused(target)) return;
    await page.keyboard.press(key);
  }
  throw new Error(`${what}: not reached with ${max} × ${key} (the focus is on ${await focused(page)})`);
}

/** Where the focus is, relative to the navigators: a button inside a .branch-nav, and of which message. */
async function navFocus(page: Page): Promise<{ button: boolean; inNav: boolean; message: string | null; label: string }> {
  return page.evaluate(() => {
    const el = document.activeElement;
    return {
      button: el instanceof HTMLButtonElement,
      inNav: !!el?.closest(".branch-nav"),
      message: el?.closest("li.message")?.getAttribute("data-id") ?? null,
      label: !el || el === document.body ? "body" : (el.getAttribute("aria-label") ?? el.tagName),
    };
  });
}

/** After a switch: `target` (a navigator button of the version now shown) has the focus, and keeps it. */
async function expectNavFocus(page: Page, target: Locator, when: string) {
  try {
    await expect(target).toBeFocused();
  } catch {
    const wanted = await target.getAttribute("aria-label", { timeout: 2000 }).catch(() => null);
    throw new Error(`${when}: the focus should be on “${wanted}” of the version shown; it is on ${await focused(page)}`);
  }
  const id = await target.evaluate((el) => el.closest("li.message")?.getAttribute("data-id") ?? null);
  expect(await navFocus(page), when).toMatchObject({ button: true, inNav: true, message: id });
  // A late re-render (the conversation's live event) must not take it away.
  await page.waitForTimeout(300);
  expect(await navFocus(page), `${when}, 300 ms later`).toMatchObject({ button: true, inNav: true, message: id });
}

/** Nothing scrolls sideways: neither the page nor the thread. */
async function expectNoSidewaysScroll(page: Page, what: string): Promise<void> {
  await expect
    .poll(
      () =>
        page.evaluate(() => {
          const doc = document.documentElement;
          const thread = document.querySelector(".thread");
          return {
            document: Math.max(0, doc.scrollWidth - doc.clientWidth),
            thread: thread ? Math.max(0, thread.scrollWidth - thread.clientWidth) : 0,
          };
        }),
      { message: `${what}: overflow past the width, in px` },
    )
    .toEqual({ document: 0, thread: 0 });
}

/** Two exchanges: a task added, then the pending tasks listed. */
async function twoExchanges(page: Page) {
  await startConversation(page, "Add a task to buy milk");
  await expect(replies(page).first()).toContainText("Added task 1: Buy milk");
  await send(page, "Show my pending tasks");
  await expect(replies(page)).toHaveCount(2);
  await expect(replies(page).nth(1).locator("table")).toContainText("Buy milk");
  await expect(page.getByTestId("typing")).toBeHidden();
}

/**
 * A thread with every new piece at once: two tasks added, the second question edited (so it
 * shows "2/2"), and its new answer showing the change the old branch made ("Call mum").
 */
async function branchedThread(page: Page) {
  await startConversation(page, "Add a task to buy milk");
  await expect(replies(page).first()).toContainText("Added task 1: Buy milk");
  await send(page, "Add a task to call mum");
  await expect(replies(page)).toHaveCount(2);
  await expect(replies(page).nth(1)).toContainText("Added task 2: Call mum");
  await expect(page.getByTestId("typing")).toBeHidden();

  await users(page).nth(1).getByRole("button", { name: "Edit this message" }).click();
  const input = page.getByLabel("Edit your message");
  await expect(input).toBeFocused();
  await input.fill("Add a task to pay rent");
  await input.press("Enter");
  await expect(users(page)).toHaveCount(2);
  await expect(users(page).nth(1)).toContainText("Add a task to pay rent");
  await expect(replies(page)).toHaveCount(2);
  await expect(replies(page).nth(1)).toContainText("Added task 3: Pay rent");
  await expectVersion(users(page).nth(1), 2, 2, "message");
  const note = replies(page).nth(1).getByTestId("branch-changes");
  await expect(note).toContainText("Already done in another version of this conversation:");
  await expect(note.locator("li")).toHaveText(["Added “Call mum” (task 2), still pending"]);
  await expect(page.getByTestId("typing")).toBeHidden();
}

// ---------------------------------------------------------------------------------------------
// 1. Edit, with the mouse: the new branch, back to the old one, a reload, a second tab.
// ---------------------------------------------------------------------------------------------

test("editing the first message: a new branch of 2 messages at 2/2, Previous brings the 4 back, kept on reload, followed by a second tab", async ({
  page,
}) => {
  test.setTimeout(90_000);
  await signedIn(page, "branches-edit");
  await twoExchanges(page);
  const id = conversationId(page);
  const first = users(page).first();
  const oldId = await first.getAttribute("data-id");
  expect(oldId).toBeTruthy();
  // No version yet: no navigator anywhere.
  await expect(page.getByTestId("branch-nav")).toHaveCount(0);

  // A second tab of the same user on the same conversation, its event stream open.
  const other = await page.context().newPage();
  try {
    const opened = streamOpened(other);
    await other.goto(page.url());
    await hydrated(other);
    await opened;
    await expect(users(other)).toHaveCount(2);
    await expect(replies(other)).toHaveCount(2);

    // Edit: the editor holds the old text and the focus; Enter saves and sends.
    await first.getByRole("button", { name: "Edit this message" }).click();
    const editor = first.getByTestId("message-editor");
    await expect(editor).toBeVisible();
    await expect(page.getByTestId("message-editor")).toHaveCount(1);
    const input = editor.getByLabel("Edit your message");
    await expect(input).toHaveAttribute("id", "message-editor-input");
    await expect(input).toHaveValue("Add a task to buy milk");
    await expect(input).toBeFocused();
    await expect(editor.getByRole("button", { name: "Cancel" })).toBeVisible();
    await expect(editor.getByRole("button", { name: "Save and send" })).toBeVisible();
    await input.fill("Add a task to call mum");
    await input.press("Enter");

    // The new branch: the new question and its answer, nothing of the old one.
    await expect(page.getByTestId("message-editor")).toHaveCount(0);
    await expect(users(page)).toHaveCount(1);
    await expect(replies(page)).toHaveCount(1);
    await expect(users(page).first()).toContainText("Add a task to call mum");
    await expect(users(page).first()).not.toHaveAttribute("data-id", oldId!);
    await expect(replies(page).first()).toContainText("Added task 2: Call mum");
    await expect(page.getByTestId("typing")).toBeHidden();
    await expectVersion(users(page).first(), 2, 2, "message");
    // The answers have no versions of their own.
    await expect(replies(page).first().getByTestId("branch-nav")).toHaveCount(0);
    // The old branch added "Buy milk": that is real, said on the new answer, and in the list.
    const note = replies(page).first().getByTestId("branch-changes");
    await expect(note).toContainText("Already done in another version of this conversation:");
    await expect(note).toContainText("Added “Buy milk” (task 1), still pending");
    await expect(page.getByTestId("tasks-pending")).toContainText("Buy milk");
    await expect(page.getByTestId("tasks-pending")).toContainText("Call mum");

    // The other tab follows the edit.
    await expect(users(other)).toHaveCount(1, { timeout: 8000 });
    await expect(users(other).first()).toContainText("Add a task to call mum");
    await expect(replies(other)).toHaveCount(1, { timeout: 8000 });
    await expect(replies(other).first()).toContainText("Added task 2: Call mum");

    // The server keeps both branches; the current one is the new one.
    const current = await getJson(page, `/api/chat/conversations/${id}/messages`);
    expect(current.messages.map((m: any) => m.content)).toEqual(["Add a task to call mum", expect.stringContaining("Call mum")]);
    const all = await getJson(page, `/api/chat/conversations/${id}/messages?branch=all`);
    expect(all.messages).toHaveLength(6);

    // Previous: the old 4 messages are back, at 1/2.
    await users(page).first().getByRole("button", { name: "Previous version of this message" }).click();
    await expect(users(page)).toHaveCount(2);
    await expect(replies(page)).toHaveCount(2);
    await expect(users(page).first()).toHaveAttribute("data-id", oldId!);
    await expect(users(page).first()).toContainText("Add a task to buy milk");
    await expect(users(page).nth(1)).toContainText("Show my pending tasks");
    await expect(replies(page).first()).toContainText("Added task 1: Buy milk");
    await expect(replies(page).nth(1).locator("table")).toContainText("Buy milk");
    await expectVersion(users(page).first(), 1, 2, "message");
    await expect(page.getByTestId("branch-changes")).toHaveCount(0);
    await expect(page.getByTestId("thread-notice")).toHaveCount(0);

    // The other tab follows the switch within a few seconds.
    await expect(users(other)).toHaveCount(2, { timeout: 5000 });
    await expect(users(other).first()).toContainText("Add a task to buy milk");
    await expectVersion(users(other).first(), 1, 2, "message");
    await expect(replies(other)).toHaveCount(2);

    // A reload shows the branch chosen.
    const reopened = streamOpened(page);
    await page.reload();
    await hydrated(page);
    await reopened;
    await expect(users(page)).toHaveCount(2);
    await expect(replies(page)).toHaveCount(2);
    await expect(users(page).first()).toHaveAttribute("data-id", oldId!);
    await expectVersion(users(page).first(), 1, 2, "message");

    // And the other way round: Next in the second tab, the first follows.
    await users(other).first().getByRole("button", { name: "Next version of this message" }).click();
    await expect(users(other)).toHaveCount(1);
    await expectVersion(users(other).first(), 2, 2, "message");
    await expect(users(page)).toHaveCount(1, { timeout: 5000 });
    await expect(users(page).first()).toContainText("Add a task to call mum");
    await expect(replies(page)).toHaveCount(1);
    await expectVersion(users(page).first(), 2, 2, "message");
  } finally {
    await other.close();
  }
});

// ---------------------------------------------------------------------------------------------
// 2. Regenerate: another answer beside the first, which did not add the task again.
// ---------------------------------------------------------------------------------------------

test("regenerating an answer that added a task: a new answer at 2/2, the task exists once, Previous shows the first answer at 1/2", async ({
  page,
}) => {
  await signedIn(page, "branches-regenerate");
  await startConversation(page, "Add a task to buy milk");
  const answer = replies(page).first();
  await expect(answer).toContainText("Added task 1: Buy milk");
  await expect(answer.getByTestId("tool-call")).toContainText("add_task");
  const pending = page.getByTestId("tasks-pending");
  await expect(pending.getByTestId("task")).toHaveCount(1);
  const firstId = await answer.getAttribute("data-id");
  expect(firstId).toBeTruthy();
  const id = conversationId(page);

  // The question can be edited, the answer regenerated (never the other way round).
  await expect(users(page).first().getByRole("button", { name: "Regenerate this answer" })).toHaveCount(0);
  await expect(answer.getByRole("button", { name: "Edit this message" })).toHaveCount(0);
  await answer.getByRole("button", { name: "Regenerate this answer" }).click();

  // A new answer in the old one's place, at 2/2.
  await expect(replies(page)).toHaveCount(1);
  await expect(replies(page).first()).not.toHaveAttribute("data-id", firstId!);
  const again = replies(page).first();
  await expectVersion(again, 2, 2, "answer");
  await expect(again).toContainText("Buy milk");
  await expect(page.getByTestId("typing")).toBeHidden();
  // The question is the same message, with no versions of its own.
  await expect(users(page)).toHaveCount(1);
  await expect(users(page).first().getByTestId("branch-nav")).toHaveCount(0);
  // It says what the first answer already did.
  await expect(again.getByTestId("branch-changes").locator("li")).toHaveText(["Added “Buy milk” (task 1), still pending"]);

  // The task exists once: in the panel (after any live update had time to arrive) and on the server.
  await page.waitForTimeout(500);
  await expect(pending.getByTestId("task")).toHaveCount(1);
  await expect(pending).toContainText("Buy milk");
  const tasks = (await getJson(page, "/api/tasks")) as Array<{ title: string }>;
  expect(tasks.map((t) => t.title)).toEqual(["Buy milk"]);

  // Both answers are kept.
  const all = await getJson(page, `/api/chat/conversations/${id}/messages?branch=all`);
  expect(all.messages.map((m: any) => m.role)).toEqual(["user", "assistant", "assistant"]);

  // Previous: the first answer again, at 1/2.
  await again.getByRole("button", { name: "Previous version of this answer" }).click();
  await expect(replies(page)).toHaveCount(1);
  await expect(replies(page).first()).toHaveAttribute("data-id", firstId!);
  await expect(replies(page).first()).toContainText("Added task 1: Buy milk");
  await expectVersion(replies(page).first(), 1, 2, "answer");
  await expect(replies(page).first().getByTestId("branch-changes")).toHaveCount(0);

  // Kept on reload.
  await page.reload();
  await hydrated(page);
  await expect(replies(page)).toHaveCount(1);
  await expect(replies(page).first()).toHaveAttribute("data-id", firstId!);
  await expectVersion(replies(page).first(), 1, 2, "answer");
  await expect(page.getByTestId("tasks-pending").getByTestId("task")).toHaveCount(1);
});

// ---------------------------------------------------------------------------------------------
// 3. By keyboard only: Up edits the last message, Escape cancels, Enter sends; the navigator
//    by Tab, Enter and Space, the focus kept on it.
// ---------------------------------------------------------------------------------------------

test("by keyboard: Up in the empty composer edits the last message, Escape cancels, Enter sends; the navigator switches with Enter and Space and keeps the focus", async ({
  page,
  browserName,
}) => {
  test.skip(browserName !== "chromium", "the keyboard journey runs in Chromium");
  test.setTimeout(120_000);
  const keyboard = page.keyboard;
  const box = composer(page);
  await signedIn(page, "branches-keys");

  // Two exchanges, typed.
  await tabTo(page, box, "the composer");
  await keyboard.type("Add a task to buy milk");
  await keyboard.press("Enter");
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
  await expect(replies(page)).toHaveCount(1);
  await expect(replies(page).first()).toContainText("Added task 1: Buy milk");
  await expect(box).toBeFocused();
  await keyboard.type("Show my pending tasks");
  await keyboard.press("Enter");
  await expect(replies(page)).toHaveCount(2);
  await expect(replies(page).nth(1).locator("table")).toContainText("Buy milk");
  await expect(page.getByTestId("typing")).toBeHidden();
  await expect(box).toBeFocused();
  await expect(box).toHaveValue("");
  const id = conversationId(page);
  const last = users(page).nth(1);
  const input = page.getByLabel("Edit your message");

  // Up in a composer with text in it is just the caret moving.
  await keyboard.type("x");
  await keyboard.press("ArrowUp");
  await expect(page.getByTestId("message-editor")).toHaveCount(0);
  await expect(box).toBeFocused();
  // Up moved the caret to the start of the line: back to the end, then delete.
  await keyboard.press("End");
  await keyboard.press("Backspace");
  await expect(box).toHaveValue("");

  // Up in the empty composer: the editor on the last user message, focused, with its text.
  await keyboard.press("ArrowUp");
  await expect(last.getByTestId("message-editor")).toBeVisible();
  await expect(page.getByTestId("message-editor")).toHaveCount(1);
  await expect(input).toBeFocused();
  await expect(input).toHaveValue("Show my pending tasks");

  // Escape cancels: the text unchanged, nothing sent.
  await keyboard.type(" and more");
  await expect(input).toHaveValue("Show my pending tasks and more");
  await keyboard.press("Escape");
  await expect(page.getByTestId("message-editor")).toHaveCount(0);
  await expect(last.locator(".bubble")).toHaveText("Show my pending tasks");
  await expect(users(page)).toHaveCount(2);
  await expect(replies(page)).toHaveCount(2);
  await expect(page.getByTestId("branch-nav")).toHaveCount(0);
  await expect(page.getByTestId("typing")).toBeHidden();
  await page.waitForTimeout(500);
  const afterCancel = await getJson(page, `/api/chat/conversations/${id}/messages?branch=all`);
  expect(afterCancel.messages, "Escape sent nothing").toHaveLength(4);

  // Back to the composer (from wherever the focus went), Up again: the original text.
  await keyboard.press("Shift+Escape");
  await expect(box).toBeFocused();
  await keyboard.press("ArrowUp");
  await expect(input).toBeFocused();
  await expect(input).toHaveValue("Show my pending tasks");

  // Enter sends the new text: a second version of the message, answered; back in the composer.
  await keyboard.press("Control+A");
  await keyboard.type("What's pending?");
  await keyboard.press("Enter");
  await expect(page.getByTestId("message-editor")).toHaveCount(0);
  await expect(users(page)).toHaveCount(2);
  await expect(users(page).nth(1)).toContainText("What's pending?");
  await expect(replies(page)).toHaveCount(2);
  await expect(replies(page).nth(1)).toContainText("1 pending task");
  await expect(page.getByTestId("typing")).toBeHidden();
  await expectVersion(users(page).nth(1), 2, 2, "message");
  await expect(box).toBeFocused();

  const previous = (n: number, of: number) =>
    versions(users(page).nth(1), n, of, "message").getByRole("button", { name: "Previous version of this message" });
  const next = (n: number, of: number) =>
    versions(users(page).nth(1), n, of, "message").getByRole("button", { name: "Next version of this message" });

  // Shift+Tab back to the navigator; Enter: version 1, the focus on the button still usable
  // (Previous is disabled at 1/2, so Next).
  await tabTo(page, previous(2, 2), "the Previous version button", "Shift+Tab");
  await keyboard.press("Enter");
  await expect(users(page).nth(1)).toContainText("Show my pending tasks");
  await expectVersion(users(page).nth(1), 1, 2, "message");
  await expect(replies(page).nth(1).locator("table")).toContainText("Buy milk");
  await expectNavFocus(page, next(1, 2), "after Enter on Previous (2/2 → 1/2)");

  // Space on Next: version 2, the focus on Previous (Next is disabled at 2/2).
  await keyboard.press("Space");
  await expect(users(page).nth(1)).toContainText("What's pending?");
  await expectVersion(users(page).nth(1), 2, 2, "message");
  await expectNavFocus(page, previous(2, 2), "after Space on Next (1/2 → 2/2)");

  // A third version, by keyboard again.
  await keyboard.press("Shift+Escape");
  await expect(box).toBeFocused();
  await keyboard.press("ArrowUp");
  await expect(input).toBeFocused();
  await expect(input).toHaveValue("What's pending?");
  await keyboard.press("Control+A");
  await keyboard.type("What have I completed?");
  await keyboard.press("Enter");
  await expect(users(page).nth(1)).toContainText("What have I completed?");
  await expect(replies(page).nth(1)).toContainText("You have no completed tasks.");
  await expect(page.getByTestId("typing")).toBeHidden();
  await expectVersion(users(page).nth(1), 3, 3, "message");

  // 3/3 → 2/3 with Previous: both buttons usable, the focus stays on Previous.
  await tabTo(page, previous(3, 3), "the Previous version button", "Shift+Tab");
  await keyboard.press("Enter");
  await expectVersion(users(page).nth(1), 2, 3, "message");
  await expect(users(page).nth(1)).toContainText("What's pending?");
  await expectNavFocus(page, previous(2, 3), "after Enter on Previous (3/3 → 2/3)");
  // 2/3 → 1/3: Previous is disabled there, the focus on Next.
  await keyboard.press("Enter");
  await expectVersion(users(page).nth(1), 1, 3, "message");
  await expect(users(page).nth(1)).toContainText("Show my pending tasks");
  await expectNavFocus(page, next(1, 3), "after Enter on Previous (2/3 → 1/3)");
  // 1/3 → 2/3 with Next (Space): both usable, the focus stays on Next.
  await keyboard.press("Space");
  await expectVersion(users(page).nth(1), 2, 3, "message");
  await expect(users(page).nth(1)).toContainText("What's pending?");
  await expectNavFocus(page, next(2, 3), "after Space on Next (1/3 → 2/3)");
  // 2/3 → 3/3 with Next: Next is disabled there, the focus on Previous.
  await keyboard.press("Enter");
  await expectVersion(users(page).nth(1), 3, 3, "message");
  await expect(users(page).nth(1)).toContainText("What have I completed?");
  await expectNavFocus(page, previous(3, 3), "after Enter on Next (2/3 → 3/3)");
});

test("closing the editor with Escape or Cancel leaves the focus on the page's controls, not on <body>", async ({
  page,
  browserName,
}) => {
  test.skip(browserName !== "chromium", "the keyboard journey runs in Chromium");
  const keyboard = page.keyboard;
  await signedIn(page, "branches-cancel-focus");
  await twoExchanges(page);
  const box = composer(page);
  const input = page.getByLabel("Edit your message");

  // Escape.
  await box.focus();
  await keyboard.press("ArrowUp");
  await expect(input).toBeFocused();
  await keyboard.press("Escape");
  await expect(page.getByTestId("message-editor")).toHaveCount(0);
  await page.waitForTimeout(250);
  expect(await focused(page), "Escape in the editor: the focus fell to <body>").not.toBe("body");

  // Cancel, by keyboard.
  await keyboard.press("Shift+Escape");
  await expect(box).toBeFocused();
  await keyboard.press("ArrowUp");
  await expect(input).toBeFocused();
  await keyboard.press("Tab");
  const cancel = page.getByTestId("message-editor").getByRole("button", { name: "Cancel" });
  await expect(cancel).toBeFocused();
  await keyboard.press("Enter");
  await expect(page.getByTestId("message-editor")).toHaveCount(0);
  await page.waitForTimeout(250);
  expect(await focused(page), "Cancel in the editor: the focus fell to <body>").not.toBe("body");
  await expect(users(page)).toHaveCount(2);
  await expect(page.getByTestId("branch-nav")).toHaveCount(0);
});

// ---------------------------------------------------------------------------------------------
// 4. axe on the new states, in light and dark mode, and at 375 px wide.
// ---------------------------------------------------------------------------------------------

for (const colorScheme of ["light", "dark"] as const) {
  test.describe(`branches, axe, ${colorScheme} mode`, () => {
    test.use({ colorScheme });

    test("a thread with the navigator and the branch-changes note, then with the editor open", async ({ page }) => {
      await signedIn(page, "branches-axe");
      await branchedThread(page);
      await expectNoAxeViolations(page, `thread with the navigator and the branch-changes note (${colorScheme})`);

      // The older version shown: the other button of the navigator usable.
      await users(page).nth(1).getByRole("button", { name: "Previous version of this message" }).click();
      await expectVersion(users(page).nth(1), 1, 2, "message");
      await expect(users(page).nth(1)).toContainText("Add a task to call mum");
      await expectNoAxeViolations(page, `thread at version 1 of 2 (${colorScheme})`);
      await users(page).nth(1).getByRole("button", { name: "Next version of this message" }).click();
      await expectVersion(users(page).nth(1), 2, 2, "message");

      // The editor open on the first message, the navigator of the second still shown.
      await users(page).first().getByRole("button", { name: "Edit this message" }).click();
      await expect(users(page).first().getByTestId("message-editor")).toBeVisible();
      await expect(page.getByLabel("Edit your message")).toBeFocused();
      await expect(versions(users(page).nth(1), 2, 2, "message")).toBeVisible();
      await expect(replies(page).nth(1).getByTestId("branch-changes")).toBeVisible();
      await expectNoAxeViolations(page, `editor open (${colorScheme})`);
    });

    test.describe("on a phone", () => {
      test.use({ viewport: { width: 375, height: 740 } });

      test("the navigator and the editor fit 375 px with no horizontal scrolling", async ({ page }) => {
        await signedIn(page, "branches-phone");
        await branchedThread(page);
        const nav = versions(users(page).nth(1), 2, 2, "message");
        await nav.scrollIntoViewIfNeeded();
        await expect(nav).toBeInViewport();
        await expectNoSidewaysScroll(page, `the navigator at 375 px (${colorScheme})`);
        await expectNoAxeViolations(page, `navigator and branch-changes note at 375 px (${colorScheme})`);

        // The editor open on the edited message (its own navigator gives way to it) …
        await users(page).nth(1).getByRole("button", { name: "Edit this message" }).click();
        const editor = users(page).nth(1).getByTestId("message-editor");
        await expect(editor).toBeInViewport();
        await expect(editor.getByRole("button", { name: "Save and send" })).toBeInViewport();
        await expectNoSidewaysScroll(page, `the editor at 375 px (${colorScheme})`);
        await expectNoAxeViolations(page, `editor open at 375 px (${colorScheme})`);
        await page.keyboard.press("Escape");
        await expect(page.getByTestId("message-editor")).toHaveCount(0);

        // … and on the first one, with the navigator of the second in view at the same time.
        await users(page).first().getByRole("button", { name: "Edit this message" }).click();
        await expect(users(page).first().getByTestId("message-editor")).toBeVisible();
        await expect(nav).toBeVisible();
        const box = (await page.getByTestId("message-editor").boundingBox())!;
        expect(box.x, "the editor starts inside the view").toBeGreaterThanOrEqual(0);
        expect(box.x + box.width, "the editor ends inside the view").toBeLessThanOrEqual(375);
        await expectNoSidewaysScroll(page, `the editor and the navigator at 375 px (${colorScheme})`);
      });
    });
  });
}
