import { test, expect, Page, Locator } from "@playwright/test";
import { hydrated, uniqueEmail } from "./helpers";
import { startServer, stopServer, ServerHandle } from "../server";
import { startMockModel, MockModel } from "../mock-model";

// The thread keeps to the bottom while the reader is there, against a release server whose
// scripted model streams each answer line by line, 50 ms a line.
const base = Number(process.env.E2E_PORT ?? 3100);
let model: MockModel;
let server: ServerHandle;

test.beforeAll(async () => {
  model = await startMockModel();
  server = await startServer(base + 40, {
    OPENAI_API_KEY: "e2e",
    OPENAI_BASE_URL: model.baseUrl,
    MODEL_MAX_RETRIES: "0",
  });
});

test.afterAll(async () => {
  await stopServer(server);
  await model.close();
});

async function send(page: Page, text: string) {
  await page.getByPlaceholder("Type a message...").fill(text);
  await page.getByRole("button", { name: "Send", exact: true }).click();
}

/** Whether the last message's bottom is inside the thread's visible area. */
async function lastMessageVisible(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const thread = document.querySelector(".thread")!.getBoundingClientRect();
    const items = document.querySelectorAll(".messages > li.message");
    const last = items[items.length - 1].getBoundingClientRect();
    return last.bottom <= thread.bottom + 1 && last.bottom > thread.top;
  });
}

async function distanceFromBottom(thread: Locator): Promise<number> {
  return thread.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
}

for (const [width, height] of [
  [1280, 800],
  [375, 700],
]) {
  test(`the thread follows the answer you asked for at ${width}×${height}`, async ({ browser }) => {
    const context = await browser.newContext({ viewport: { width, height } });
    const page = await context.newPage();
    await page.goto(`${server.url}/register`);
    await hydrated(page);
    await page.getByLabel("Email").fill(uniqueEmail(`follow-${width}`));
    await page.getByLabel("Password").fill("correct horse 1");
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page).toHaveURL(/\/chat/);
    await hydrated(page);
    await send(page, "lines 1");
    await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
    await expect(page.getByTestId("assistant-message").last()).toContainText("line 1 of 1");

    const pill = page.getByRole("button", { name: "New messages ↓" });
    const thread = page.locator(".thread");
    // Ten sends whose answers are 1 to 40 lines: after each, the answer's end is in view.
    for (const n of [3, 12, 40, 1, 25, 8, 33, 17, 40, 5]) {
      await send(page, `lines ${n}`);
      // While it streams, the growing answer stays in view too.
      if (n >= 25) {
        await expect(page.getByTestId("streaming")).toContainText(`line ${Math.floor(n / 2)} of ${n}`);
        expect(await lastMessageVisible(page), `streaming ${n}`).toBe(true);
      }
      await expect(page.getByTestId("assistant-message").last()).toContainText(`line ${n} of ${n}`);
      await page.waitForTimeout(100);
      expect(await lastMessageVisible(page), `after ${n} lines`).toBe(true);
      await expect(pill).toHaveCount(0);
    }

    // The on-screen keyboard (the view gets shorter) mid-answer: still at the bottom.
    await send(page, "lines 30");
    await expect(page.getByTestId("streaming")).toContainText("line 5 of 30");
    await page.setViewportSize({ width, height: Math.round(height * 0.6) });
    await expect(page.getByTestId("assistant-message").last()).toContainText("line 30 of 30");
    await page.waitForTimeout(100);
    expect(await lastMessageVisible(page), "after the view got shorter").toBe(true);
    await page.setViewportSize({ width, height });

    // A reader who scrolls up during an answer sees the pill, and the view stays put.
    await send(page, "lines 40");
    await expect(page.getByTestId("streaming")).toContainText("line 5 of 40");
    const box = (await thread.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, -1500);
    await expect(pill).toBeVisible();
    const top = await thread.evaluate((el) => el.scrollTop);
    await page.waitForTimeout(400);
    expect(await thread.evaluate((el) => el.scrollTop)).toBe(top);
    await pill.click();
    await expect(pill).toHaveCount(0);
    await expect.poll(() => distanceFromBottom(thread)).toBeLessThanOrEqual(2);
    await expect(page.getByTestId("assistant-message").last()).toContainText("line 40 of 40");
    expect(await lastMessageVisible(page)).toBe(true);

    // Reloaded mid-answer: back at the bottom, following the rest of it.
    await send(page, "lines 40");
    await expect(page.getByTestId("streaming")).toContainText("line 5 of 40");
    await page.reload();
    await hydrated(page);
    await expect(page.getByTestId("assistant-message").last()).toContainText("line 40 of 40");
    await page.waitForTimeout(100);
    expect(await lastMessageVisible(page), "after a reload mid-answer").toBe(true);
    await expect(pill).toHaveCount(0);
    await context.close();
  });
}

test("the empty state's examples send with one click, and help explains the assistant", async ({ browser }) => {
  const offline = await startServer(base + 41, {});
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${offline.url}/register`);
    await hydrated(page);
    await page.getByLabel("Email").fill(uniqueEmail("examples"));
    await page.getByLabel("Password").fill("correct horse 1");
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page).toHaveURL(/\/chat/);
    await hydrated(page);
    const examples = page.getByRole("list", { name: "Examples to try" }).getByRole("button");
    await expect(examples).toHaveCount(3);
    await page.getByRole("button", { name: "What can you do?" }).click();
    await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}/);
    const reply = page.getByTestId("assistant-message").last();
    await expect(reply).toContainText("I'm the offline assistant");
    await expect(reply.locator("table")).toContainText("add a task");
    await expect(reply.getByTestId("tool-call")).toHaveCount(0);
  } finally {
    await context.close();
    await stopServer(offline);
  }
});
