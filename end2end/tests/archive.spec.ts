// Find, keep and take out (#25): pin and archive in the sidebar (live in a second tab), the
// Ctrl/⌘+K search palette opening a conversation at an old message, the sidebar's search form
// and the no-JavaScript search page, the settings page's "download all my data" and import, and
// axe on the new states in light and dark mode.
//
// Against the suite's server (offline assistant). Data a test only needs to exist is made
// through the REST API with the page's session cookie (writes carry the Origin header, as a
// browser's would: the server refuses cookie writes from elsewhere).
import { test, expect, Browser, Locator, Page, Response as PageResponse } from "@playwright/test";
import { readFileSync } from "node:fs";
import { expectNoAxeViolations, hydrated, register, streamOpened, uniqueEmail, uniqueWord } from "./helpers";

const password = "correct horse 1";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async function send(page: Page, text: string) {
  await page.getByPlaceholder("Type a message...").fill(text);
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

function tag(): string {
  return `${Date.now() % 1e7}-${Math.floor(Math.random() * 1e4)}`;
}

/** One REST call with the page's session (the page must be on the app's origin). */
async function rest(page: Page, method: string, path: string, data?: unknown, expected = 200): Promise<any> {
  const origin = new URL(page.url()).origin;
  const res = await page.request.fetch(`${origin}${path}`, {
    method,
    data,
    headers: { origin },
  });
  const text = await res.text();
  expect(res.status(), `${method} ${path}: ${text}`).toBe(expected);
  return text ? JSON.parse(text) : undefined;
}

async function createConversation(page: Page, title: string): Promise<string> {
  const conversation = await rest(page, "POST", "/api/chat/conversations", { title }, 201);
  return conversation.id as string;
}

interface Turn {
  user_message: { id: string; seq: number; content: string };
  assistant_message: { id: string; seq: number; content: string };
}

/** One send through REST: the offline assistant answers before the call returns. */
async function sendRest(page: Page, id: string, content: string): Promise<Turn> {
  return (await rest(page, "POST", `/api/chat/conversations/${id}/messages`, { content }, 201)) as Turn;
}

async function markPage(page: Page): Promise<void> {
  await page.evaluate(() => ((window as any).__notReloaded = true));
}

async function expectNotReloaded(page: Page): Promise<void> {
  expect(await page.evaluate(() => (window as any).__notReloaded)).toBe(true);
}

const sidebar = (page: Page) => page.locator("#sidebar");
const mainList = (page: Page) => page.getByTestId("conversation-list");
const pinnedList = (page: Page) => page.getByTestId("pinned-list");
const archivedList = (page: Page) => page.getByTestId("archived-list");
const archivedToggle = (page: Page) => page.getByRole("button", { name: "Archived conversations", exact: true });

/** The sidebar item of the conversation titled `title` in `list`. */
function item(list: Locator, title: string): Locator {
  return list.getByTestId("conversation").filter({ hasText: title });
}

/** The button `name` of the menu that `more` ("More actions for …") opened: in the element its
 * aria-controls names if it has one, else in the item, else (a menu rendered elsewhere) the
 * sidebar's only one. */
async function inMenu(page: Page, entry: Locator, more: Locator, name: string): Promise<Locator> {
  const controls = await more.getAttribute("aria-controls");
  if (controls) return page.locator(`[id="${controls}"]`).getByRole("button", { name, exact: true });
  const inItem = entry.getByRole("button", { name, exact: true });
  if ((await inItem.count()) > 0) return inItem;
  return sidebar(page).getByRole("button", { name, exact: true });
}

/** Opens a "More actions for …" menu (unless it is open already). */
async function openMenu(more: Locator): Promise<void> {
  if ((await more.getAttribute("aria-expanded")) !== "true") await more.click();
  await expect(more).toHaveAttribute("aria-expanded", "true");
}

/** Opens the item's "More actions for {title}" menu and clicks `action` in it. */
async function menuAction(page: Page, list: Locator, title: string, action: string): Promise<void> {
  const entry = item(list, title);
  await expect(entry).toHaveCount(1);
  const more = entry.getByRole("button", { name: `More actions for ${title}`, exact: true });
  await openMenu(more);
  await (await inMenu(page, entry, more, action)).click();
}

/** Clicks the archived item's "Restore": its own button, or the one in its menu. */
async function restore(page: Page, title: string): Promise<void> {
  const entry = item(archivedList(page), title);
  await expect(entry).toHaveCount(1);
  const direct = entry.getByRole("button", { name: "Restore", exact: true });
  if ((await direct.count()) > 0 && (await direct.first().isVisible())) {
    await direct.first().click();
    return;
  }
  const more = entry.getByRole("button", { name: `More actions for ${title}`, exact: true });
  await openMenu(more);
  await (await inMenu(page, entry, more, "Restore")).click();
}

/** Shows the archived view (or leaves it), checking the toggle's state. */
async function showArchived(page: Page, on: boolean): Promise<void> {
  const toggle = archivedToggle(page);
  if ((await toggle.getAttribute("aria-pressed")) !== String(on)) await toggle.click();
  await expect(toggle).toHaveAttribute("aria-pressed", String(on));
}

const palette = (page: Page) => page.getByRole("dialog", { name: "Search conversations" });

async function openPalette(page: Page): Promise<Locator> {
  await page.keyboard.press("Control+k");
  const dialog = palette(page);
  await expect(dialog).toBeVisible();
  const input = dialog.getByRole("combobox", { name: "Search" });
  await expect(input).toBeFocused();
  return input;
}

/** Resolves with the answer to the palette's search for exactly `q` (the server function
 * `/sfn/chat/search`, or REST `/api/chat/search`): once it is in, the options shown are the
 * final ones, not those of a shorter prefix typed before. Start it before typing. */
function searched(page: Page, q: string): Promise<PageResponse> {
  return page.waitForResponse(
    (res) => {
      const url = new URL(res.url());
      if (!/^\/(sfn|api)\/chat\/search/.test(url.pathname)) return false;
      const sent = url.searchParams.get("q") ?? new URLSearchParams(res.request().postData() ?? "").get("query[q]");
      return sent?.trim() === q;
    },
    { timeout: 15_000 },
  );
}

/** The index of the option with aria-selected="true", or -1. */
function selectedIndex(options: Locator): Promise<number> {
  return options.evaluateAll((els) => els.findIndex((el) => el.getAttribute("aria-selected") === "true"));
}

/** Waits until the element's own animations and those inside it are over (colours are measured
 * on what is painted). */
async function settled(target: Locator): Promise<void> {
  await target.evaluate((el) =>
    Promise.all(
      el
        .getAnimations({ subtree: true })
        .filter((a) => a.effect?.getComputedTiming().endTime !== Infinity)
        .map((a) => a.finished.catch(() => undefined)),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// 1. Pin and archive, followed live by a second tab.
// ---------------------------------------------------------------------------------------------

test("pin and archive: the Pinned section, the archived view, restore, live in a second tab", async ({ page }) => {
  test.setTimeout(90_000);
  await register(page, uniqueEmail("pin"), password);
  const alpha = "add alpha task";
  const beta = "add beta task";
  const gamma = "add gamma task";
  await startConversation(page, alpha);
  await startConversation(page, beta);
  await startConversation(page, gamma);
  await expect(mainList(page).getByTestId("conversation")).toHaveCount(3);

  // A second tab of the same user, its event stream open, never reloaded.
  const other = await page.context().newPage();
  const opened = streamOpened(other);
  await other.goto("/chat");
  await hydrated(other);
  await opened;
  await expect(mainList(other).getByTestId("conversation")).toHaveCount(3);
  await markPage(other);

  // Pin the oldest: it moves to the Pinned section, above the list, and leaves the list.
  await menuAction(page, mainList(page), alpha, "Pin");
  for (const tab of [page, other]) {
    await expect(item(pinnedList(tab), alpha)).toHaveCount(1);
    await expect(item(mainList(tab), alpha)).toHaveCount(0);
    await expect(mainList(tab).getByTestId("conversation")).toHaveCount(2);
    await expect(sidebar(tab).getByRole("heading", { name: "Pinned" })).toBeVisible();
    await expect(sidebar(tab).getByTestId("conversation").first()).toContainText(alpha);
    const pinnedBox = await pinnedList(tab).boundingBox();
    const listBox = await mainList(tab).boundingBox();
    expect(pinnedBox, "the Pinned section is rendered").not.toBeNull();
    expect(listBox, "the conversation list is rendered").not.toBeNull();
    expect(pinnedBox!.y, "the Pinned section sits above the list").toBeLessThan(listBox!.y);
  }
  await expectNotReloaded(other);

  // Its menu now offers "Unpin"; the menu closes again.
  const more = item(pinnedList(page), alpha).getByRole("button", { name: `More actions for ${alpha}`, exact: true });
  await openMenu(more);
  await expect(await inMenu(page, item(pinnedList(page), alpha), more, "Unpin")).toBeVisible();
  await more.click();
  await expect(more).toHaveAttribute("aria-expanded", "false");

  // Archive another: it leaves the list, in both tabs.
  await menuAction(page, mainList(page), beta, "Archive");
  for (const tab of [page, other]) {
    await expect(item(mainList(tab), beta)).toHaveCount(0);
    await expect(mainList(tab).getByTestId("conversation")).toHaveCount(1);
    await expect(item(mainList(tab), gamma)).toHaveCount(1);
    await expect(item(pinnedList(tab), alpha)).toHaveCount(1);
  }
  await expectNotReloaded(other);

  // The archived view shows it; it still opens, with its messages.
  await showArchived(page, true);
  await expect(item(archivedList(page), beta)).toHaveCount(1);
  await expect(item(archivedList(page), gamma)).toHaveCount(0);
  await item(archivedList(page), beta).getByRole("link").first().click();
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
  await expect(page.getByTestId("user-message").first()).toContainText(beta);
  await expect(page.getByTestId("assistant-message").first()).toContainText("Added task 2: Beta task");

  // Restore brings it back to the list (the other tab follows that too).
  await showArchived(page, true);
  await restore(page, beta);
  await expect(item(archivedList(page), beta)).toHaveCount(0);
  await showArchived(page, false);
  await expect(item(mainList(page), beta)).toHaveCount(1);
  await expect(item(mainList(other), beta)).toHaveCount(1);
  await expectNotReloaded(other);

  // All of it was saved.
  await page.reload();
  await hydrated(page);
  await expect(item(pinnedList(page), alpha)).toHaveCount(1);
  await expect(mainList(page).getByTestId("conversation")).toHaveCount(2);
  await expect(item(mainList(page), beta)).toHaveCount(1);
  await expect(item(mainList(page), alpha)).toHaveCount(0);
  await other.close();
});

// ---------------------------------------------------------------------------------------------
// 2. The search palette opens a conversation at an old message.
// ---------------------------------------------------------------------------------------------

test("Ctrl+K: results as you type, arrow keys, Enter opens the conversation at the message", async ({ page }) => {
  test.setTimeout(150_000);
  await register(page, uniqueEmail("palette"), password);
  const word = uniqueWord();
  const prefix = word.slice(0, 8);
  const t = tag();
  const targetTitle = `Long thread ${t}`;
  const otherTitle = `Short thread ${t}`;

  // The target: the word only in its first message, then enough turns (2 messages each) that
  // the first message is not on the thread's first page (the latest 50).
  const target = await createConversation(page, targetTitle);
  const first = await sendRest(page, target, `Thinking about the ${word} expedition`);
  const seq = first.user_message.seq;
  let last = first;
  for (let i = 1; i <= 30; i++) last = await sendRest(page, target, "show my tasks");
  const lastSeq = last.assistant_message.seq;
  expect(lastSeq - seq, "the thread is longer than its first page").toBeGreaterThan(55);
  // A second hit, so the arrow keys have somewhere to go.
  const otherId = await createConversation(page, otherTitle);
  await sendRest(page, otherId, `The ${word} again, briefly`);

  // The premise: opened normally, the thread does not show the first message.
  await page.goto(`/chat/${target}`);
  await hydrated(page);
  await expect(page.locator(`[data-seq="${lastSeq}"]`)).toBeVisible();
  await expect(page.locator(`[data-seq="${seq}"]`)).toHaveCount(0);

  await page.goto("/chat");
  await hydrated(page);

  // Escape closes the palette.
  await openPalette(page);
  await page.keyboard.press("Escape");
  await expect(palette(page)).toBeHidden();

  // Results as you type a prefix of the word, its matches marked.
  const input = await openPalette(page);
  const answered = searched(page, prefix);
  await input.pressSequentially(prefix, { delay: 40 });
  await answered;
  const dialog = palette(page);
  const listbox = dialog.getByRole("listbox");
  const options = listbox.getByRole("option");
  await expect(options).toHaveCount(2);
  await expect(options.filter({ hasText: targetTitle })).toHaveCount(1);
  await expect(options.filter({ hasText: otherTitle })).toHaveCount(1);
  const targetOption = options.filter({ hasText: targetTitle });
  await expect(targetOption.locator("mark").first()).toContainText(prefix, { ignoreCase: true });
  await expect(options.filter({ hasText: otherTitle }).locator("mark").first()).toContainText(prefix, {
    ignoreCase: true,
  });

  // ArrowDown moves the selection forward, ArrowUp back.
  const before = await selectedIndex(options);
  await input.press("ArrowDown");
  await expect.poll(() => selectedIndex(options), "ArrowDown moved aria-selected").toBeGreaterThan(before);
  if ((await selectedIndex(options)) === 0) {
    await input.press("ArrowDown");
    await expect.poll(() => selectedIndex(options)).toBe(1);
  }
  await expect.poll(() => selectedIndex(options)).toBe(1);
  await input.press("ArrowUp");
  await expect.poll(() => selectedIndex(options), "ArrowUp moved aria-selected back").toBe(0);
  await expect(options.nth(0)).toHaveAttribute("aria-selected", "true");
  await expect(options.nth(1)).not.toHaveAttribute("aria-selected", "true");

  // To the target's hit, then Enter.
  const targetIndex = await options.evaluateAll(
    (els, title) => els.findIndex((el) => (el.textContent ?? "").includes(title)),
    targetTitle,
  );
  if (targetIndex === 1) {
    await input.press("ArrowDown");
    await expect.poll(() => selectedIndex(options)).toBe(1);
  }
  await expect(targetOption).toHaveAttribute("aria-selected", "true");
  await input.press("Enter");

  // The conversation, at that message: highlighted and scrolled into view.
  await expect
    .poll(() => {
      const url = new URL(page.url());
      return `${url.pathname}?at=${url.searchParams.get("at")}`;
    })
    .toBe(`/chat/${target}?at=${seq}`);
  await expect(palette(page)).toBeHidden();
  const message = page.locator(`[data-seq="${seq}"]`);
  await expect(message).toContainText(word, { timeout: 15_000 });
  await expect(message).toHaveClass(/\bhighlighted\b/);
  await expect(message).toBeInViewport();
});

test("the search palette gives the focus back where it was (Escape, a click beside it) and keeps Tab inside", async ({
  page,
}) => {
  await register(page, uniqueEmail("palette-focus"), password);
  const word = uniqueWord();
  const title = `Focus check ${tag()}`;
  const id = await createConversation(page, title);
  await sendRest(page, id, `Thinking about the ${word} expedition`);
  await page.goto("/chat");
  await hydrated(page);
  const entry = item(mainList(page), title);
  await expect(entry).toHaveCount(1);

  // From the sidebar's search field, Escape: back to that field (not to the composer).
  const field = page.locator("#sidebar-search");
  await field.focus();
  await expect(field).toBeFocused();
  await openPalette(page);
  await page.keyboard.press("Escape");
  await expect(palette(page)).toBeHidden();
  await expect(field).toBeFocused();

  // From a conversation's link, a click on the backdrop: back to that link.
  const link = entry.getByRole("link").first();
  await link.focus();
  await expect(link).toBeFocused();
  await openPalette(page);
  await page.locator(".dialog-backdrop").click({ position: { x: 5, y: 5 } });
  await expect(palette(page)).toBeHidden();
  await expect(link).toBeFocused();

  // Open, with a result shown: Tab and Shift+Tab never leave the dialog.
  const input = await openPalette(page);
  const answered = searched(page, word);
  await input.pressSequentially(word, { delay: 20 });
  await answered;
  await expect(palette(page).getByRole("option").first()).toBeVisible();
  for (const key of ["Tab", "Tab", "Tab", "Shift+Tab", "Shift+Tab", "Shift+Tab"]) {
    await page.keyboard.press(key);
    const inside = await palette(page).evaluate((el) => el.contains(document.activeElement));
    expect(inside, `${key} left the open palette`).toBe(true);
  }
  await expect(input).toBeFocused();
  // And Escape still gives the focus back to the link it came from.
  await page.keyboard.press("Escape");
  await expect(palette(page)).toBeHidden();
  await expect(link).toBeFocused();
});

// ---------------------------------------------------------------------------------------------
// 3. The sidebar's search form on a phone, and the search page without JavaScript.
// ---------------------------------------------------------------------------------------------

test.describe("on a phone", () => {
  test.use({ viewport: { width: 375, height: 740 } });

  test("the sidebar's search form opens /chat/search, which also works without JavaScript", async ({
    page,
    browser,
  }) => {
    await register(page, uniqueEmail("search-form"), password);
    const word = uniqueWord();
    const title = `Field notes ${tag()}`;
    const id = await createConversation(page, title);
    await sendRest(page, id, `Thinking about the ${word} expedition`);

    await page.goto("/chat");
    await hydrated(page);
    await page.getByRole("button", { name: "Open the conversation list" }).click();
    await expect(sidebar(page)).toBeInViewport();
    const form = sidebar(page).locator("form[role=search]");
    await expect(form).toBeVisible();
    const box = form.locator('input[name="q"]');
    await expect(box).toHaveAccessibleName("Search conversations");
    await box.fill(word);
    await box.press("Enter");
    await expect
      .poll(() => {
        const url = new URL(page.url());
        return `${url.pathname}?q=${url.searchParams.get("q")}`;
      })
      .toBe(`/chat/search?q=${word}`);
    const results = page.getByTestId("search-result");
    await expect(results).toHaveCount(1);
    await expect(results.first()).toContainText(title);
    await expect(results.first().locator("mark").first()).toContainText(word, { ignoreCase: true });
    await expect(results.first()).toHaveAttribute("href", new RegExp(`/chat/${id}`));

    // The same page, server-rendered for a browser without JavaScript (the same session).
    const noJs = await browser.newContext({
      javaScriptEnabled: false,
      storageState: await page.context().storageState(),
    });
    try {
      const plain = await noJs.newPage();
      await plain.goto(`/chat/search?q=${encodeURIComponent(word)}`);
      const found = plain.getByTestId("search-result");
      await expect(found).toHaveCount(1);
      await expect(found.first()).toContainText(title);
      await expect(found.first().locator("mark").first()).toContainText(word, { ignoreCase: true });
      await expect(found.first()).toHaveAttribute("href", new RegExp(`/chat/${id}`));
    } finally {
      await noJs.close();
    }

    // A result opens its conversation.
    await results.first().click();
    await expect(page).toHaveURL(new RegExp(`/chat/${id}`));
    await expect(page.getByTestId("user-message").first()).toContainText(word);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. Settings: download all my data, import it as another user.
// ---------------------------------------------------------------------------------------------

test("settings: download all my data, and import it into another account", async ({ page, browser }, testInfo) => {
  test.setTimeout(90_000);
  const email = uniqueEmail("export");
  await register(page, email, password);
  const title = "add a task to buy milk";
  await startConversation(page, title);
  await expect(page.getByTestId("assistant-message").last()).toContainText("Added task 1: Buy milk");

  await page.getByRole("link", { name: "Settings", exact: true }).click();
  await expect(page).toHaveURL(/\/settings$/);
  await hydrated(page);
  await expect(page.getByText(email).first()).toBeVisible();

  const link = page.getByRole("link", { name: "Download all my data" });
  await expect(link).toHaveAttribute("href", /\/api\/export$/);
  const downloading = page.waitForEvent("download");
  await link.click();
  const download = await downloading;
  const file = testInfo.outputPath("chatkit-export.json");
  await download.saveAs(file);
  const data = JSON.parse(readFileSync(file, "utf8"));
  expect(data.format).toBe("chatkit-tasks-export");
  expect(data.version).toBe(1);
  expect(data.account.email).toBe(email);
  expect(data.conversations).toHaveLength(1);
  const exported = data.conversations[0];
  expect(exported.title).toBe(title);
  expect(exported.messages.map((m: any) => m.content)).toContain(title);
  expect(exported.messages.length).toBeGreaterThanOrEqual(2);
  expect(data.tasks.some((task: any) => /buy milk/i.test(task.title))).toBe(true);

  // Another user imports the file from their settings page.
  const context = await browser.newContext();
  try {
    const second = await context.newPage();
    await register(second, uniqueEmail("import"), password);
    await hydrated(second);
    await second.getByRole("link", { name: "Settings", exact: true }).click();
    await expect(second).toHaveURL(/\/settings$/);
    await hydrated(second);
    await second.getByLabel("Conversations file").setInputFiles(file);
    await second.getByRole("button", { name: "Import", exact: true }).click();
    await expect(second.getByText(/Imported 1\b/)).toBeVisible();

    // The sidebar lists it, with its messages; no tool ran (no task was created).
    await second.goto("/chat");
    await hydrated(second);
    const imported = item(mainList(second), title);
    await expect(imported).toHaveCount(1);
    await imported.getByRole("link").first().click();
    await expect(second.getByTestId("user-message").first()).toContainText(title);
    await expect(second.getByTestId("assistant-message").first()).toContainText("Added task 1: Buy milk");
    await expect(second.getByTestId("tasks-pending")).toBeAttached();
    await expect(second.getByTestId("tasks-pending").getByTestId("task")).toHaveCount(0);
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------------------------------------
// 5. Axe on the new states, in light and dark mode.
// ---------------------------------------------------------------------------------------------

/** The "download all my data" file of another new account, with one conversation: a small
 * file to import. */
async function anotherAccountsExport(browser: Browser): Promise<string> {
  const context = await browser.newContext();
  try {
    const other = await context.newPage();
    await register(other, uniqueEmail("a11y-export"), password);
    const id = await createConversation(other, `Import check ${tag()}`);
    await sendRest(other, id, "add imported item");
    const origin = new URL(other.url()).origin;
    const res = await other.request.get(`${origin}/api/export`);
    const text = await res.text();
    expect(res.status(), `GET /api/export: ${text.slice(0, 200)}`).toBe(200);
    return text;
  } finally {
    await context.close();
  }
}

for (const colorScheme of ["light", "dark"] as const) {
  test.describe(`axe, ${colorScheme} mode`, () => {
    test.use({ colorScheme });

    test("the search palette open with results", async ({ page }) => {
      await register(page, uniqueEmail("a11y-palette"), password);
      const word = uniqueWord();
      const id = await createConversation(page, `Palette check ${tag()}`);
      await sendRest(page, id, `Thinking about the ${word} expedition`);
      const second = await createConversation(page, `Palette check two ${tag()}`);
      await sendRest(page, second, `The ${word} again, briefly`);
      await page.goto("/chat");
      await hydrated(page);
      const input = await openPalette(page);
      const answered = searched(page, word.slice(0, 8));
      await input.pressSequentially(word.slice(0, 8), { delay: 40 });
      await answered;
      const options = palette(page).getByRole("option");
      await expect(options).toHaveCount(2);
      await expect(options.first().locator("mark").first()).toBeVisible();
      await input.press("ArrowDown");
      await expect.poll(() => selectedIndex(options)).toBeGreaterThanOrEqual(0);
      await settled(palette(page));
      await expectNoAxeViolations(page, `search palette with results (${colorScheme})`);
    });

    test("the archived view", async ({ page }) => {
      await register(page, uniqueEmail("a11y-archived"), password);
      const title = `Archived check ${tag()}`;
      const id = await createConversation(page, title);
      await sendRest(page, id, "add archived item");
      await rest(page, "PUT", `/api/chat/conversations/${id}`, { archived: true });
      const kept = `Kept check ${tag()}`;
      await sendRest(page, await createConversation(page, kept), "show my tasks");
      await page.goto("/chat");
      await hydrated(page);
      await expect(item(mainList(page), kept)).toHaveCount(1);
      await showArchived(page, true);
      await expect(item(archivedList(page), title)).toHaveCount(1);
      await expect(archivedList(page).getByRole("button", { name: "Restore" }).first()).toBeAttached();
      await settled(sidebar(page));
      await expectNoAxeViolations(page, `archived view (${colorScheme})`);
    });

    test("the settings page", async ({ page }) => {
      const email = uniqueEmail("a11y-settings");
      await register(page, email, password);
      await startConversation(page, "add settings item");
      await page.getByRole("link", { name: "Settings", exact: true }).click();
      await expect(page).toHaveURL(/\/settings$/);
      await hydrated(page);
      await expect(page.getByText(email).first()).toBeVisible();
      await expect(page.getByRole("link", { name: "Download all my data" })).toBeVisible();
      await expect(page.getByLabel("Conversations file")).toBeAttached();
      await expect(page.getByRole("button", { name: "Import", exact: true })).toBeVisible();
      await expectNoAxeViolations(page, `settings page (${colorScheme})`);
    });

    test("the settings page showing an import's result", async ({ page, browser }) => {
      const exported = await anotherAccountsExport(browser);
      await register(page, uniqueEmail("a11y-import"), password);
      await page.getByRole("link", { name: "Settings", exact: true }).click();
      await expect(page).toHaveURL(/\/settings$/);
      await hydrated(page);
      await page.getByLabel("Conversations file").setInputFiles({
        name: "chatkit-export.json",
        mimeType: "application/json",
        buffer: Buffer.from(exported),
      });
      await page.getByRole("button", { name: "Import", exact: true }).click();
      // The server sends the browser back to the settings page, with what it did.
      await expect(page.getByRole("status").filter({ hasText: /Imported 1\b/ })).toBeVisible();
      await hydrated(page);
      await expect(page.getByRole("button", { name: "Import", exact: true })).toBeVisible();
      await expectNoAxeViolations(page, `settings page with an import's result (${colorScheme})`);
    });

    test("the search page with results", async ({ page }) => {
      await register(page, uniqueEmail("a11y-search-page"), password);
      const word = uniqueWord();
      const id = await createConversation(page, `Search page check ${tag()}`);
      await sendRest(page, id, `Thinking about the ${word} expedition`);
      const second = await createConversation(page, `Search page check two ${tag()}`);
      await sendRest(page, second, `The ${word} again, briefly`);
      await page.goto(`/chat/search?q=${encodeURIComponent(word)}`);
      await hydrated(page);
      await expect(page.getByRole("heading", { name: "Search", exact: true })).toBeVisible();
      const results = page.getByTestId("search-result");
      await expect(results).toHaveCount(2);
      await expect(results.first().locator("mark").first()).toContainText(word, { ignoreCase: true });
      await settled(page.locator("#main"));
      await expectNoAxeViolations(page, `search page with results (${colorScheme})`);
    });

    test("a conversation's More actions menu open", async ({ page }) => {
      await register(page, uniqueEmail("a11y-menu"), password);
      const title = `Menu check ${tag()}`;
      const id = await createConversation(page, title);
      await sendRest(page, id, "add menu item");
      await page.goto(`/chat/${id}`);
      await hydrated(page);
      const entry = item(mainList(page), title);
      await expect(entry).toHaveCount(1);
      const more = entry.getByRole("button", { name: `More actions for ${title}`, exact: true });
      await openMenu(more);
      await expect(await inMenu(page, entry, more, "Pin")).toBeVisible();
      await expect(await inMenu(page, entry, more, "Archive")).toBeVisible();
      await settled(sidebar(page));
      await expectNoAxeViolations(page, `conversation menu open (${colorScheme})`);
    });
  });
}
