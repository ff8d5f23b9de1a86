import fs from 'node:fs';
import net from 'node:net';

/** The abstract socket name a directory's guard binds (wal/dir-lock.ts): its device and inode. */
export const guardName = (dir: string): string => `\0twopc-wal-lock/${fs.statSync(dir).dev}:${fs.statSync(dir).ino}`;

/**
 * Binds `dir`'s guard name as another holder would, answering each connection with `answer`.
 * The caller closes the server it gets back.
 */
export async function listenAsGuard(dir: string, answer: string): Promise<net.Server> {
  const server = net.createServer((conn) => {
    conn.on('error', () => undefined);
    conn.end(answer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: guardName(dir) }, () => resolve());
  });
  return server;
}
