// Part of the benchmark (SPEC §11 "interactive ≤ 1 s after load on loopback"): opens a chat page
// in headless Chromium with an empty cache, several times, and reports how long after the start
// of navigation the page became interactive (the WASM hydrated: `body[data-hydrated]`).
// Usage: node scripts/bench-interactive.mjs <base url> <session token> <path> [runs]
// Prints one JSON line: { "samples_ms": [...], "p50_ms": n, "max_ms": n }.
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "end2end", "package.json"));
const { chromium } = require("@playwright/test");

const [base, token, path, runsArg] = process.argv.slice(2);
if (!base || !token || !path) {
  console.error("usage: bench-interactive.mjs <base url> <session token> <path> [runs]");
  process.exit(2);
}
const runs = Number(runsArg ?? 7);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const samples = [];
try {
  for (let i = 0; i < runs; i++) {
    // A fresh context each time: no HTTP cache, no compiled-WASM cache.
    const context = await browser.newContext();
    await context.addCookies([{ name: "chatkit_session", value: token, url: base }]);
    await context.addInitScript(() => {
      new MutationObserver((_, observer) => {
        if (document.body?.hasAttribute("data-hydrated")) {
          window.__interactiveAt = performance.now();
          observer.disconnect();
        }
      }).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-hydrated"] });
    });
    const page = await context.newPage();
    await page.goto(base + path);
    await page.waitForSelector("body[data-hydrated]", { timeout: 15_000 });
    // Signed in and on the conversation, not bounced to the login page.
    if (new URL(page.url()).pathname !== path || (await page.locator(".thread").count()) !== 1) {
      throw new Error(`expected the chat page at ${path}, got ${page.url()}`);
    }
    samples.push(await page.evaluate(() => window.__interactiveAt));
    await context.close();
  }
} finally {
  await browser.close();
}
const sorted = [...samples].sort((a, b) => a - b);
console.log(
  JSON.stringify({
    samples_ms: samples.map((s) => Math.round(s)),
    p50_ms: Math.round(sorted[Math.floor(sorted.length / 2)]),
    max_ms: Math.round(sorted[sorted.length - 1]),
  }),
);
