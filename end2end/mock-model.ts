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

/** A markdown answer with a list, inline code, a fenced code block and a table. */
export const MARKDOWN_REPLY = [
  "Here is a summary of your list:\n",
  "\n",
  "- the first item, with `inline code`\n",
  "- the second item\n",
  "\n",
  "```rust\n",
  "fn main() {\n",
  '    println!("buy milk");\n',
  "}\n",
  "```\n",
  "\n",
  "| # | Task | Status |\n",
  "|---:|---|---|\n",
  "| 1 | Buy milk | pending |\n",
  "| 2 | Call mum | done |\n",
];

/** An unbroken word of 270 characters (reflow tests). */
export const LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis".repeat(6);

/** An answer as wide as it gets: a long code line and a long unbroken word. */
export const WIDE_REPLY = [
  "A long line of code:\n",
  "\n",
  "```js\n",
  `const setting = "${"a".repeat(240)}";\n`,
  "```\n",
  "\n",
  `And a long word: ${LONG_WORD}\n`,
];

/** The answer for a prompt: "long …" streams 200 tokens, "story …" 40, "lines N" a list of N
 * lines (one per token), "markdown …" `MARKDOWN_REPLY` and "wide …" `WIDE_REPLY` (a line a
 * token), anything else 3 tokens; 50 ms apart. */
function tokensFor(lastUser: string): string[] {
  const lines = /^lines (\d+)/.exec(lastUser);
  if (lines) {
    const n = Number(lines[1]);
    return Array.from({ length: n }, (_, i) => `- line ${i + 1} of ${n}\n`);
  }
  if (lastUser.startsWith("markdown")) return MARKDOWN_REPLY;
  if (lastUser.startsWith("wide")) return WIDE_REPLY;
  const n = lastUser.startsWith("long") ? 200 : lastUser.startsWith("story") ? 40 : 3;
  return Array.from({ length: n }, (_, i) => `word${i} `);
}

type Answer =
  /** An HTTP error (the server, with MODEL_MAX_RETRIES=0, stores an error reply). */
  | { status: number }
  /** Streamed deltas, then this finish reason. */
  | { deltas: object[]; finish: string };

/** "fail …" answers HTTP 500; "tool add <title>" calls add_task with that title (streamed as
 * OpenAI does: id and name first, the arguments in two fragments), and once shown the tool's
 * result confirms it in text; everything else streams `tokensFor`. */
function answerFor(messages: any[]): Answer {
  const lastUser = String([...messages].reverse().find((m) => m.role === "user")?.content ?? "");
  if (lastUser.startsWith("fail")) return { status: 500 };
  const tool = /^tool add (.+)/.exec(lastUser);
  if (tool) {
    const title = tool[1].trim();
    if (messages[messages.length - 1]?.role === "tool") {
      return { deltas: [`Added **${title}** `, "to your list."].map((content) => ({ content })), finish: "stop" };
    }
    const args = JSON.stringify({ title });
    const cut = Math.floor(args.length / 2);
    return {
      deltas: [
        { tool_calls: [{ index: 0, id: `call_${Date.now()}`, type: "function", function: { name: "add_task", arguments: "" } }] },
        { tool_calls: [{ index: 0, function: { arguments: args.slice(0, cut) } }] },
        { tool_calls: [{ index: 0, function: { arguments: args.slice(cut) } }] },
      ],
      finish: "tool_calls",
    };
  }
  return { deltas: tokensFor(lastUser).map((content) => ({ content })), finish: "stop" };
}

export async function startMockModel(gapMs = 50): Promise<MockModel> {
  let closed = 0;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const request = JSON.parse(body || "{}");
      const messages: any[] = request.messages ?? [];
      const answer = answerFor(messages);
      if ("status" in answer) {
        res.writeHead(answer.status, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "scripted failure", type: "server_error", param: null, code: null } }));
        return;
      }
      const { deltas, finish } = answer;
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
        if (i < deltas.length) {
          res.write(chunk(deltas[i++]));
          return;
        }
        clearInterval(timer);
        finished = true;
        res.write(chunk({}, finish));
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
