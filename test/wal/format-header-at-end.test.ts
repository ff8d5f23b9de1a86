/**
 * A frame header that ends exactly at the end of the bytes is a header, not a cut one: the full
 * check reads its fields and says what is wrong with them. Only a header that would run past the
 * end is "cut short". (A header of 20 zero bytes reads as the end of the log either way, so the
 * verdicts here come from headers with non-zero fields.)
 */
import { describe, expect, it } from 'vitest';
import { FRAME_HEADER_BYTES, checkFrame } from '../../wal/format.ts';

const SALT = 0x0badf00d;
const checkAt = (bytes: Uint8Array, offset: number, end = bytes.length) => checkFrame(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset, end, SALT);

describe('a frame header that ends exactly at the end of the file', () => {
  it('is read for its length, which then runs past the end', () => {
    const bytes = new Uint8Array(40 + FRAME_HEADER_BYTES);
    const view = new DataView(bytes.buffer);
    view.setUint32(40 + 4, 8, true);
    expect(checkAt(bytes, 40)).toEqual({ kind: 'bad', reason: 'frame length 8 runs past the end of the file', payloadBytes: 8 });
    // One byte fewer and the same header is cut short.
    expect(checkAt(bytes, 40, bytes.length - 1)).toEqual({ kind: 'bad', reason: 'frame header cut short by the end of the file' });
  });

  it('is the end of the log when its CRC and length are zero, whatever follows them in the header', () => {
    const bytes = new Uint8Array(FRAME_HEADER_BYTES);
    new DataView(bytes.buffer).setUint32(8, 3, true);
    expect(checkAt(bytes, 0)).toEqual({ kind: 'zero' });
  });
});
