// Serves a built client-side app from a directory, as any static host would: files as they
// are, and index.html for every other path (the app routes in the browser).
import { createServer, Server } from "node:http";
import { readFile } from "node:fs/promises";
import path from "node:path";

const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".wasm": "application/wasm",
  ".css": "text/css",
  ".svg": "image/svg+xml",
};

export async function serveStatic(dir: string, port: number): Promise<Server> {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const file = path.join(dir, path.normalize(url.pathname).replace(/^(\.\.[/\\])+/, ""));
    let body: Buffer;
    let type = types[path.extname(file)] ?? "application/octet-stream";
    try {
      body = await readFile(file);
    } catch {
      body = await readFile(path.join(dir, "index.html"));
      type = types[".html"];
    }
    res.writeHead(200, { "content-type": type });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}
