import { startServer } from "./server";

export default async function globalSetup() {
  const handle = await startServer(Number(process.env.E2E_PORT ?? 3100));
  (globalThis as any).__chatkitServer = handle;
  process.env.E2E_SERVER_PID = String(handle.process.pid);
}
