/**
 * A test's own HTTP server on 127.0.0.1 and a free port, closed by `closers` (run them in
 * afterEach): its open keep-alive sockets are destroyed first, so closing never waits on a
 * client's idle connection.
 */
import type http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export async function listenForTest(server: http.Server, closers: (() => Promise<void>)[]): Promise<string> {
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
