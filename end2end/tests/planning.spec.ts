// The task panel plans (issue 26): Overdue, Today and Upcoming (by day) sections with due dates
// in words, priorities and tags; a tag filter; due date, priority and tags edited in place; in
// light and dark mode, on a 375 px screen. The server's clock stands at Tuesday 10 March 2026,
// 10:00 in Berlin (CLOCK_AT); the browser is in Berlin, and the new account takes its zone.
import { test, expect, Page } from "@playwright/test";
import { apiCall, expectNoAxeViolations } from "./helpers";
import { startServer, stopServer, ServerHandle } from "../server";

const port = Number(process.env.E2E_PORT ?? 3100) + 70;
const url = `http://127.0.0.1:${port}`;
const password = "correct horse 1";
let server: ServerHandle;

test.use({ timezoneId: "Europe/Berlin" });

test.beforeAll(async () => {
  server = await startServer(port, { CLOCK_AT: "2026-03-10T09:00:00Z" });
});

test.afterAll(async () => {
  await stopServer(server);
});

function api(token: string, method: string, path: string, body?: unknown): Promise<any> {
  return apiCall(url, token, method, path, body);
}

/** A new user in Berlin with four tasks, signed in on `page`; returns their bearer token. */
async function plannedUser(page: Page): Promise<string> {
  const email = `planning-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  await page.goto(`${url}/register`);
  await expect(page.locator("body[data-hydrated]")).toHaveCount(1, { timeout: 15_000 });
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/chat/);
  await expect(page.locator("body[data-hydrated]")).toHaveCount(1, { timeout: 15_000 });
  const login = await fetch(`${url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const token = (await login.json()).access_token as string;
  // The first sign-in gave the account the browser's time zone.
  await expect
    .poll(async () => (await api(token, "GET", "/api/account/settings")).time_zone, { timeout: 10_000 })
    .toBe("Europe/Berlin");
  await api(token, "POST", "/api/tasks", { title: "Pay the bill", due: "2026-03-09" });
  await api(token, "POST", "/api/tasks", {
    title: "Stand-up notes",
    due: "2026-03-10T17:00",
    priority: 1,
    tags: ["work"],
  });
  await api(token, "POST", "/api/tasks", { title: "Call the dentist", due: "2026-03-13", tags: ["health"] });
  await api(token, "POST", "/api/tasks", { title: "Read a book" });
  return token;
}

function panel(page: Page) {
  return page.locator("#task-panel");
}

test("the panel shows what is overdue, due today and coming up, filters by tag, edits in place", async ({ page }) => {
  const token = await plannedUser(page);
  const tasks = panel(page);
  // Every section, filled live by the event stream as the tasks were added.
  await expect(tasks.getByTestId("section-overdue")).toContainText("Pay the bill");
  await expect(tasks.getByTestId("section-overdue")).toContainText("overdue 1 day");
  const today = tasks.getByTestId("section-today");
  await expect(today).toContainText("Stand-up notes");
  await expect(today.getByTestId("task-due")).toHaveText("today 17:00");
  await expect(today.getByTestId("task-priority")).toHaveText("P1");
  await expect(today.getByTestId("task-tag")).toHaveText("#work");
  const upcoming = tasks.getByTestId("section-upcoming");
  await expect(upcoming).toContainText("Friday 13 March");
  await expect(upcoming.getByTestId("task-due")).toHaveText("Fri");
  await expect(tasks.getByTestId("section-later")).toContainText("Read a book");

  // A tag shows only its tasks, until "Show all".
  await today.getByRole("button", { name: "Show only tasks tagged work" }).click();
  await expect(tasks.getByTestId("tag-filter")).toContainText("#work");
  await expect(tasks.getByTestId("task")).toHaveCount(1);
  await tasks.getByRole("button", { name: "Show all" }).click();
  await expect(tasks.getByTestId("task")).toHaveCount(4);

  // "Read a book": due tomorrow at 08:30, priority 2, tagged home — edited in place.
  await tasks.getByRole("button", { name: "Edit task 4" }).click();
  const editor = tasks.getByTestId("task-editor");
  await editor.getByLabel("Due").fill("2026-03-11");
  await editor.getByLabel("Time").fill("08:30");
  await editor.getByLabel("Priority").selectOption("2");
  await editor.getByLabel("Tags").fill("home");
  await editor.getByRole("button", { name: "Save" }).click();
  await expect(editor).toHaveCount(0);
  await expect(upcoming).toContainText("Tomorrow");
  await expect(upcoming).toContainText("tomorrow 08:30");
  await expect(tasks.getByTestId("section-later")).toHaveCount(0);
  const saved = await api(token, "GET", "/api/tasks/4");
  expect(saved.due).toBe("2026-03-11T08:30");
  expect(saved.priority).toBe(2);
  expect(saved.tags).toEqual(["home"]);
});

for (const colorScheme of ["light", "dark"] as const) {
  test.describe(`on a 375 px screen, ${colorScheme} mode`, () => {
    test.use({ colorScheme, viewport: { width: 375, height: 812 } });

    test("the planned panel is usable and passes axe", async ({ page }) => {
      await plannedUser(page);
      await page.getByRole("button", { name: "Tasks", exact: true }).click();
      const tasks = panel(page);
      await expect(tasks.getByTestId("section-today")).toBeVisible();
      await expect(tasks.getByTestId("section-overdue")).toContainText("overdue 1 day");
      // Nothing wider than the screen.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      await tasks.getByRole("button", { name: "Edit task 2" }).click();
      await expect(tasks.getByTestId("task-editor")).toBeVisible();
      await expectNoAxeViolations(page, `planned task panel, editor open, ${colorScheme}, 375 px`);
    });
  });
}
