/**
 * TrustedPeers.vet (participant/runtime/peers.ts): a prepare's peer list cut to the trusted URLs,
 * in normal form, with the participant itself recognised however its URL is spelled. The URLs it
 * reads are kept (a memo); these pin that asking again, with the same or other spellings, bad
 * URLs among them, answers the same. The coordinator is a closed port on 127.0.0.1: its list
 * cannot be read, so only configured peers are trusted.
 */
import { describe, expect, it } from 'vitest';
import { TrustedPeers } from '../../../participant/runtime/peers.ts';
import { createHttpClient } from '../../../shared/http/client.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { freePort } from '../../../scenarios/ports.ts';

describe('TrustedPeers.vet', () => {
  it('keeps configured peers in normal form, drops strangers and bad URLs, and answers alike when asked again', async () => {
    const http = createHttpClient({ timeoutMs: 1_000 });
    try {
      const port = await freePort();
      const peers = new TrustedPeers({
        coordinators: [`http://127.0.0.1:${port}`],
        peers: ['http://127.0.0.1:7002/'],
        http,
        logger: silentLogger(),
        now: () => 0,
        refreshIntervalMsMin: 0,
      });
      const self = 'http://127.0.0.1:7001';
      const list = ['http://localhost:7001/', 'http://localhost:7002', 'http://10.9.9.9:7003', 'not a url', 'ftp://127.0.0.1:7002'];
      const expected = { trusted: ['http://localhost:7002', self], dropped: ['http://10.9.9.9:7003', 'not a url', 'ftp://127.0.0.1:7002'] };
      for (let round = 0; round < 3; round++) expect(await peers.vet(list, self)).toEqual(expected);
      expect(peers.isTrusted('http://127.0.0.1:7002')).toBe(true);
      expect(peers.isTrusted('http://127.0.0.1:7003')).toBe(false);
      expect(await peers.vet(['http://127.0.0.1:7002/'], undefined)).toEqual({ trusted: ['http://127.0.0.1:7002'], dropped: [] });
    } finally {
      http.close();
    }
  });
});
