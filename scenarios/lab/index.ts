/**
 * The live lab of `twopc cluster`: opened before the nodes start (they are told
 * the proxies' URLs and the coordinator links its `/` to the lab), attached to
 * the cluster once it exists. docs/lab.md says how to use it.
 */
import path from 'node:path';
import type { ProcessCluster } from '../harness.ts';
import { COORDINATOR_LANE, CLIENT_LANE } from '../timeline.ts';
import { LabHub, type Snapshot, type Stamped } from './events.ts';
import { LabObserver } from './observer.ts';
import { LabServer } from './server.ts';
import { LabWire } from './wire.ts';

export interface LabStart {
  readonly participants: number;
  readonly chaos: boolean;
  readonly token?: string;
  /** The lab's port; 0 picks a free one. */
  readonly port: number;
}

export class Lab {
  private observer: LabObserver | undefined;

  private constructor(
    readonly url: string,
    private readonly hub: LabHub,
    private readonly wire: LabWire,
    private readonly server: LabServer,
  ) {}

  static async open(o: LabStart): Promise<Lab> {
    const names = Array.from({ length: o.participants }, (_, i) => `p${i + 1}`);
    const hub = new LabHub(o.chaos, [CLIENT_LANE, COORDINATOR_LANE, ...names]);
    const wire = await LabWire.plan(hub, names);
    const server = new LabServer({ hub, wire, chaos: o.chaos, ...(o.token !== undefined && { token: o.token }) });
    let url: string;
    try {
      url = await server.listen(o.port);
    } catch (e) {
      if (o.port === 0 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      // The usual port is taken (another cluster?): any free one will do, the URL is printed.
      url = await server.listen(0);
    }
    return new Lab(url, hub, wire, server);
  }

  /** What the lab knows now, and what it has published (for the replay scenario, in-process). */
  snapshot(): Snapshot {
    return this.hub.snapshot();
  }
  events(): readonly Stamped[] {
    return this.hub.events();
  }

  /** For ProcessCluster.create: internal messages go through the lab's proxies. */
  get peerUrlOf(): (name: string, url: string, from: string) => string {
    return this.wire.peerUrlOf;
  }

  /** Opens the proxies; call after ProcessCluster.create and before the nodes start. */
  async attach(cluster: ProcessCluster, dataDir: string, transferBody: () => unknown, token: string | undefined): Promise<void> {
    await this.wire.start();
    this.observer = new LabObserver(
      cluster.nodes.map((n) => ({ process: n, walDir: path.join(dataDir, n.name) })),
      this.hub,
      this.server.isPaused,
      token,
    );
    this.server.attach({ observer: this.observer, nodes: cluster.nodes, transferBody });
    this.observer.start();
  }

  async close(): Promise<void> {
    await this.observer?.stop();
    await this.server.close();
    await this.wire.close();
  }
}
