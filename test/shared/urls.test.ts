/** Service URLs are parsed and compared one way (shared/urls.ts). */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/errors.ts';
import { checkParticipants, parseServiceUrl, serviceIdentity } from '../../shared/urls.ts';

describe('parseServiceUrl', () => {
  it('returns the normal form: lower-case host, no default port, no trailing slash', () => {
    expect(parseServiceUrl('HTTP://Host.Example:80/', 'x')).toBe('http://host.example');
    expect(parseServiceUrl('https://h:443//', 'x')).toBe('https://h');
    expect(parseServiceUrl('http://127.0.0.1:7001', 'x')).toBe('http://127.0.0.1:7001');
    expect(parseServiceUrl('http://[::1]:7001/prefix/', 'x')).toBe('http://[::1]:7001/prefix');
  });

  it('refuses what a request cannot be sent to, naming the flag and the text', () => {
    for (const bad of ['http://[::1', 'not a url', 'ftp://h:1', 'http://user:pw@h:1', 'http://h:1/?q=1', 'http://h:1/#x', `http://h/${'a'.repeat(3000)}`]) {
      expect(() => parseServiceUrl(bad, '--coordinator'), bad).toThrow(ConfigError);
      expect(() => parseServiceUrl(bad, '--coordinator'), bad).toThrow(/--coordinator/);
    }
  });
});

describe('serviceIdentity', () => {
  it('is one for every spelling of one address, and differs for different ones', () => {
    const same = ['http://h:1', 'http://H:1/', 'http://h:1//', 'https://h:1'];
    expect(new Set(same.map(serviceIdentity)).size).toBe(1);
    expect(serviceIdentity('http://h')).toBe(serviceIdentity('http://h:80'));
    expect(serviceIdentity('https://h')).toBe(serviceIdentity('http://h:443'));
    expect(new Set(['http://localhost:7', 'http://127.0.0.1:7', 'http://[::1]:7'].map(serviceIdentity)).size).toBe(1);
    expect(serviceIdentity('http://h:1')).not.toBe(serviceIdentity('http://h:2'));
    expect(serviceIdentity('http://h:1/a')).not.toBe(serviceIdentity('http://h:1/b'));
    expect(serviceIdentity('http://127.0.0.2:1')).not.toBe(serviceIdentity('http://127.0.0.1:1'));
    // The simulator's addresses are their own identity.
    expect(serviceIdentity('sim://p1/')).toBe('sim://p1');
  });
});

describe('checkParticipants', () => {
  it('normalises every URL', () => {
    expect(checkParticipants({ p1: 'http://H:1/', p2: 'http://h:2' })).toEqual({ p1: 'http://h:1', p2: 'http://h:2' });
  });

  it('refuses two names for one participant, naming both and their URLs', () => {
    expect(() => checkParticipants({ p1: 'http://h:1', p2: 'http://h:1/' })).toThrow(/p1 \(http:\/\/h:1\) and p2 \(http:\/\/h:1\/\)/);
    expect(() => checkParticipants({ a: 'http://localhost:7001', b: 'http://127.0.0.1:7001' })).toThrow(ConfigError);
  });

  it('refuses a bad name, a bad URL and an empty list', () => {
    expect(() => checkParticipants({ 'p 1': 'http://h:1' })).toThrow(/name "p 1"/);
    expect(() => checkParticipants({ p1: 'http://[::1' })).toThrow(/participant p1/);
    expect(() => checkParticipants({})).toThrow(/at least one/);
  });
});
