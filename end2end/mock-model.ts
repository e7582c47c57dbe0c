// A scripted OpenAI-compatible model over real HTTP for the browser tests: streams its answer
// (chat.completion.chunk events) token by token, and counts requests the server abandoned.
import http from "node:http";
import { AddressInfo } from "node:net";

export interface MockModel {
  baseUrl: string;
  /** Requests whose connection the server closed before the answer ended (a Stop). */
  closed(): number;
  close(): Promise<void>;
}

/** The answer for a prompt: "long …" streams 200 tokens, "story …" 40, "lines N" a list of N
 * lines (one per token), 50 ms apart. */
function tokensFor(lastUser: string): string[] {
  const lines = /^lines (\d+)/.exec(lastUser);
  if (lines) {
    const n = Number(lines[1]);
    return Array.from({ length: n }, (_, i) => `- line ${i + 1} of ${n}\n`);
  }
  const n = lastUser.startsWith("long") ? 200 : lastUser.startsWith("story") ? 40 : 3;
  return Array.from({ length: n }, (_, i) => `word${i} `);
}

export async function startMockModel(gapMs = 50): Promise<MockModel> {
  let closed = 0;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const request = JSON.parse(body || "{}");
      const messages: any[] = request.messages ?? [];
      const lastUser = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
      const tokens = tokensFor(String(lastUser));
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const chunk = (delta: object, finish: string | null = null) =>
        `data: ${JSON.stringify({
          id: "chatcmpl-e2e", object: "chat.completion.chunk", created: 0, model: "scripted",
          choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
        })}\n\n`;
      res.write(chunk({ role: "assistant" }));
      let i = 0;
      let finished = false;
      const timer = setInterval(() => {
        if (i < tokens.length) {
          res.write(chunk({ content: tokens[i++] }));
          return;
        }
        clearInterval(timer);
        finished = true;
        res.write(chunk({}, "stop"));
        res.end("data: [DONE]\n\n");
      }, gapMs);
      res.on("close", () => {
        clearInterval(timer);
        if (!finished) closed += 1;
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    closed: () => closed,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
