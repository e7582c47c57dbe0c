// Other origins calling the server: the Trunk CSR build of the chat UI, the example app under
// examples/ (feature `client`), and a page whose origin is not allowed. scripts/test.sh builds
// both apps against the suite's server (CHATKIT_SERVER_URL) and the server lists their two
// origins in CORS_ALLOWED_ORIGINS (server.ts).
import { test, expect, Page } from "@playwright/test";
import type { Server } from "node:http";
import path from "node:path";
import { serveStatic } from "../static-server";
import { hydrated, uniqueEmail } from "./helpers";

const apiPort = Number(process.env.E2E_PORT ?? 3100);
const api = `http://127.0.0.1:${apiPort}`;
const csrOrigin = `http://127.0.0.1:${apiPort + 1}`;
const exampleOrigin = `http://127.0.0.1:${apiPort + 2}`;
const strangerOrigin = `http://127.0.0.1:${apiPort + 3}`;
const root = path.resolve(__dirname, "../..");

let servers: Server[] = [];

test.beforeAll(async () => {
  servers = await Promise.all([
    serveStatic(path.join(root, "target/csr"), apiPort + 1),
    serveStatic(path.join(root, "examples/tasks-client/dist"), apiPort + 2),
    serveStatic(path.join(root, "end2end/blank"), apiPort + 3),
  ]);
});

test.afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

/** Every request the page makes to our server, to prove the app really is cross-origin. */
function apiCalls(page: Page): string[] {
  const calls: string[] = [];
  page.on("request", (req) => {
    if (req.url().startsWith(api)) calls.push(new URL(req.url()).pathname);
  });
  return calls;
}

test("the Trunk CSR build on another origin signs in, chats, and keeps its session", async ({ page }) => {
  const calls = apiCalls(page);
  await page.goto(`${csrOrigin}/register`);
  await hydrated(page);
  // The page itself is static: no server rendering happened.
  await page.getByLabel("Email").fill(uniqueEmail("csr"));
  await page.getByLabel("Password").fill("correct horse 1");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(new RegExp(`^${csrOrigin}/chat`));

  await page.getByPlaceholder("Type a message...").fill("Add a task to buy stamps");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
  await expect(page.getByTestId("assistant-message").last()).toContainText("Added task 1: Buy stamps");
  await expect(page.getByTestId("tasks-pending")).toContainText("Buy stamps");
  expect(calls).toContain("/sfn/auth/register");
  expect(calls).toContain("/sfn/chat/send");

  // Reload: the session survives (the token is kept), the conversation is still there.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("user-message").first()).toContainText("Add a task to buy stamps");
  await expect(page.getByTestId("assistant-message").first()).toContainText("Added task 1: Buy stamps");

  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(new RegExp(`^${csrOrigin}/login`));
  expect(await page.evaluate(() => localStorage.getItem("chatkit.token"))).toBeNull();
});

test("the example app on a third origin chats through the client feature", async ({ page, request }) => {
  const email = uniqueEmail("example");
  const created = await request.post(`${api}/api/auth/register`, {
    data: { email, password: "correct horse 1" },
  });
  expect(created.status()).toBe(201);

  const calls = apiCalls(page);
  await page.goto(exampleOrigin);
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("correct horse 1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByLabel("Message").fill("Add a task to water the plants");
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page.getByTestId("reply")).toContainText("Added task 1: Water the plants");
  await expect(page.getByTestId("tasks")).toContainText("Water the plants");
  await expect(page.getByTestId("conversations").locator("li")).toHaveCount(1);
  expect(calls).toEqual(expect.arrayContaining(["/sfn/auth/login", "/sfn/chat/start", "/sfn/tasks/list"]));

  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("conversations").locator("li")).toHaveCount(1);
});

test("an origin that is not allowed is refused", async ({ page, request }) => {
  const email = uniqueEmail("stranger");
  const created = await request.post(`${api}/api/auth/register`, {
    data: { email, password: "correct horse 1" },
  });
  const token = (await created.json()).access_token as string;

  await page.goto(strangerOrigin);
  const outcomes = await page.evaluate(
    async ({ api, token }) => {
      const attempt = async (init: RequestInit) => {
        try {
          const res = await fetch(`${api}/sfn/chat/conversations`, { method: "POST", ...init });
          return `status ${res.status}`;
        } catch (err) {
          return "blocked";
        }
      };
      return {
        // Needs a preflight (Authorization header).
        bearer: await attempt({ headers: { authorization: `Bearer ${token}` } }),
        // A credentialed request (cookies), no preflight.
        credentialed: await attempt({ credentials: "include" }),
      };
    },
    { api, token },
  );
  expect(outcomes).toEqual({ bearer: "blocked", credentialed: "blocked" });

  // The same calls from an allowed origin go through.
  await page.goto(exampleOrigin);
  const allowed = await page.evaluate(
    async ({ api, token }) => {
      const res = await fetch(`${api}/sfn/chat/conversations`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      return res.status;
    },
    { api, token },
  );
  expect(allowed).toBe(200);

  // What the browser saw: the preflight from the stranger is answered 403, without CORS headers.
  const preflight = await request.fetch(`${api}/sfn/chat/conversations`, {
    method: "OPTIONS",
    headers: {
      origin: strangerOrigin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization",
    },
  });
  expect(preflight.status()).toBe(403);
  expect(preflight.headers()["access-control-allow-origin"]).toBeUndefined();
});
