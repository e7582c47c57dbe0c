// Starts and stops the real release server the suite runs against.
import { spawn, ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface ServerHandle {
  process: ChildProcess;
  url: string;
}

const root = path.resolve(__dirname, "..");

export async function startServer(port: number, extraEnv: Record<string, string> = {}): Promise<ServerHandle> {
  const bin = process.env.E2E_SERVER_BIN;
  const databaseUrl = process.env.E2E_DATABASE_URL;
  if (!bin || !databaseUrl) {
    throw new Error("E2E_SERVER_BIN and E2E_DATABASE_URL must be set (scripts/test.sh sets them)");
  }
  const dataDir = process.env.E2E_DATA_DIR ?? mkdtempSync(path.join(tmpdir(), "chatkit-e2e-"));
  process.env.E2E_DATA_DIR = dataDir;
  const child = spawn(bin, [], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    env: {
      ...process.env,
      ADDR: `127.0.0.1:${port}`,
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      LEPTOS_SITE_ROOT: path.join(root, "target/site"),
      OPENAI_API_KEY: "",
      AUTH_RATE_PER_MINUTE_IP: "10000",
      SEND_RATE_PER_MINUTE: "10000",
      // The CSR build and the example app (tests/cross-origin.spec.ts) are served next door.
      CORS_ALLOWED_ORIGINS: `http://127.0.0.1:${port + 1},http://127.0.0.1:${port + 2}`,
      RUST_LOG: process.env.RUST_LOG ?? "warn",
      ...extraEnv,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return { process: child, url };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill("SIGTERM");
  throw new Error("server did not become ready within 30 s");
}

export async function stopServer(handle: ServerHandle): Promise<void> {
  if (handle.process.exitCode !== null) return;
  const exited = new Promise((resolve) => handle.process.once("exit", resolve));
  handle.process.kill("SIGTERM");
  await exited;
}
