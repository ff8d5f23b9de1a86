/**
 * HTTP/1.1 over a bare TCP socket, for tests that must control a connection
 * byte by byte: keep it open, send a request slowly, and tell whether the
 * server or the test closed it. fetch and http.Agent hide all three.
 */
import net from 'node:net';

/** The longest a test waits for one answer on a raw connection. */
const ANSWER_WAIT_MS = 15_000;

export interface RawAnswer {
  readonly status: number;
  readonly body: string;
}

/** How the connection ended, as seen from the client; `undefined` while it is open. */
export type Ending = { readonly by: 'server'; readonly how: 'end' | 'error'; readonly code?: string } | { readonly by: 'test' };

export class RawConnection {
  private buffer = '';
  private ending: Ending | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake();
    });
    socket.on('end', () => this.endWith({ by: 'server', how: 'end' }));
    socket.on('error', (e: NodeJS.ErrnoException) => this.endWith({ by: 'server', how: 'error', ...(e.code !== undefined && { code: e.code }) }));
    socket.on('close', () => this.endWith({ by: 'server', how: 'end' }));
  }

  /** Connects to 127.0.0.1:port; rejects when nothing listens there. */
  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
    });
  }

  /** Everything the server sent so far. */
  get received(): string {
    return this.buffer;
  }

  get ended(): Ending | undefined {
    return this.ending;
  }

  write(text: string): void {
    if (this.ending === undefined) this.socket.write(text);
  }

  /** Sends a keep-alive GET and reads its answer, or undefined when the connection ends first. */
  async get(path: string, headers: Readonly<Record<string, string>> = {}): Promise<RawAnswer | undefined> {
    this.buffer = '';
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    this.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`);
    await this.until(() => this.answer() !== undefined, ANSWER_WAIT_MS);
    return this.answer();
  }

  /** Resolves once `ready()` holds or the connection has ended; throws after `timeoutMs`. */
  async until(ready: () => boolean, timeoutMs: number): Promise<void> {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      this.wake();
    }, timeoutMs);
    try {
      while (!ready() && this.ending === undefined) {
        if (expired) throw new Error(`no answer on the raw connection within ${timeoutMs} ms; got ${JSON.stringify(this.buffer.slice(0, 200))}`);
        await new Promise<void>((r) => this.waiters.add(r));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** The test closes the connection itself. */
  close(): void {
    this.endWith({ by: 'test' });
    this.socket.destroy();
  }

  /** A complete answer in the buffer (Content-Length framing, as our servers send). */
  private answer(): RawAnswer | undefined {
    const head = this.buffer.indexOf('\r\n\r\n');
    if (head < 0) return undefined;
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(this.buffer)?.[1]);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(this.buffer.slice(0, head))?.[1] ?? 0);
    const body = this.buffer.slice(head + 4);
    return Buffer.byteLength(body, 'latin1') >= length ? { status, body: body.slice(0, length) } : undefined;
  }

  private endWith(ending: Ending): void {
    this.ending ??= ending;
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }
}
