import { expect, Page } from "@playwright/test";

/** A unique email per test run, so tests never collide. */
export function uniqueEmail(prefix = "user"): string {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
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
