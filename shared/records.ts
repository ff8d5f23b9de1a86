/**
 * WAL records of the 2PC layer: a `{ type: string }` union mapped to a one-byte
 * WAL type code and a UTF-8 JSON payload. Each side keeps its own code table;
 * a code is never reused for another meaning, since old logs must still read.
 */
export type CodeTable<R extends { type: string }> = { readonly [K in R['type']]: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export class RecordCodec<R extends { type: string }> {
  private readonly byCode = new Map<number, R['type']>();

  constructor(private readonly codes: CodeTable<R>) {
    for (const [name, code] of Object.entries(codes) as [R['type'], number][]) {
      if (!Number.isInteger(code) || code < 1 || code > 255) throw new Error(`record code for ${name} must be 1..255`);
      if (this.byCode.has(code)) throw new Error(`record code ${code} used twice`);
      this.byCode.set(code, name);
    }
  }

  encode(record: R): { type: number; payload: Uint8Array } {
    const code = this.codes[record.type as R['type']];
    return { type: code, payload: encoder.encode(JSON.stringify(record)) };
  }

  decode(type: number, payload: Uint8Array): R {
    const name = this.byCode.get(type);
    if (name === undefined) throw new Error(`unknown record code ${type}`);
    const record = JSON.parse(decoder.decode(payload)) as R;
    // Checked right after reading back: a payload that disagrees with its frame's type is corruption.
    if (record.type !== name) throw new Error(`record code ${type} (${name}) holds a ${String(record.type)} payload`);
    return record;
  }

  get knownCodes(): number[] {
    return [...this.byCode.keys()];
  }
}

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson<T>(bytes: Uint8Array): T {
  return JSON.parse(decoder.decode(bytes)) as T;
}
