// Reminders (issue 26): two tabs of one user, each on its own replica (two release servers on
// one database, NATS between them); two tasks come due: each tab shows one card for each and
// makes one browser notification for each (with the same tag in both tabs, so the browser
// shows one); "Snooze" in one tab closes that card in both; "Mark done" in the other ticks the
// task off and closes its card in both. The second tab is dark and
// 375 px wide.
import { test, expect, BrowserContext, Page } from "@playwright/test";
import { apiCall, expectNoAxeViolations, hydrated, streamOpened, uniqueEmail } from "./helpers";
import { startServer, stopServer, ServerHandle } from "../server";

const base = Number(process.env.E2E_PORT ?? 3100) + 80;
const password = "correct horse 1";
let replicas: ServerHandle[] = [];

test.beforeAll(async () => {
  const env = { EVENT_BUS_URL: process.env.E2E_NATS_URL ?? "nats://127.0.0.1:4222" };
  replicas = [await startServer(base, env), await startServer(base + 1, env)];
});

test.afterAll(async () => {
  for (const r of replicas) await stopServer(r);
});

/** Records every notification the page makes (and still makes it). */
async function recordNotifications(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const made: { title: string; tag?: string; body?: string }[] = [];
    (window as any).__notifications = made;
    const Original = window.Notification;
    class Recorded extends Original {
      constructor(title: string, options?: NotificationOptions) {
        super(title, options);
        made.push({ title, tag: options?.tag, body: options?.body });
      }
    }
    (window as any).Notification = Recorded;
  });
}

/** The next whole minute 8 to 12 s away (due times are minutes), as a wall-clock time in `zone`. */
async function dueSoon(zone: string): Promise<{ due: string; at: number }> {
  for (;;) {
    const now = Date.now();
    const next = Math.ceil(now / 60_000) * 60_000;
    if (next - now >= 8_000 && next - now <= 12_000) {
      const parts = new Intl.DateTimeFormat("en-CA", {
        timeZone: zone,
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
      }).formatToParts(new Date(next));
      const part = (type: string) => parts.find((p) => p.type === type)!.value;
      return { due: `${part("year")}-${part("month")}-${part("day")}T${part("hour")}:${part("minute")}`, at: next };
    }
    const wait = next - now > 12_000 ? next - now - 12_000 : next - now + 48_000;
    await new Promise((r) => setTimeout(r, wait + 20));
  }
}

test("a task coming due reminds each tab on each replica once", async ({ browser }) => {
  test.setTimeout(150_000);
  const [a, b] = replicas;
  // Half an hour off UTC, so a due time read in the wrong zone would be noticed.
  const context = await browser.newContext({ timezoneId: "Asia/Kolkata" });
  try {
    await remindBoth(context, a, b);
  } finally {
    await context.close();
  }
});

async function remindBoth(context: BrowserContext, a: ServerHandle, b: ServerHandle): Promise<void> {
  await context.grantPermissions(["notifications"], { origin: a.url });
  await context.grantPermissions(["notifications"], { origin: b.url });
  const first = await context.newPage();
  const second = await context.newPage();
  await recordNotifications(first);
  await recordNotifications(second);
  await second.setViewportSize({ width: 375, height: 740 });
  await second.emulateMedia({ colorScheme: "dark" });

  const email = uniqueEmail("remind");
  await first.goto(`${a.url}/register`);
  await hydrated(first);
  await first.getByLabel("Email").fill(email);
  await first.getByLabel("Password").fill(password);
  const firstStream = streamOpened(first);
  await first.getByRole("button", { name: "Create account" }).click();
  await expect(first).toHaveURL(/\/chat/);
  await firstStream;
  // The same browser, signed in (cookies are per host), in a tab on the other replica.
  const secondStream = streamOpened(second);
  await second.goto(`${b.url}/chat`);
  await hydrated(second);
  await secondStream;

  const login = await fetch(`${a.url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const token = (await login.json()).access_token as string;
  // The first sign-in took the browser's zone (Chromium names it by its older alias).
  let zone = "";
  await expect
    .poll(async () => (zone = (await apiCall(a.url, token, "GET", "/api/account/settings")).time_zone ?? ""), {
      timeout: 10_000,
    })
    .toMatch(/^Asia\/(Kolkata|Calcutta)$/);
  const { due, at } = await dueSoon(zone);
  const task = await apiCall(a.url, token, "POST", "/api/tasks", { title: "Call the dentist", due });
  const plants = await apiCall(b.url, token, "POST", "/api/tasks", { title: "Water the plants", due });

  for (const page of [first, second]) {
    const card = page.locator(".reminder", { hasText: "Call the dentist" });
    await expect(card).toHaveCount(1, { timeout: 25_000 });
    await expect(card).toContainText(`Due at ${due.slice(11)}`);
    await expect(card).toHaveAttribute("role", "alert");
    await expect(page.locator(".reminder", { hasText: "Water the plants" })).toHaveCount(1);
  }
  expect(Date.now()).toBeGreaterThanOrEqual(at);
  // Nothing reminds again.
  await first.waitForTimeout(3_000);
  for (const page of [first, second]) {
    await expect(page.locator(".reminder")).toHaveCount(2);
    const made = await page.evaluate(() => (window as any).__notifications);
    const body = `Due at ${due.slice(11)}`;
    expect(made).toEqual(
      expect.arrayContaining([
        { title: "Call the dentist", tag: `reminder-${task.id}-${at / 1000}`, body },
        { title: "Water the plants", tag: `reminder-${plants.id}-${at / 1000}`, body },
      ]),
    );
    expect(made).toHaveLength(2);
  }
  // On a phone in dark mode the card fits the screen and is dark.
  const box = (await second.locator(".reminder").first().boundingBox())!;
  expect(box.x).toBeGreaterThanOrEqual(0);
  expect(box.x + box.width).toBeLessThanOrEqual(375);
  const background = await second
    .locator(".reminder")
    .first()
    .evaluate((el) => getComputedStyle(el).backgroundColor);
  expect(background).toBe("rgb(23, 28, 35)");
  await expectNoAxeViolations(first, "a reminder card, light");
  await expectNoAxeViolations(second, "a reminder card, dark, 375 px");

  // Snoozed from one tab: its card closes in both.
  await second.locator(".reminder", { hasText: "Water the plants" }).getByRole("button", { name: "Snooze 10 min" }).click();
  for (const page of [first, second]) {
    await expect(page.locator(".reminder", { hasText: "Water the plants" })).toHaveCount(0);
  }
  // Done from the other tab: the task is ticked off and its card closes in both.
  await first.locator(".reminder").getByRole("button", { name: "Mark done" }).click();
  for (const page of [first, second]) await expect(page.locator(".reminder")).toHaveCount(0);
  const tasks = await apiCall(a.url, token, "GET", "/api/tasks");
  expect(tasks.find((t: any) => t.id === task.id).completed).toBe(true);
}
