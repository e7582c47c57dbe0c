import { test, expect } from "@playwright/test";
import { hydrated, register, uniqueEmail } from "./helpers";

test("register, stay signed in across reloads, log out", async ({ page }) => {
  const email = uniqueEmail("auth");
  await register(page, email);
  await expect(page.getByTestId("current-user")).toHaveText(email);

  await page.reload();
  await hydrated(page);
  await expect(page).toHaveURL(/\/chat/);
  await expect(page.getByTestId("current-user")).toHaveText(email);

  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto("/chat");
  await expect(page).toHaveURL(/\/login/);

  // And back in with the same password.
  await hydrated(page);
  await page.getByLabel("Email").fill(email.toUpperCase());
  await page.getByLabel("Password").fill("correct horse 1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/chat/);
  await expect(page.getByTestId("current-user")).toHaveText(email);
});

test("a wrong password is refused with a message", async ({ page }) => {
  const email = uniqueEmail("wrongpw");
  await register(page, email);
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("wrong email or password");
  await expect(page).toHaveURL(/\/login/);
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("register, log out and log in with plain forms", async ({ page }) => {
    const email = uniqueEmail("nojs");
    await page.goto("/register");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("correct horse 1");
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page).toHaveURL(/\/chat/);
    await expect(page.getByTestId("current-user")).toHaveText(email);

    await page.getByRole("button", { name: "Log out" }).click();
    await expect(page).toHaveURL(/\/login/);
    await page.goto("/chat");
    await expect(page).toHaveURL(/\/login/);

    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("wrong password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert")).toHaveText("wrong email or password");

    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("correct horse 1");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL(/\/chat/);
    await expect(page.getByTestId("current-user")).toHaveText(email);
  });
});

test("every page's CSP allows only its own nonced scripts, and the page still hydrates", async ({ page }) => {
  const violations: string[] = [];
  page.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) violations.push(message.text());
  });
  const scriptSrc = (csp: string | undefined) =>
    (csp ?? "").split(";").map((d) => d.trim()).find((d) => d.startsWith("script-src")) ?? "";
  const visit = async (path: string) => {
    const response = await page.goto(path);
    const scripts = scriptSrc(response?.headers()["content-security-policy"]);
    expect(scripts, path).toMatch(/'nonce-[A-Za-z0-9_-]+'/);
    expect(scripts, path).not.toContain("unsafe-inline");
    await hydrated(page);
  };
  await visit("/login");
  await visit("/register");
  await visit("/no-such-page");
  await register(page, uniqueEmail("csp"));
  await hydrated(page);
  await visit("/chat");
  await page.getByPlaceholder("Type a message...").fill("Add a task to water the plants");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
  await expect(page.getByTestId("assistant-message").last()).toContainText("Water the plants");
  await visit(page.url());
  await expect(page.getByTestId("assistant-message").last()).toContainText("Water the plants");
  expect(violations).toEqual([]);
});
