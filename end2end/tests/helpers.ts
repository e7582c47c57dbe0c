import { expect, Page, Response as PageResponse } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";

/** A unique email per test run, so tests never collide. */
export function uniqueEmail(prefix = "user"): string {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

/** A word no other data has: lowercase letters only (one token for Postgres's parser), ending
 * in a consonant no English suffix rule strips, so its stem keeps every typed prefix. */
export function uniqueWord(): string {
  const letters = "bcdfghjkmnpqrtvwxz";
  let tail = "";
  for (let i = 0; i < 6; i++) tail += letters[Math.floor(Math.random() * letters.length)];
  return `quoll${tail}k`;
}

/** Waits until the WASM has hydrated the page (the app sets data-hydrated on <body>). */
export async function hydrated(page: Page): Promise<void> {
  await expect(page.locator("body[data-hydrated]")).toHaveCount(1, { timeout: 15_000 });
}

export async function register(page: Page, email: string, password = "correct horse 1"): Promise<void> {
  await page.goto("/register");
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/chat/);
}

/** Resolves when the page's event stream has answered 200. Start it before whatever opens it. */
export function streamOpened(page: Page): Promise<PageResponse> {
  return page.waitForResponse(
    (res) => new URL(res.url()).pathname === "/api/chat/events" && res.status() === 200,
    { timeout: 20_000 },
  );
}

/** The axe rules checked: WCAG 2.0, 2.1 and 2.2, levels A and AA. */
export const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

/** Runs axe on the page as it is now; fails listing every violation and where it is. */
export async function expectNoAxeViolations(page: Page, state: string): Promise<void> {
  const results = await new AxeBuilder({ page }).withTags(AXE_TAGS).analyze();
  const report = results.violations
    .map((v) => {
      const nodes = v.nodes
        .map((n) => `      ${n.target.map((t) => (Array.isArray(t) ? t.join(" >>> ") : t)).join(" ")}`)
        .join("\n");
      return `  - ${v.id} [${v.impact ?? "no impact"}]: ${v.help}\n${nodes}`;
    })
    .join("\n");
  expect(
    results.violations.map((v) => v.id),
    `${state}: ${results.violations.length} axe violation(s)\n${report}`,
  ).toEqual([]);
}

/** A JSON API call to the server at `base` with a bearer token; must succeed. */
export async function apiCall(base: string, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  expect(res.status, `${method} ${path}: ${text}`).toBeLessThan(300);
  return text ? JSON.parse(text) : null;
}
