/**
 * What travels in the simulated world: request/response messages between the
 * nodes (the HTTP calls of the real services, one message per direction), and
 * the events the world's queue runs.
 */
import type { BranchInput } from '../../coordinator/core/index.ts';
import type { ParticipantEvent } from '../../participant/core/index.ts';
import type { BatchMessage } from '../../shared/schemas.ts';
import type { DecisionRequest, PrepareRequest } from '../../shared/types.ts';

/** `coordinator`, `p1`..`pN`, or `client`. */
export type NodeId = string;

/** The calls of the HTTP contract that the protocol makes, by the route they stand for. */
export type RequestPayload =
  /** POST /v1/2pc/prepare */
  | { readonly type: 'prepare'; readonly body: PrepareRequest }
  /** POST /v1/2pc/commit and /abort */
  | { readonly type: 'commit' | 'abort'; readonly body: DecisionRequest }
  /**
   * POST /v1/2pc/batch: many protocol messages, answered `{replies: [{txId, status, body}]}` in order,
   * or with `stream` (the service's Accept: application/x-ndjson) one line `{i, txId, status, body}`
   * per message as each settles, then the end of the answer
   */
  | { readonly type: 'batch'; readonly messages: readonly BatchMessage[]; readonly stream?: true }
  /** GET /v1/transactions/:txId/outcome */
  | { readonly type: 'getOutcome'; readonly txId: string }
  /** POST /v1/2pc/transactions/:txId/inquiry (cooperative termination) */
  | { readonly type: 'peerInquiry'; readonly txId: string }
  /** POST /v1/transactions with branches */
  /** `index` is the client's transfer number: the simulator's bookkeeping, never shown to the core. */
  | { readonly type: 'runWhole'; readonly branches: readonly BranchInput[]; readonly index: number }
  /**
   * The interactive flow: POST /v1/transactions (no branches), .../:txId/branches,
   * .../:txId/commit and .../:txId/abort. `index` and `participants` (the branches the client
   * means to enlist) are the simulator's bookkeeping, never shown to the core.
   */
  | { readonly type: 'txBegin'; readonly timeoutMs: number; readonly index: number; readonly participants: readonly NodeId[] }
  | { readonly type: 'txEnlist'; readonly txId: string; readonly branch: BranchInput }
  | { readonly type: 'txCommit' | 'txAbort'; readonly txId: string };

export interface RequestMsg {
  readonly kind: 'request';
  readonly callId: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly payload: RequestPayload;
}

export interface ResponseMsg {
  readonly kind: 'response';
  readonly callId: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly status: number;
  readonly body: unknown;
  /** The answer to a `batch` request: the network's batch faults (cut short, reordered, late) apply to it. */
  readonly batch?: true;
  /**
   * A streamed batch answer comes in parts on one connection: each `line` (its body the line's
   * JSON text) leaves the call open, and the `end` closes it. The network keeps them in order.
   */
  readonly stream?: 'line' | 'end';
}

/**
 * What the caller's network stack reports instead of an answer: `unreachable`
 * (connection refused: the request never reached a live process) or `reset`
 * (the server died holding the request: it may or may not have acted).
 */
export interface FailureMsg {
  readonly kind: 'failure';
  readonly callId: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly error: 'unreachable' | 'reset';
}

export type Message = RequestMsg | ResponseMsg | FailureMsg;

export type SimEvent =
  | { readonly kind: 'deliver'; readonly msg: Message }
  /** A core timer; it counts only while `token` is still the node's current token for `id`. */
  | { readonly kind: 'timer'; readonly node: NodeId; readonly id: string; readonly token: number }
  /** The caller's HTTP client gives up on a call. */
  | { readonly kind: 'callTimeout'; readonly node: NodeId; readonly callId: number }
  /** A participant's resource answers a prepare (in the incarnation that asked). */
  | { readonly kind: 'resource'; readonly node: NodeId; readonly incarnation: number; readonly event: ParticipantEvent }
  /** The WAL's background flush makes lazy writes durable. */
  | { readonly kind: 'flush'; readonly node: NodeId; readonly incarnation: number }
  /**
   * A node's slow I/O completes (an fdatasync, a resource's apply): `done` resumes the effect
   * driver's call that waits for it, in the incarnation that started it.
   */
  | { readonly kind: 'io'; readonly node: NodeId; readonly incarnation: number; readonly what: string; readonly done: () => void }
  /** A node takes a checkpoint now (the services' interval checkpoint, placed where it hurts). */
  | { readonly kind: 'checkpoint'; readonly node: NodeId }
  /** A crash at a chosen moment; a targeted one says how long the node stays down at most. */
  | { readonly kind: 'crash'; readonly node: NodeId; readonly downtimeMsMax?: number }
  | { readonly kind: 'restart'; readonly node: NodeId }
  | { readonly kind: 'partition'; readonly id: number; readonly links: readonly (readonly [NodeId, NodeId])[]; readonly oneWay: boolean }
  | { readonly kind: 'unpartition'; readonly id: number }
  /** The client submits transfer number `index`. */
  | { readonly kind: 'submit'; readonly index: number }
  /** The client, having let an interactive transfer sit past its timeout, takes it up again. */
  | { readonly kind: 'clientWake'; readonly index: number }
  /** An operator may settle an in-doubt transaction by hand, if one is in doubt where the coordinator cannot answer. */
  | { readonly kind: 'heuristic'; readonly attempt: number }
  /** Faults stop: partitions heal and crashed nodes restart. */
  | { readonly kind: 'heal' }
  /**
   * A step of the HA group (./ha.ts, ./etcd.ts): etcd takes a request, an answer reaches a member,
   * a member's lease loop wakes, a fault of the group strikes. With `node`, it is an event of that
   * member's process, and waits while the process is paused.
   */
  | { readonly kind: 'nodeEvent'; readonly node?: NodeId; readonly what: string; readonly run: () => void };

export function describePayload(p: RequestPayload): string {
  switch (p.type) {
    case 'prepare':
      return `prepare ${p.body.txId}${p.body.onePhase ? ' 1pc' : ''}`;
    case 'commit':
    case 'abort':
      return `${p.type} ${p.body.txId}`;
    case 'getOutcome':
    case 'peerInquiry':
      return `${p.type} ${p.txId}`;
    case 'batch':
      return `batch[${p.messages.map((m) => `${m.type} ${m.body.txId}`).join(', ')}]`;
    case 'runWhole':
      return `runWhole#${p.index} ${p.branches.map((b) => b.participant).join('+')}`;
    case 'txBegin':
      return `begin#${p.index} ${p.participants.join('+')} timeout=${p.timeoutMs}`;
    case 'txEnlist':
      return `enlist ${p.txId} ${p.branch.participant}:${JSON.stringify(p.branch.ops)}`;
    case 'txCommit':
    case 'txAbort':
      return `${p.type} ${p.txId}`;
  }
}

export function describeMessage(m: Message): string {
  switch (m.kind) {
    case 'request':
      return `#${m.callId} ${m.from}->${m.to} ${describePayload(m.payload)}`;
    case 'response':
      if (m.stream === 'end') return `#${m.callId} ${m.from}->${m.to} end of the streamed answer`;
      return `#${m.callId} ${m.from}->${m.to} ${m.status} ${m.stream === 'line' ? 'line ' : ''}${JSON.stringify(m.body).slice(0, 160)}`;
    case 'failure':
      return `#${m.callId} ${m.from}->${m.to} ${m.error}`;
  }
}
