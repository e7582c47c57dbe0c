// Usable by everyone (#29): WCAG 2.2 AA with no axe violation in every state of the app, in
// light and dark mode; the whole app by keyboard; replies announced to screen readers; reflow
// at 320 px and at 200 % zoom; no motion for those who ask for less.
//
// Against a release server whose model is the scripted one of `mock-model.ts` (tokens 50 ms
// apart: "long …" streams 200, "story …" 40, "markdown …" a list, inline code, a code block and
// a table, "wide …" a long code line and a long word, "tool add X" calls add_task, "fail …"
// gets HTTP 500), and one whose offline assistant answers (and, for the "Using add_task…" line,
// one test's own whose offline assistant takes its time).
import { test, expect, Locator, Page } from "@playwright/test";
import { expectNoAxeViolations, hydrated, register, streamOpened, uniqueEmail, uniqueWord } from "./helpers";
import { startServer, stopServer, ServerHandle } from "../server";
import { startMockModel, MockModel, LONG_WORD } from "../mock-model";

const base = Number(process.env.E2E_PORT ?? 3100);
const modelPort = base + 60;
const offlinePort = base + 61;
/** A server of one test's own, whose offline assistant takes its time (see `OFFLINE_THINK_MS`). */
const thinkingPort = base + 64;
const modelUrl = `http://127.0.0.1:${modelPort}`;
const offlineUrl = `http://127.0.0.1:${offlinePort}`;

let model: MockModel;
let server: ServerHandle;
let offline: ServerHandle;

test.use({ baseURL: modelUrl });

test.beforeAll(async () => {
  model = await startMockModel();
  server = await startServer(modelPort, {
    OPENAI_API_KEY: "e2e",
    OPENAI_BASE_URL: model.baseUrl,
    MODEL_MAX_RETRIES: "0",
  });
  offline = await startServer(offlinePort, {});
});

test.afterAll(async () => {
  await stopServer(server);
  await stopServer(offline);
  await model.close();
});

const composer = (page: Page) => page.getByPlaceholder("Type a message...");

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
  await expect(page.getByTestId("assistant-message").last()).toBeVisible();
}

async function signedIn(page: Page, prefix: string) {
  await register(page, uniqueEmail(prefix));
  await hydrated(page);
}

function story(n: number): string {
  return Array.from({ length: n }, (_, i) => `word${i} `).join("").trim();
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

/** After a live update: the focus did not fall to <body> (a re-rendered element took it along). */
async function expectFocusKept(page: Page, when: string) {
  await page.waitForTimeout(250);
  expect(await focused(page), `${when}: the focus fell to <body>`).not.toBe("body");
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

async function focusInside(page: Page, selector: string): Promise<boolean> {
  return page.evaluate((s) => !!document.querySelector(s)?.contains(document.activeElement), selector);
}

// ---------------------------------------------------------------------------------------------
// Every state, scanned by axe, in light and in dark mode.
// ---------------------------------------------------------------------------------------------

for (const colorScheme of ["light", "dark"] as const) {
  test.describe(`axe, ${colorScheme} mode`, () => {
    test.use({ colorScheme });

    test("the sign-in page", async ({ page }) => {
      await page.goto("/login");
      await hydrated(page);
      await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
      await expectNoAxeViolations(page, `sign-in page (${colorScheme})`);
    });

    test("sign-in with a wrong password, its error shown", async ({ page }) => {
      await page.goto("/login");
      await hydrated(page);
      await page.getByLabel("Email").fill(uniqueEmail("a11y-wrong"));
      await page.getByLabel("Password").fill("not the password");
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect(page.getByRole("alert")).toHaveText("wrong email or password");
      await expectNoAxeViolations(page, `sign-in error (${colorScheme})`);
    });

    test("registration with an error shown", async ({ page }) => {
      await page.goto("/register");
      await hydrated(page);
      // A too-short password never leaves the browser (minlength); an address the browser
      // accepts and the server refuses (no dot in the domain) gets the server's error line.
      await page.getByLabel("Email").fill(`a11y-${Date.now()}@localhost`);
      await page.getByLabel("Password").fill("correct horse 1");
      await page.getByRole("button", { name: "Create account" }).click();
      await expect(page.getByRole("alert")).toContainText("valid email address");
      await expect(page).toHaveURL(/\/register/);
      await expectNoAxeViolations(page, `registration error (${colorScheme})`);
    });

    test("the empty chat of a new user", async ({ page }) => {
      await signedIn(page, "a11y-empty");
      await expect(page.getByRole("heading", { name: "What needs doing?" })).toBeVisible();
      await expectNoAxeViolations(page, `empty chat (${colorScheme})`);
    });

    test("a conversation with a markdown reply and a reply that used a tool", async ({ page }) => {
      await signedIn(page, "a11y-markdown");
      await startConversation(page, "markdown please");
      const markdown = page.getByTestId("assistant-message").last();
      await expect(markdown.locator("table")).toContainText("Buy milk");
      await expect(markdown.locator("ul li").first()).toBeVisible();
      await expect(markdown.locator("li code")).toHaveText("inline code");
      await expect(markdown.locator(".code-block pre code")).toContainText("println!");

      await send(page, "tool add buy milk");
      const reply = page.getByTestId("assistant-message").nth(1);
      await expect(reply).toContainText("Added buy milk to your list.");
      const tool = reply.getByTestId("tool-call");
      await expect(tool).toContainText("add_task");
      await expect(tool).toContainText("done");
      await expect(page.getByTestId("tasks-pending")).toContainText(/buy milk/i);
      // Its record opened, arguments and result shown.
      await tool.locator("summary").click();
      await expect(tool).toContainText('"title": "buy milk"');
      await expectNoAxeViolations(page, `conversation with markdown and a tool record (${colorScheme})`);
    });

    test("a reply while it streams", async ({ page }) => {
      await signedIn(page, "a11y-streaming");
      await startConversation(page, "lines 1");
      await send(page, "long story");
      const streaming = page.getByTestId("streaming");
      await expect(streaming).toContainText("word3 ");
      await expect(page.getByTestId("typing")).toBeVisible();
      await expectNoAxeViolations(page, `streaming reply (${colorScheme})`);
      // The scan ran while it was streaming (200 tokens take 10 s).
      await expect(streaming).toBeVisible();
      await page.getByTestId("stop").click();
      await expect(page.getByTestId("assistant-message").last()).toHaveAttribute("data-status", "stopped");
    });

    test("an error reply with its Retry button", async ({ page }) => {
      await signedIn(page, "a11y-error");
      await startConversation(page, "fail please");
      const reply = page.getByTestId("assistant-message").last();
      await expect(reply).toHaveAttribute("data-status", "error");
      await expect(reply).toContainText("Retry");
      await expect(reply.getByRole("button", { name: "Retry" })).toBeVisible();
      await expectNoAxeViolations(page, `error reply (${colorScheme})`);
    });

    test("the delete confirmation open", async ({ page }) => {
      await signedIn(page, "a11y-delete");
      await startConversation(page, "lines 1");
      await page.getByTestId("conversation").first().getByRole("button", { name: /^Delete/ }).click();
      const dialog = page.getByRole("alertdialog", { name: "Confirm deletion" });
      await expect(dialog).toBeVisible();
      await expect(dialog.getByRole("button", { name: "Cancel" })).toBeVisible();
      await expect(dialog.getByRole("button", { name: "Delete", exact: true })).toBeVisible();
      await expectNoAxeViolations(page, `delete confirmation (${colorScheme})`);
    });

    test("the keyboard shortcuts dialog open", async ({ page }) => {
      await signedIn(page, "a11y-shortcuts");
      await startConversation(page, "lines 1");
      // `?` outside a text field.
      await tabTo(page, page.getByRole("button", { name: "New conversation" }), "New conversation");
      await page.keyboard.press("?");
      const dialog = page.getByRole("dialog", { name: "Keyboard shortcuts" });
      await expect(dialog).toBeVisible();
      await expect(dialog.getByRole("button", { name: "Close" })).toBeVisible();
      await expectNoAxeViolations(page, `keyboard shortcuts dialog (${colorScheme})`);
    });

    test.describe("on a phone", () => {
      test.use({ viewport: { width: 375, height: 740 } });

      test("the conversation drawer open", async ({ page }) => {
        await signedIn(page, "a11y-drawer");
        await startConversation(page, "lines 1");
        const sidebar = page.locator("#sidebar");
        await expect(sidebar).not.toBeInViewport();
        await page.getByRole("button", { name: "Open the conversation list" }).click();
        await expect(sidebar).toBeInViewport();
        // Its slide-in over (colours are measured on what is painted).
        await expect.poll(() => sidebar.evaluate((el) => getComputedStyle(el).transform)).toBe("none");
        await expectNoAxeViolations(page, `drawer open at 375 px (${colorScheme})`);
      });

      test("the task panel drawer open", async ({ page }) => {
        await signedIn(page, "a11y-tasks-drawer");
        await startConversation(page, "tool add buy milk");
        await expect(page.getByTestId("assistant-message").last()).toContainText("Added buy milk to your list.");
        const panel = page.locator("#task-panel");
        await expect(panel.getByTestId("task")).toHaveCount(1);
        await expect(panel).not.toBeInViewport();
        const toggle = page.getByRole("button", { name: "Tasks", exact: true });
        await toggle.click();
        await expect(toggle).toHaveAttribute("aria-expanded", "true");
        await expect(panel).toBeInViewport();
        await expect(panel.getByTestId("tasks-pending")).toContainText(/buy milk/i);
        // Its slide-in over (colours are measured on what is painted).
        await expect.poll(() => panel.evaluate((el) => getComputedStyle(el).transform)).toBe("none");
        await expectNoAxeViolations(page, `task panel drawer open at 375 px (${colorScheme})`);
      });
    });

    test.describe("with the offline assistant", () => {
      test.use({ baseURL: offlineUrl });

      test("a conversation with its tool records, table, list and code", async ({ page }) => {
        await signedIn(page, "a11y-offline");
        await expect(page.getByText("Offline assistant")).toBeVisible();
        await startConversation(page, "add buy milk");
        const added = page.getByTestId("assistant-message").last();
        await expect(added).toContainText("Added task 1: Buy milk");
        await expect(added.getByTestId("tool-call")).toContainText("add_task");
        await send(page, "show my tasks");
        await expect(page.getByTestId("assistant-message").nth(1).locator("table")).toContainText("Buy milk");
        await send(page, "hello there");
        const help = page.getByTestId("assistant-message").nth(2);
        await expect(help.locator("ul li").first()).toBeVisible();
        await expect(help.locator(".code-block pre code")).toBeVisible();
        await expectNoAxeViolations(page, `offline assistant conversation (${colorScheme})`);
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The whole app by keyboard: no click, no mouse; only keys, and checks of where the focus is.
// ---------------------------------------------------------------------------------------------

for (const colorScheme of ["light", "dark"] as const) {
  test.describe(`keyboard, ${colorScheme} mode`, () => {
    test.use({ colorScheme });

    test("every control Tab reaches shows a focus ring, in the page's order", async ({ page }) => {
      await signedIn(page, "a11y-ring");
      await startConversation(page, "Add a task to buy milk");
      await expect(page.getByTestId("assistant-message")).toHaveCount(1);
      // No positive tabindex: the order is the page's own.
      expect(
        await page.evaluate(
          () => document.querySelectorAll('[tabindex]:not([tabindex="0"]):not([tabindex="-1"])').length,
        ),
      ).toBe(0);
      await page.locator("body").click({ position: { x: 1, y: 1 } });
      let previous: string | null = null;
      let seen = 0;
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press("Tab");
        const state = await page.evaluate(() => {
          const el = document.activeElement as HTMLElement | null;
          if (!el || el === document.body) return null;
          el.setAttribute("data-ring-probe", String(Date.now()));
          const style = getComputedStyle(el);
          const ring =
            (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2) ||
            style.boxShadow !== "none";
          return { ring, name: `<${el.tagName.toLowerCase()}> ${(el.getAttribute("aria-label") ?? el.textContent ?? "").trim().slice(0, 40)}` };
        });
        if (!state) continue;
        seen++;
        expect(state.ring, `${state.name} has no visible focus ring`).toBe(true);
        // Each step goes forward in the document, except when it wraps to the top.
        const forward = await page.evaluate((before) => {
          const now = document.activeElement!;
          const then = before ? document.querySelector(`[data-ring-id="${before}"]`) : null;
          now.setAttribute("data-ring-id", now.getAttribute("data-ring-probe")!);
          if (!then) return true;
          return (then.compareDocumentPosition(now) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0 || now.closest("header, nav, .topbar") !== null;
        }, previous);
        expect(forward, `${state.name} came before the control focused just before it`).toBe(true);
        previous = await page.evaluate(() => document.activeElement!.getAttribute("data-ring-id"));
      }
      expect(seen).toBeGreaterThan(10);
    });

    test("the whole app by keyboard", async ({ page, browserName }) => {
      test.skip(browserName !== "chromium", "the keyboard journey runs in Chromium");
      test.setTimeout(120_000);
      const keyboard = page.keyboard;
      const box = composer(page);
      const replies = page.getByTestId("assistant-message");

      // Register: Tab to the fields, type, Enter.
      await page.goto("/register");
      await hydrated(page);
      await tabTo(page, page.getByLabel("Email"), "the Email field");
      await keyboard.type(uniqueEmail("a11y-keys"));
      await keyboard.press("Tab");
      await expect(page.getByLabel("Password")).toBeFocused();
      await keyboard.type("correct horse 1");
      await keyboard.press("Enter");
      await expect(page).toHaveURL(/\/chat$/);
      await expect(page.getByRole("heading", { name: "What needs doing?" })).toBeVisible();

      // Start a conversation from the empty state: the reply arrives, the focus stays in the
      // composer (now the conversation's).
      await tabTo(page, box, "the composer");
      await keyboard.type("hello there");
      await keyboard.press("Enter");
      await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
      await expect(replies).toHaveCount(1);
      await expect(replies.last()).toContainText("word0 word1 word2");
      await expectFocusKept(page, "the first reply arrived");
      await expect(box).toBeFocused();

      // Send with Enter.
      await keyboard.type("lines 2");
      await keyboard.press("Enter");
      await expect(replies).toHaveCount(2);
      await expect(replies.last()).toContainText("line 2 of 2");
      await expectFocusKept(page, "the second reply arrived");
      await expect(box).toBeFocused();
      await expect(box).toHaveValue("");

      // A slow reply, stopped with Escape in the composer: kept, marked stopped.
      await keyboard.type("long story");
      await keyboard.press("Enter");
      await expect(page.getByTestId("streaming")).toContainText("word5 ");
      await expect(box).toBeFocused();
      await keyboard.press("Escape");
      const stopped = replies.nth(2);
      await expect(stopped).toHaveAttribute("data-status", "stopped");
      await expect(stopped).toContainText("word5");
      await expect(stopped).not.toContainText("word199");
      await expect(stopped).toContainText("Stopped");
      await expect(stopped.getByRole("button", { name: "Retry" })).toBeVisible();
      await expect(page.getByTestId("typing")).toBeHidden();
      await expectFocusKept(page, "the stopped reply arrived");
      await expect(box).toBeFocused();

      // `?` typed in the composer is just a question mark.
      const shortcuts = page.getByRole("dialog", { name: "Keyboard shortcuts" });
      await keyboard.press("?");
      await expect(box).toHaveValue("?");
      await expect(shortcuts).toHaveCount(0);
      await keyboard.press("Backspace");
      await expect(box).toHaveValue("");

      // `?` outside a text field opens the shortcuts; Escape closes them, the focus returns.
      const newConversation = page.getByRole("button", { name: "New conversation" });
      await tabTo(page, newConversation, "the New conversation button", "Shift+Tab");
      await keyboard.press("?");
      await expect(shortcuts).toBeVisible();
      await expect.poll(() => shortcuts.evaluate((el) => el.contains(document.activeElement))).toBe(true);
      await expect(shortcuts.getByRole("button", { name: "Close" })).toBeVisible();
      await expect(shortcuts).toContainText(/Shift.{0,3}Esc/i);
      await expect(shortcuts).toContainText(/(Ctrl|Control).{0,3}Shift.{0,3}O/i);
      await expect(shortcuts).toContainText("?");
      await keyboard.press("Escape");
      await expect(shortcuts).toHaveCount(0);
      await expect(newConversation).toBeFocused();

      // Shift+Escape from anywhere: to the composer.
      await keyboard.press("Shift+Escape");
      await expect(box).toBeFocused();

      // Ctrl+Shift+O: a new conversation, the composer focused.
      await keyboard.press("Control+Shift+O");
      await expect(page).toHaveURL(/\/chat$/);
      await expect(page.getByRole("heading", { name: "What needs doing?" })).toBeVisible();
      await expect(box).toBeFocused();
      await keyboard.type("lines 1");
      await keyboard.press("Enter");
      await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
      await expect(replies).toHaveCount(1);
      await expect(replies.last()).toContainText("line 1 of 1");
      await expectFocusKept(page, "the new conversation's reply arrived");
      await expect(box).toBeFocused();
      const items = page.getByTestId("conversation");
      await expect(items).toHaveCount(2);

      // At 375 px: the drawer opens from the keyboard, holds the focus while open, and Escape
      // closes it, back to its toggle.
      await page.setViewportSize({ width: 375, height: 740 });
      const sidebar = page.locator("#sidebar");
      const toggle = page.getByRole("button", { name: "Open the conversation list" });
      await expect(sidebar).not.toBeInViewport();
      await tabTo(page, toggle, "the drawer's toggle");
      await keyboard.press("Enter");
      await expect(sidebar).toBeInViewport();
      await expect.poll(() => focusInside(page, "#sidebar"), "the focus moved into the drawer").toBe(true);
      const stops = await sidebar.locator("a[href], button:not([disabled]), input, [tabindex]:not([tabindex='-1'])").count();
      for (let i = 0; i < stops + 3; i++) {
        await keyboard.press("Tab");
        expect(await focusInside(page, "#sidebar"), `Tab ${i + 1} left the open drawer for ${await focused(page)}`).toBe(true);
      }
      for (let i = 0; i < 3; i++) {
        await keyboard.press("Shift+Tab");
        expect(await focusInside(page, "#sidebar"), `Shift+Tab ${i + 1} left the open drawer for ${await focused(page)}`).toBe(true);
      }
      await keyboard.press("Escape");
      await expect(sidebar).not.toBeInViewport();
      await expect(toggle).toBeFocused();
      await expect(toggle).toHaveAttribute("aria-expanded", "false");
      await page.setViewportSize({ width: 1280, height: 800 });

      // Rename: its button, type, Enter.
      const renamed = "Renamed by keyboard";
      await tabTo(page, items.first().getByRole("button", { name: /^Rename/ }), "the first conversation's Rename button");
      await keyboard.press("Enter");
      const title = page.getByLabel("Conversation title");
      await expect(title).toBeFocused();
      await keyboard.press("Control+A");
      await keyboard.type(renamed);
      await keyboard.press("Enter");
      await expect(items.filter({ hasText: renamed })).toHaveCount(1);
      await expect(title).toHaveCount(0);
      await expectFocusKept(page, "the rename was saved");

      // Delete: its button, the confirmation takes the focus (on Cancel), Tab to Delete, Enter.
      const other = items.filter({ hasNotText: renamed });
      await expect(other).toHaveCount(1);
      await tabTo(page, other.getByRole("button", { name: /^Delete/ }), "the other conversation's Delete button");
      await keyboard.press("Enter");
      const confirm = page.getByRole("alertdialog", { name: "Confirm deletion" });
      await expect(confirm).toBeVisible();
      await expect(confirm.getByRole("button", { name: "Cancel" })).toBeFocused();
      const confirmDelete = confirm.getByRole("button", { name: "Delete", exact: true });
      for (let i = 0; i < 3 && !(await isFocused(confirmDelete)); i++) {
        await keyboard.press("Tab");
        expect(await focusInside(page, "[role=alertdialog]"), `Tab ${i + 1} left the confirmation`).toBe(true);
      }
      await expect(confirmDelete).toBeFocused();
      await keyboard.press("Enter");
      await expect(items).toHaveCount(1);
      await expect(items.first()).toContainText(renamed);
      await expectFocusKept(page, "the conversation was deleted");
    });

    test.describe("on a phone", () => {
      test.use({ viewport: { width: 375, height: 740 } });

      test("the task panel drawer holds the focus while open; Escape closes it, back to its toggle", async ({
        page,
      }) => {
        const keyboard = page.keyboard;
        await signedIn(page, "a11y-tasks-keys");
        // Two tasks: something to Tab between inside the panel.
        await startConversation(page, "tool add buy milk");
        await expect(page.getByTestId("assistant-message").last()).toContainText("Added buy milk to your list.");
        await send(page, "tool add call mum");
        await expect(page.getByTestId("assistant-message").nth(1)).toContainText("Added call mum to your list.");
        const panel = page.locator("#task-panel");
        await expect(panel.getByTestId("task")).toHaveCount(2);

        const toggle = page.getByRole("button", { name: "Tasks", exact: true });
        await expect(panel).not.toBeInViewport();
        await tabTo(page, toggle, "the task panel's toggle");
        await keyboard.press("Enter");
        await expect(toggle).toHaveAttribute("aria-expanded", "true");
        await expect(panel).toBeInViewport();
        await expect.poll(() => focusInside(page, "#task-panel"), "the focus moved into the task panel").toBe(true);
        const stops = await panel.locator("a[href], button:not([disabled]), input, [tabindex]:not([tabindex='-1'])").count();
        expect(stops, "the open panel has controls to Tab between").toBeGreaterThanOrEqual(2);
        for (let i = 0; i < stops + 3; i++) {
          await keyboard.press("Tab");
          expect(await focusInside(page, "#task-panel"), `Tab ${i + 1} left the open task panel for ${await focused(page)}`).toBe(true);
        }
        for (let i = 0; i < stops + 3; i++) {
          await keyboard.press("Shift+Tab");
          expect(await focusInside(page, "#task-panel"), `Shift+Tab ${i + 1} left the open task panel for ${await focused(page)}`).toBe(true);
        }
        await keyboard.press("Escape");
        await expect(panel).not.toBeInViewport();
        await expect(toggle).toBeFocused();
        await expect(toggle).toHaveAttribute("aria-expanded", "false");
        // Nothing was ticked on the way.
        await expect(panel.getByTestId("tasks-pending").getByTestId("task")).toHaveCount(2);
      });
    });
  });
}

test("the delete confirmation: Tab wraps inside it, Escape closes it, back to the Delete button", async ({ page }) => {
  const keyboard = page.keyboard;
  await signedIn(page, "a11y-confirm-keys");
  await startConversation(page, "lines 1");
  const items = page.getByTestId("conversation");
  await expect(items).toHaveCount(1);
  const del = items.first().getByRole("button", { name: /^Delete/ });
  await tabTo(page, del, "the conversation's Delete button", "Shift+Tab");
  await keyboard.press("Enter");
  const confirm = page.getByRole("alertdialog", { name: "Confirm deletion" });
  await expect(confirm).toBeVisible();
  const cancel = confirm.getByRole("button", { name: "Cancel" });
  const confirmDelete = confirm.getByRole("button", { name: "Delete", exact: true });
  await expect(cancel).toBeFocused();
  // Tab: Cancel, Delete, and round to Cancel again; Shift+Tab the other way round.
  for (const [key, next] of [
    ["Tab", confirmDelete],
    ["Tab", cancel],
    ["Tab", confirmDelete],
    ["Shift+Tab", cancel],
    ["Shift+Tab", confirmDelete],
    ["Shift+Tab", cancel],
  ] as const) {
    await keyboard.press(key);
    expect(await focusInside(page, "[role=alertdialog]"), `${key} left the confirmation for ${await focused(page)}`).toBe(true);
    await expect(next).toBeFocused();
  }
  // Escape: closed, nothing deleted, the focus on the Delete button that opened it.
  await keyboard.press("Escape");
  await expect(confirm).toHaveCount(0);
  await expect(items).toHaveCount(1);
  await expect(del).toBeFocused();
  // The same from its Delete button.
  await keyboard.press("Enter");
  await expect(cancel).toBeFocused();
  await keyboard.press("Tab");
  await expect(confirmDelete).toBeFocused();
  await keyboard.press("Escape");
  await expect(confirm).toHaveCount(0);
  await expect(items).toHaveCount(1);
  await expect(del).toBeFocused();
});

test("the shortcuts dialog holds the focus and lists Ctrl/⌘+K", async ({ page }) => {
  const keyboard = page.keyboard;
  await signedIn(page, "a11y-help-keys");
  await startConversation(page, "lines 1");
  const newConversation = page.getByRole("button", { name: "New conversation" });
  await tabTo(page, newConversation, "the New conversation button", "Shift+Tab");
  await keyboard.press("?");
  const dialog = page.getByRole("dialog", { name: "Keyboard shortcuts" });
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText(/Ctrl\s*\+\s*K/);
  await expect(dialog).toContainText(/⌘\s*\+\s*K/);
  await expect(dialog).toContainText("Search conversations");
  await expect.poll(() => focusInside(page, "[role=dialog]"), "the focus moved into the dialog").toBe(true);
  for (const key of ["Tab", "Tab", "Tab", "Shift+Tab", "Shift+Tab", "Shift+Tab"]) {
    await keyboard.press(key);
    expect(await focusInside(page, "[role=dialog]"), `${key} left the shortcuts dialog for ${await focused(page)}`).toBe(true);
  }
  await keyboard.press("Escape");
  await expect(dialog).toHaveCount(0);
  await expect(newConversation).toBeFocused();
});

test("a new message in another tab takes neither the focus nor the text from its composer", async ({ page }) => {
  await signedIn(page, "a11y-tabs");
  await startConversation(page, "lines 1");
  await expect(page.getByTestId("assistant-message").last()).toContainText("line 1 of 1");

  // Tab B: the same user and conversation, its event stream open, half a message typed.
  const other = await page.context().newPage();
  try {
    const opened = streamOpened(other);
    await other.goto(page.url());
    await hydrated(other);
    await opened;
    await expect(other.getByTestId("assistant-message")).toHaveCount(1);
    const otherBox = composer(other);
    await otherBox.focus();
    await other.keyboard.type("half a thought");
    await expect(otherBox).toHaveValue("half a thought");
    const activeId = () => other.evaluate(() => document.activeElement?.id ?? "");
    expect(await activeId()).toBe("composer-input");

    // Tab A sends and gets its reply; tab B shows both, live.
    await send(page, "lines 2");
    await expect(page.getByTestId("assistant-message")).toHaveCount(2);
    await expect(page.getByTestId("assistant-message").last()).toContainText("line 2 of 2");
    await expect(other.getByTestId("assistant-message")).toHaveCount(2);
    await expect(other.getByTestId("assistant-message").last()).toContainText("line 2 of 2");
    await expect(other.getByTestId("typing")).toBeHidden();
    await other.waitForTimeout(500);

    // In tab B: still the composer, the text intact, and typing goes on where it was.
    expect(await activeId(), "tab B's focus after the other tab's messages").toBe("composer-input");
    await expect(otherBox).toHaveValue("half a thought");
    await other.keyboard.type(", continued");
    await expect(otherBox).toHaveValue("half a thought, continued");
  } finally {
    await other.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Screen readers: the reply is announced once, when it is complete.
// ---------------------------------------------------------------------------------------------

test("a reply is announced once, when complete, in a visually hidden status region", async ({ page }) => {
  await signedIn(page, "a11y-announce");
  await startConversation(page, "lines 1");
  await expect(page.getByTestId("assistant-message").last()).toContainText("line 1 of 1");
  // The thread is a log (around its list of messages, which stays a list).
  await expect(page.getByRole("log", { name: "Messages" })).toBeVisible();
  await expect(page.getByRole("log", { name: "Messages" }).locator("ol.messages")).toHaveCount(1);

  const announcer = page.locator("#announcer");
  await expect(announcer).toHaveCount(1);
  await expect(announcer).toHaveAttribute("role", "status");
  await expect(announcer).not.toHaveAttribute("aria-hidden", "true");
  // Visually hidden, not display:none (which would hide it from screen readers too).
  const size = await announcer.boundingBox();
  expect(size, "#announcer is rendered (not display: none)").not.toBeNull();
  expect(size!.width).toBeLessThanOrEqual(1);
  expect(size!.height).toBeLessThanOrEqual(1);
  // The first reply's announcement is made before the count starts.
  await expect(announcer).toContainText("line 1 of 1");

  // Every change of the live region's text, recorded by a MutationObserver from before the
  // reply streams: each time its textContent differs from what it was, the new text.
  await page.evaluate(() => {
    const w = window as any;
    const el = document.getElementById("announcer")!;
    let last = el.textContent ?? "";
    w.__announced = [] as string[];
    w.__mutations = 0;
    w.__announcer = new MutationObserver((records) => {
      w.__mutations += records.length;
      const now = el.textContent ?? "";
      if (now !== last) {
        last = now;
        w.__announced.push(now);
      }
    });
    w.__announcer.observe(el, { childList: true, characterData: true, subtree: true });
  });
  /** What the region said since the last call (and how many mutations that took). */
  const said = async (): Promise<{ texts: string[]; mutations: number }> =>
    page.evaluate(() => {
      const w = window as any;
      const out = { texts: w.__announced.splice(0) as string[], mutations: w.__mutations as number };
      w.__mutations = 0;
      return out;
    });

  // 40 tokens stream: one announcement, of the whole reply, once it is complete.
  await send(page, "story please");
  await expect(page.getByTestId("streaming")).toContainText("word5 ");
  const reply = page.getByTestId("assistant-message").nth(1);
  await expect(reply).toContainText(story(40));
  await expect(page.getByTestId("streaming")).toBeHidden();
  await page.waitForTimeout(1000);
  const first = await said();
  const firstSaid = first.texts.filter((t) => t.trim().length > 0);
  expect(
    firstSaid,
    `#announcer during the 40-token reply (${first.mutations} mutations): ${JSON.stringify(first.texts)}`,
  ).toHaveLength(1);
  expect(firstSaid[0]).toContain("word0 word1 word2");
  expect(firstSaid[0]).toContain("word39");

  // The next reply: one announcement of its own.
  await send(page, "lines 3");
  await expect(page.getByTestId("assistant-message").nth(2)).toContainText("line 3 of 3");
  await expect(page.getByTestId("typing")).toBeHidden();
  await page.waitForTimeout(1000);
  const second = await said();
  const secondSaid = second.texts.filter((t) => t.trim().length > 0);
  expect(
    secondSaid,
    `#announcer during the second reply (${second.mutations} mutations): ${JSON.stringify(second.texts)}`,
  ).toHaveLength(1);
  expect(secondSaid[0]).toContain("line 1 of 3");
  expect(secondSaid[0]).toContain("line 3 of 3");
});

test("“Using add_task…” is said by a status region while the tool runs", async ({ browser }) => {
  test.setTimeout(90_000);
  // A server of its own whose offline assistant pauses 1.5 s before each answer (as in
  // chat.spec.ts), so the tool step lasts long enough to be read.
  const thinking = await startServer(thinkingPort, { OFFLINE_THINK_MS: "1500" });
  const context = await browser.newContext({ baseURL: thinking.url });
  try {
    const page = await context.newPage();
    await signedIn(page, "a11y-tool-status");
    await expect(page.getByText("Offline assistant")).toBeVisible();
    await send(page, "add a task to buy milk");
    await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
    // The typing indicator's label is a status region (polite), in the accessibility tree.
    const status = page.getByTestId("typing").getByRole("status");
    await expect(status).toHaveText("Using add_task…");
    const reply = page.getByTestId("assistant-message").last();
    await expect(reply).toContainText("Added task 1: Buy milk");
    await expect(page.getByTestId("typing")).toBeHidden();
  } finally {
    await context.close();
    await stopServer(thinking);
  }
});

test("an error reply is announced through #announcer", async ({ page }) => {
  await signedIn(page, "a11y-error-said");
  await startConversation(page, "lines 1");
  const announcer = page.locator("#announcer");
  await expect(announcer).toContainText("line 1 of 1");
  await send(page, "fail please");
  const reply = page.getByTestId("assistant-message").nth(1);
  await expect(reply).toHaveAttribute("data-status", "error");
  await expect(reply.getByRole("button", { name: "Retry" })).toBeVisible();
  // The region says the error reply (its first words, less the markdown marks it leaves out),
  // politely, as a status.
  const text = (await reply.locator(".bubble").innerText()).replace(/[*`#|_]/g, "");
  const words = text.trim().split(/\s+/).slice(0, 4).join(" ");
  expect(words.length, "the error reply has text").toBeGreaterThan(0);
  await expect(announcer).toHaveAttribute("role", "status");
  await expect(announcer).toContainText(words);
  await expect(announcer).not.toContainText("line 1 of 1");
});

// ---------------------------------------------------------------------------------------------
// Reflow (1.4.10): nothing scrolls sideways at 320 px, nor at 1280 px zoomed to 200 %.
// ---------------------------------------------------------------------------------------------

/** Nothing scrolls sideways: neither the page (its scrollWidth is its clientWidth) nor the thread. */
async function expectNoSidewaysScroll(page: Page, what: string): Promise<void> {
  await expect
    .poll(
      () =>
        page.evaluate(() => {
          const doc = document.documentElement;
          const thread = document.querySelector(".thread");
          return {
            document: doc.scrollWidth - doc.clientWidth,
            thread: thread ? thread.scrollWidth - thread.clientWidth : 0,
          };
        }),
      { message: `${what}: overflow past the width, in px` },
    )
    .toEqual({ document: 0, thread: 0 });
}

for (const [label, width, height] of [
  ["320×640", 320, 640],
  ["1280×800 at 200 % zoom", 640, 400],
] as const) {
  test.describe(`reflow at ${label}`, () => {
    test.use({ viewport: { width, height } });

    test("no horizontal scrolling, with a long code line and a long word", async ({ page }) => {
      const noSidewaysScroll = (what: string) => expectNoSidewaysScroll(page, `${what} at ${label}`);

      await page.goto("/login");
      await hydrated(page);
      await noSidewaysScroll("the sign-in page");

      await signedIn(page, "a11y-reflow");
      await noSidewaysScroll("the empty chat");
      await startConversation(page, `wide ${LONG_WORD}`);
      const reply = page.getByTestId("assistant-message").last();
      await expect(reply.locator(".code-block pre code")).toContainText("a".repeat(240));
      await expect(reply).toContainText(LONG_WORD);
      await expect(page.getByTestId("user-message").last()).toContainText(LONG_WORD);
      await noSidewaysScroll("a conversation with a long code line and a long word");
    });

    test("no horizontal scrolling with the drawer or the palette open, on the search and settings pages", async ({
      page,
    }) => {
      const noSidewaysScroll = (what: string) => expectNoSidewaysScroll(page, `${what} at ${label}`);
      await signedIn(page, "a11y-reflow-more");
      const word = uniqueWord();
      await startConversation(page, `lines 1 ${word}`);
      await expect(page.getByTestId("assistant-message").last()).toContainText("line 1 of 1");

      // The conversation drawer open.
      const sidebar = page.locator("#sidebar");
      await page.getByRole("button", { name: "Open the conversation list" }).click();
      await expect(sidebar).toBeInViewport();
      await expect.poll(() => sidebar.evaluate((el) => getComputedStyle(el).transform)).toBe("none");
      await noSidewaysScroll("the conversation drawer open");
      await page.keyboard.press("Escape");
      await expect(sidebar).not.toBeInViewport();

      // The search palette open, with a result.
      await page.keyboard.press("Control+k");
      const palette = page.getByRole("dialog", { name: "Search conversations" });
      await expect(palette).toBeVisible();
      const input = palette.getByRole("combobox", { name: "Search" });
      await expect(input).toBeFocused();
      await input.fill(word);
      await expect(palette.getByRole("option").first()).toBeVisible();
      await noSidewaysScroll("the search palette open with a result");
      await page.keyboard.press("Escape");
      await expect(palette).toBeHidden();

      // The search page with a result.
      await page.goto(`/chat/search?q=${encodeURIComponent(word)}`);
      await hydrated(page);
      await expect(page.getByTestId("search-result").first()).toBeVisible();
      await noSidewaysScroll("the search page with a result");

      // The settings page.
      await page.goto("/settings");
      await hydrated(page);
      await expect(page.getByRole("heading", { name: "Settings", exact: true })).toBeVisible();
      await expect(page.getByRole("button", { name: "Import", exact: true })).toBeVisible();
      await noSidewaysScroll("the settings page");
    });
  });
}

// ---------------------------------------------------------------------------------------------
// prefers-reduced-motion: no animated dots, no smooth scrolling.
// ---------------------------------------------------------------------------------------------

for (const colorScheme of ["light", "dark"] as const) {
  test.describe(`with reduced motion, ${colorScheme} mode`, () => {
    test.use({ reducedMotion: "reduce", colorScheme });

    test("the typing indicator does not animate and the thread does not scroll smoothly", async ({ page }) => {
      await signedIn(page, "a11y-motion");
      await startConversation(page, "lines 1");
      await send(page, "long story");
      const typing = page.getByTestId("typing");
      await expect(typing).toBeVisible();
      const dots = typing.locator(".dot");
      expect(await dots.count()).toBeGreaterThan(0);
      const animations = await dots.evaluateAll((els) =>
        els.map((el) => {
          const style = getComputedStyle(el);
          return { name: style.animationName, duration: style.animationDuration };
        }),
      );
      for (const a of animations) {
        const seconds = Math.max(...a.duration.split(",").map((d) => parseFloat(d) * (d.trim().endsWith("ms") ? 0.001 : 1)));
        expect(a.name === "none" || seconds <= 0.01, `a typing dot animates: ${JSON.stringify(a)}`).toBe(true);
      }
      // The thread's scroller (see follow.rs) and the page itself.
      const behaviours = await page.evaluate(() => ({
        thread: getComputedStyle(document.querySelector(".thread")!).scrollBehavior,
        messages: getComputedStyle(document.querySelector(".messages")!).scrollBehavior,
        root: getComputedStyle(document.documentElement).scrollBehavior,
      }));
      expect(behaviours.thread).not.toBe("smooth");
      expect(behaviours.messages).not.toBe("smooth");
      expect(behaviours.root).not.toBe("smooth");
      await page.getByTestId("stop").click();
      await expect(page.getByTestId("assistant-message").last()).toHaveAttribute("data-status", "stopped");
    });
  });
}
