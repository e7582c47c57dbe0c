import { stopServer } from "./server";

export default async function globalTeardown() {
  const handle = (globalThis as any).__chatkitServer;
  if (handle) await stopServer(handle);
}
