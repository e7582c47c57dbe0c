// Approvals and undo (#24): the assistant asks before it deletes a task (a card in every tab of
// the conversation, the safe "Keep it" first and focused), a decision taken in one tab clears
// the card in all of them; every tool record of a change has an Undo button; "undo that" in
// words; undoing a task changed since asks the browser's confirm(); the settings page chooses
// when the assistant asks; axe on a thread with a card, light and dark.
//
// Against the suite's server, whose offline assistant answers at once: "add buy milk" calls
// add_task ("Added task 1: Buy milk."), "delete task 1" calls delete_task (which waits for a
// decision under the default policy), "undo that" calls undo_change. Each test registers a new
// user, so its tasks are numbered from 1. Data a test only checks is read through the REST API
// with the page's session cookie.
import { test, expect, Locator, Page } from "@playwright/test";
import { expectNoAxeViolations, hydrated, register, streamOpened, uniqueEmail } from "./helpers";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const composer = (page: Page) => page.getByPlaceholder("Type a message...");
const replies = (page: Page) => page.getByTestId("assistant-message");
const cards = (page: Page) => page.getByTestId("approval-card");
const notice = (page: Page) => page.getByTestId("thread-notice");

/** The task panel's entry for the task whose title matches `title`. */
function taskInPanel(page: Page, title: RegExp): Locator {
  return page
    .locator("#task-panel")
    .getByTestId("task")
    .filter({ has: page.locator(".task-title", { hasText: title }) });
}

async function send(page: Page, text: string) {
  await composer(page).fill(text);
  await page.getByRole("button", { name: "Send", exact: true }).click();
}

/** Opens /chat and sends `text`, starting a conversation (its answer may be a card, not a reply). */
async function newConversation(page: Page, text: string) {
  await page.goto("/chat");
  await hydrated(page);
  await send(page, text);
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
}

async function signedIn(page: Page, prefix: string): Promise<string> {
  const email = uniqueEmail(prefix);
  await register(page, email);
  await hydrated(page);
  return email;
}

/** One REST call with the page's session (the page must be on the app's origin). */
async function api(page: Page, method: string, path: string, data?: unknown): Promise<{ status: number; body: any }> {
  const origin = new URL(page.url()).origin;
  const res = await page.request.fetch(`${origin}${path}`, { method, data, headers: { origin } });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status(), body };
}

/** The titles of the user's tasks, from the server. */
async function taskTitles(page: Page): Promise<string[]> {
  const { status, body } = await api(page, "GET", "/api/tasks");
  expect(status, `GET /api/tasks: ${JSON.stringify(body)}`).toBe(200);
  return (body as Array<{ title: string }>).map((t) => t.title.toLowerCase());
}

/** "add <title>" answered with "Added task 1", then nothing running. */
async function addedFirst(page: Page, title: string) {
  await newConversation(page, `add ${title}`);
  await expect(replies(page).first()).toContainText(new RegExp(`Added task 1: ${title}`, "i"));
  await expect(page.getByTestId("typing")).toBeHidden();
  await expect(taskInPanel(page, new RegExp(title, "i"))).toHaveCount(1);
}

/** "add buy milk", then "delete task 1": the card asks, nothing is deleted yet. */
async function parkedDelete(page: Page) {
  await addedFirst(page, "buy milk");
  await send(page, "delete task 1");
  await expect(cards(page)).toHaveCount(1);
  await expect(cards(page).getByTestId("approval-what")).toContainText(/buy milk/i);
}

// ---------------------------------------------------------------------------------------------
// 1. Delete asks first; a second tab shows the card and decides for both.
// ---------------------------------------------------------------------------------------------

test("delete asks first, and another tab sees the card", async ({ page }) => {
  test.setTimeout(90_000);
  await signedIn(page, "approvals-tabs");
  await addedFirst(page, "buy milk");

  const other = await page.context().newPage();
  try {
    const opened = streamOpened(other);
    await other.goto(page.url());
    await hydrated(other);
    await opened;
    await expect(replies(other)).toHaveCount(1);

    await send(page, "delete task 1");
    for (const [tab, name] of [
      [page, "tab A"],
      [other, "tab B"],
    ] as const) {
      const card = cards(tab);
      await expect(card, `${name}: the card`).toHaveCount(1);
      await expect(tab.getByRole("group", { name: "The assistant asks first" })).toBeVisible();
      await expect(card.getByTestId("approval-what")).toContainText("Delete task 1");
      await expect(card.getByTestId("approval-what")).toContainText(/buy milk/i);
      await expect(card.getByTestId("approval-keep")).toHaveText("Keep it");
      await expect(card.getByTestId("approval-approve")).toHaveText("Delete");
      // Nothing deleted, and no answer yet.
      await expect(taskInPanel(tab, /buy milk/i), `${name}: the task is still listed`).toHaveCount(1);
      await expect(replies(tab)).toHaveCount(1);
    }
    expect(await taskTitles(page)).toContain("buy milk");

    // The safe choice is first, and has the focus in the tab that asked.
    const keep = cards(page).getByTestId("approval-keep");
    await expect(cards(page).getByRole("button").first()).toHaveAttribute("data-testid", "approval-keep");
    await expect(keep).toBeFocused();

    // "Delete" in tab B: the card goes everywhere, the task goes, both tabs get the answer.
    await cards(other).getByRole("button", { name: "Delete", exact: true }).click();
    for (const [tab, name] of [
      [other, "tab B"],
      [page, "tab A"],
    ] as const) {
      await expect(cards(tab), `${name}: the card is gone`).toHaveCount(0);
      await expect(replies(tab), `${name}: the answer`).toHaveCount(2);
      await expect(replies(tab).last()).toContainText("Deleted task 1");
      await expect(taskInPanel(tab, /buy milk/i), `${name}: the task is gone from the panel`).toHaveCount(0);
    }
    await expect(replies(page).last().getByTestId("tool-call")).toHaveAttribute("data-status", "done");
    await expect.poll(() => taskTitles(page)).not.toContain("buy milk");
  } finally {
    await other.close();
  }
});

// ---------------------------------------------------------------------------------------------
// 2. Keep it: nothing deleted, the record says declined.
// ---------------------------------------------------------------------------------------------

test("Keep it declines", async ({ page }) => {
  await signedIn(page, "approvals-keep");
  await parkedDelete(page);
  const keep = cards(page).getByTestId("approval-keep");
  await expect(keep).toBeFocused();
  await page.keyboard.press("Enter");

  await expect(cards(page)).toHaveCount(0);
  await expect(replies(page)).toHaveCount(2);
  const answer = replies(page).last();
  await expect(answer).toContainText("nothing was changed");
  const record = answer.getByTestId("tool-call");
  await expect(record).toHaveAttribute("data-status", "declined");
  // A call that did nothing has nothing to undo.
  await expect(record.getByTestId("undo")).toHaveCount(0);
  // The task stays, in the panel (after any live update had time to arrive) and on the server.
  await page.waitForTimeout(500);
  await expect(taskInPanel(page, /buy milk/i)).toHaveCount(1);
  expect(await taskTitles(page)).toContain("buy milk");
  // The focus does not fall to the page once the card is gone.
  await expect(composer(page)).toBeFocused();
});

// ---------------------------------------------------------------------------------------------
// 2b. Several deletes in one round: a card each, decided together.
// ---------------------------------------------------------------------------------------------

test("several cards: one decided alone, the rest with Approve all", async ({ page }) => {
  await signedIn(page, "approvals-all");
  await addedFirst(page, "buy milk");
  for (const [n, title] of [
    [2, "call mom"],
    [3, "pay rent"],
  ] as const) {
    await send(page, `add ${title}`);
    await expect(replies(page).last()).toContainText(new RegExp(`Added task ${n}`, "i"));
  }
  await expect(page.getByTestId("typing")).toBeHidden();
  await send(page, "delete tasks 1, 2 and 3");
  await expect(cards(page)).toHaveCount(3);
  await expect(cards(page).nth(1).getByTestId("approval-what")).toContainText(/call mom/i);
  // One card alone: "Keep it" on the first, two still wait, nothing has run.
  await cards(page).first().getByTestId("approval-keep").click();
  await expect(cards(page)).toHaveCount(2);
  await expect(page.getByTestId("approval-approve-all")).toHaveText("Approve all 2");
  expect(await taskTitles(page)).toEqual(expect.arrayContaining(["buy milk", "call mom", "pay rent"]));
  // The rest together.
  await page.getByTestId("approval-approve-all").click();
  await expect(cards(page)).toHaveCount(0);
  const answer = replies(page).last();
  await expect(answer).toContainText("nothing was changed");
  await expect(answer).toContainText("Deleted task 2");
  await expect(answer).toContainText("Deleted task 3");
  await expect(answer.getByTestId("tool-call")).toHaveCount(3);
  await expect.poll(() => taskTitles(page)).toEqual(["buy milk"]);
  await expect(taskInPanel(page, /call mom/i)).toHaveCount(0);
});

// ---------------------------------------------------------------------------------------------
// 3. Undo on a tool record.
// ---------------------------------------------------------------------------------------------

test("Undo on a tool record", async ({ page }) => {
  await signedIn(page, "approvals-undo");
  await addedFirst(page, "call mom");
  const record = replies(page).first().getByTestId("tool-call");
  await expect(record).toHaveAttribute("data-status", "done");
  const undo = record.getByTestId("undo");
  await expect(undo).toHaveText("Undo");
  await expect(undo).toHaveAccessibleName("Undo add_task");
  await undo.click();

  await expect(taskInPanel(page, /call mom/i)).toHaveCount(0);
  await expect(record).toHaveAttribute("data-status", "undone");
  await expect(record.getByTestId("undo")).toHaveCount(0);
  await expect(notice(page)).toContainText("Removed task");
  expect(await taskTitles(page)).not.toContain("call mom");

  // Kept on reload: still undone, still no Undo.
  await page.reload();
  await hydrated(page);
  const again = replies(page).first().getByTestId("tool-call");
  await expect(again).toHaveAttribute("data-status", "undone");
  await expect(again.getByTestId("undo")).toHaveCount(0);
});

// ---------------------------------------------------------------------------------------------
// 4. "undo that" in words.
// ---------------------------------------------------------------------------------------------

test("undo that in words", async ({ page }) => {
  await signedIn(page, "approvals-words");
  await addedFirst(page, "water plants");
  await send(page, "undo that");
  await expect(replies(page)).toHaveCount(2);
  await expect(replies(page).last()).toContainText("Undone");
  await expect(cards(page)).toHaveCount(0);
  await expect(taskInPanel(page, /water plants/i)).toHaveCount(0);
  await expect.poll(() => taskTitles(page)).not.toContain("water plants");
});

// ---------------------------------------------------------------------------------------------
// 5. Undoing a task renamed since asks (the browser's confirm()).
// ---------------------------------------------------------------------------------------------

test("undoing a task renamed since asks", async ({ page }) => {
  await signedIn(page, "approvals-renamed");
  await addedFirst(page, "pay rent");
  const { body: tasks } = await api(page, "GET", "/api/tasks");
  const task = (tasks as Array<{ id: number; title: string }>).find((t) => /pay rent/i.test(t.title));
  expect(task, "the task the assistant added").toBeTruthy();

  const renamed = await api(page, "PUT", `/api/tasks/${task!.id}`, { title: "Pay the landlord" });
  expect(renamed.status, `PUT /api/tasks/${task!.id}: ${JSON.stringify(renamed.body)}`).toBe(200);
  await expect(taskInPanel(page, /pay the landlord/i)).toHaveCount(1);

  const asked = { type: "", message: "" };
  page.once("dialog", async (d) => {
    asked.type = d.type();
    asked.message = d.message();
    await d.accept();
  });
  const record = replies(page).first().getByTestId("tool-call");
  await record.getByTestId("undo").click();

  await expect.poll(() => asked.message, { message: "a confirm() dialog opened" }).toContain("changed since");
  expect(asked.type).toBe("confirm");
  expect(asked.message).toContain("Undo anyway?");
  // Accepted: undone all the same.
  await expect(taskInPanel(page, /pay the landlord/i)).toHaveCount(0);
  await expect(record).toHaveAttribute("data-status", "undone");
  await expect(record.getByTestId("undo")).toHaveCount(0);
  await expect(notice(page)).toContainText("Removed task");
  expect(await taskTitles(page)).not.toContain("pay the landlord");
});

// ---------------------------------------------------------------------------------------------
// 5b. Settings: sign out everywhere, and delete the account.
// ---------------------------------------------------------------------------------------------

test("settings: sign out everywhere ends the other browser's session; delete account", async ({ page, browser }) => {
  test.setTimeout(90_000);
  const email = await signedIn(page, "approvals-everywhere");
  // A second device: its own browser context, signed in to the same account.
  const device = await browser.newContext({ baseURL: new URL(page.url()).origin });
  try {
    const other = await device.newPage();
    await other.goto("/login");
    await hydrated(other);
    await other.getByLabel("Email").fill(email);
    await other.getByLabel("Password").fill("correct horse 1");
    await other.getByRole("button", { name: "Sign in" }).click();
    await expect(other).toHaveURL(/\/chat/);
    expect((await api(other, "GET", "/api/tasks")).status).toBe(200);

    await page.goto("/settings");
    await hydrated(page);
    await page.getByTestId("logout-everywhere").click();
    await expect(page).toHaveURL(/\/login/);
    expect((await api(page, "GET", "/api/tasks")).status).toBe(401);
    await expect.poll(async () => (await api(other, "GET", "/api/tasks")).status).toBe(401);
  } finally {
    await device.close();
  }

  // Signed in again, the account goes once the browser's confirm() is accepted.
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("correct horse 1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/chat/);
  await page.goto("/settings");
  await hydrated(page);
  let asked = "";
  page.once("dialog", (dialog) => {
    asked = dialog.message();
    void dialog.dismiss();
  });
  await page.getByTestId("delete-account").click();
  await expect.poll(() => asked).toContain("Delete your account");
  expect((await api(page, "GET", "/api/tasks")).status, "dismissed: the account stays").toBe(200);
  page.once("dialog", (dialog) => void dialog.accept());
  await page.getByTestId("delete-account").click();
  await expect(page).toHaveURL(/\/register/);
  const login = await api(page, "POST", "/api/auth/login", { email, password: "correct horse 1" });
  expect(login.status, "the account is gone").toBe(401);
});

// ---------------------------------------------------------------------------------------------
// 6. Settings: ask before any change.
// ---------------------------------------------------------------------------------------------

test("settings: ask before any change", async ({ page }) => {
  test.setTimeout(90_000);
  const email = await signedIn(page, "approvals-settings");
  const posts: string[] = [];
  page.on("request", (req) => {
    if (req.method() === "POST" && new URL(req.url()).pathname === "/sfn/auth/update_settings") {
      posts.push(req.postData() ?? "");
    }
  });

  await page.goto("/settings");
  await hydrated(page);
  const main = page.getByRole("main");
  await expect(main).toContainText(email);
  await expect(
    page
      .getByRole("button", { name: /sign out everywhere/i })
      .or(page.getByRole("link", { name: /sign out everywhere/i }))
      .first(),
  ).toBeVisible();
  await expect(
    page
      .getByRole("button", { name: /delete account/i })
      .or(page.getByRole("link", { name: /delete account/i }))
      .first(),
  ).toBeVisible();

  // Three choices in one radio group; the default asks before deleting.
  const radios = page.locator('input[type="radio"][name="approval_policy"]');
  await expect(radios).toHaveCount(3);
  expect((await radios.evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value))).sort()).toEqual([
    "changes",
    "deletes",
    "never",
  ]);
  await expect(page.getByRole("radio", { name: "Ask before deleting a task" })).toBeChecked();
  await expect(page.getByRole("radio", { name: "Never ask" })).not.toBeChecked();

  const anyChange = page.getByRole("radio", { name: "Ask before any change" });
  await anyChange.check();
  await page.getByRole("button", { name: /^save/i }).click();
  await expect.poll(() => posts.length, { message: "a POST to /sfn/auth/update_settings" }).toBeGreaterThan(0);
  await expect
    .poll(async () => (await api(page, "GET", "/api/account/settings")).body?.approval_policy)
    .toBe("changes");

  // Kept on reload.
  await page.goto("/settings");
  await hydrated(page);
  await expect(page.getByRole("radio", { name: "Ask before any change" })).toBeChecked();
  await expect(page.getByRole("radio", { name: "Ask before deleting a task" })).not.toBeChecked();

  // Now even an add asks first.
  await newConversation(page, "add buy bread");
  await expect(cards(page)).toHaveCount(1);
  await expect(cards(page).getByTestId("approval-what")).toHaveText(/^Add the task “buy bread”\?$/i);
  await expect(cards(page).getByRole("button").first()).toHaveAttribute("data-testid", "approval-keep");
  await expect(cards(page).getByTestId("approval-keep")).toBeFocused();
  await expect(replies(page)).toHaveCount(0);
  await expect(taskInPanel(page, /buy bread/i)).toHaveCount(0);
  expect(await taskTitles(page)).not.toContain("buy bread");

  // Approved: added.
  await cards(page).getByTestId("approval-approve").click();
  await expect(cards(page)).toHaveCount(0);
  await expect(replies(page).last()).toContainText(/Added task 1: buy bread/i);
  await expect(taskInPanel(page, /buy bread/i)).toHaveCount(1);
});

// ---------------------------------------------------------------------------------------------
// 7. axe on a thread with an approval card, light and dark.
// ---------------------------------------------------------------------------------------------

for (const colorScheme of ["light", "dark"] as const) {
  test.describe(`approvals, axe, ${colorScheme} mode`, () => {
    test.use({ colorScheme });

    test("a thread with an approval card, then with a declined and an undoable record", async ({ page }) => {
      await signedIn(page, "approvals-axe");
      await parkedDelete(page);
      await expect(cards(page).getByTestId("approval-keep")).toBeFocused();
      await expectNoAxeViolations(page, `thread with an approval card (${colorScheme})`);

      await cards(page).getByTestId("approval-keep").click();
      await expect(cards(page)).toHaveCount(0);
      await expect(replies(page).last().getByTestId("tool-call")).toHaveAttribute("data-status", "declined");
      await expect(replies(page).first().getByTestId("undo")).toBeVisible();
      await expectNoAxeViolations(page, `thread with a declined record and an Undo button (${colorScheme})`);
    });
  });
}
