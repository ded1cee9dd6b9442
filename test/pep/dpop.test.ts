// DPoP proofs (RFC 9449): the resource server's verifier (every refusal of
// §4.3, with reasons that never echo the proof, token or jti), the replay
// cache, and the client's prover and key loading. The clock is frozen: every
// check passes nowMs.

import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createDpopProver, generateDpopKey, jwkThumbprint, loadDpopKey, MAX_PROOF_LENGTH, verifyDpopProof, type DpopResult, type DpopVerifyOptions } from '../../src/pep/dpop.ts';
import { ReplayCache } from '../../src/pep/replay.ts';
import { newPrivateKey } from '../../src/engine/jwk.ts';
import { keyPair } from '../keys.ts';

const NOW = 1_750_000_000_000;
const NOW_S = NOW / 1000;
const URL_ = 'https://api.example/orders/42';
const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3b3JrbG9hZCJ9.c2lnbmF0dXJl';
const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const athOf = (token: string): string => createHash('sha256').update(token).digest('base64url');

const ecKey = newPrivateKey('ec', { namedCurve: 'P-256' });
const ecJwk = createPublicKey(ecKey).export({ format: 'jwk' });
const otherEcKey = newPrivateKey('ec', { namedCurve: 'P-256' });

/** A proof with any header and claims, signed ES256 (EC keys) or EdDSA (Ed25519). */
function craft(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject = ecKey): string {
  const input = `${b64(header)}.${b64(claims)}`;
  const signature = key.asymmetricKeyType === 'ec'
    ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : sign(null, Buffer.from(input), key);
  return `${input}.${signature.toString('base64url')}`;
}
const goodHeader = (over: Record<string, unknown> = {}) => ({ typ: 'dpop+jwt', alg: 'ES256', jwk: ecJwk, ...over });
const goodClaims = (over: Record<string, unknown> = {}) => ({ jti: `jti-${randomBytes(8).toString('hex')}`, htm: 'GET', htu: URL_, iat: NOW_S, ath: athOf(TOKEN), ...over });
const options = (over: Partial<DpopVerifyOptions> = {}): DpopVerifyOptions => ({ method: 'GET', url: URL_, accessToken: TOKEN, nowMs: NOW, ...over });

/** A refusal whose reason names the problem and never holds the proof, the token or the jti. */
function expectRefused(result: DpopResult, problem: string | RegExp, proof?: string, jti?: string): void {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  if (typeof problem === 'string') expect(result.reason).toContain(problem);
  else expect(result.reason).toMatch(problem);
  expect(result.reason).not.toMatch(/\n/);
  expect(result.reason.length).toBeLessThan(120);
  expect(result.reason).not.toContain(TOKEN);
  if (proof) expect(result.reason).not.toContain(proof.slice(0, 20));
  if (jti) expect(result.reason).not.toContain(jti);
}

describe('verifyDpopProof: accepted proofs', () => {
  it('accepts an ES256 proof and returns the RFC 7638 thumbprint', async () => {
    const proof = craft(goodHeader(), goodClaims());
    const result = verifyDpopProof(proof, options({ expectedJkt: await calculateJwkThumbprint(ecJwk as never) }));
    expect(result).toEqual({ ok: true, jkt: await calculateJwkThumbprint(ecJwk as never, 'sha256') });
  });

  it('accepts an EdDSA (Ed25519) proof', () => {
    const edKey = newPrivateKey('ed25519');
    const jwk = createPublicKey(edKey).export({ format: 'jwk' });
    const proof = craft(goodHeader({ alg: 'EdDSA', jwk }), goodClaims(), edKey);
    expect(verifyDpopProof(proof, options({ expectedJkt: jwkThumbprint(jwk) }))).toEqual({ ok: true, jkt: jwkThumbprint(jwk) });
  });

  it('accepts a proof jose signs, and jose accepts the prover\'s proofs', async () => {
    const proof = await new SignJWT(goodClaims()).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: ecJwk as never }).sign(ecKey);
    expect(verifyDpopProof(proof, options()).ok).toBe(true);
    const prover = createDpopProver(ecKey);
    const ours = prover.proof({ method: 'GET', url: URL_, accessToken: TOKEN, nowMs: NOW });
    const { payload, protectedHeader } = await jwtVerify(ours, EmbeddedJWK, { typ: 'dpop+jwt', currentDate: new Date(NOW) });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ htm: 'GET', htu: URL_, iat: NOW_S, ath: athOf(TOKEN) });
  });

  it('ignores query and fragment in htu, and compares normalised URLs', () => {
    for (const [htu, url] of [
      [URL_, `${URL_}?page=2#top`],
      [`${URL_}?other=1`, URL_],
      ['HTTPS://API.Example:443/orders/42', URL_],
      ['http://api.example:80/', 'http://api.example'],
    ]) {
      expect(verifyDpopProof(craft(goodHeader(), goodClaims({ htu })), options({ url })).ok, `${htu} vs ${url}`).toBe(true);
    }
  });

  it('accepts iat at the edges of the window, and needs no ath without an access token', () => {
    expect(verifyDpopProof(craft(goodHeader(), goodClaims({ iat: NOW_S - 60 })), options()).ok).toBe(true);
    expect(verifyDpopProof(craft(goodHeader(), goodClaims({ iat: NOW_S + 5 })), options()).ok).toBe(true);
    expect(verifyDpopProof(craft(goodHeader(), goodClaims({ ath: undefined })), options({ accessToken: undefined })).ok).toBe(true);
  });
});

describe('verifyDpopProof: refusals', () => {
  const edKey = newPrivateKey('ed25519');
  const p384 = newPrivateKey('ec', { namedCurve: 'P-384' });
  const cases: Array<[string, () => string, string | RegExp, Partial<DpopVerifyOptions>?]> = [
    ['a wrong typ', () => craft(goodHeader({ typ: 'JWT' }), goodClaims()), 'typ must be dpop+jwt'],
    ['no typ', () => craft(goodHeader({ typ: undefined }), goodClaims()), 'typ must be dpop+jwt'],
    ['alg none', () => `${b64(goodHeader({ alg: 'none' }))}.${b64(goodClaims())}.AAAA`, 'alg is not allowed'],
    ['alg none with an empty signature', () => `${b64(goodHeader({ alg: 'none' }))}.${b64(goodClaims())}.`, 'base64url'],
    ['an alg outside allowedAlgs', () => craft(goodHeader(), goodClaims()), 'alg is not allowed', { allowedAlgs: ['EdDSA'] }],
    ['an unknown alg', () => craft(goodHeader({ alg: 'ES256K' }), goodClaims()), 'alg is not allowed', { allowedAlgs: ['ES256K'] }],
    ['a private jwk', () => craft(goodHeader({ jwk: ecKey.export({ format: 'jwk' }) }), goodClaims()), 'private key'],
    ['no jwk', () => craft(goodHeader({ jwk: undefined }), goodClaims()), 'no jwk'],
    ['a jwk that is not an object', () => craft(goodHeader({ jwk: 'key' }), goodClaims()), 'no jwk'],
    ['an Ed25519 jwk under ES256', () => craft(goodHeader({ jwk: createPublicKey(edKey).export({ format: 'jwk' }) }), goodClaims()), 'does not match its alg'],
    ['a P-384 jwk under ES256', () => craft(goodHeader({ jwk: createPublicKey(p384).export({ format: 'jwk' }) }), goodClaims()), 'does not match its alg'],
    ['a jwk point off the curve', () => craft(goodHeader({ jwk: { ...ecJwk, y: ecJwk.x } }), goodClaims()), 'not a valid public key'],
    ['a jwk missing y', () => craft(goodHeader({ jwk: { ...ecJwk, y: undefined } }), goodClaims()), 'not a valid public key'],
    ['a crit header', () => craft(goodHeader({ crit: ['exp'] }), goodClaims()), 'crit'],
    ['a signature by another key carrying this jwk', () => craft(goodHeader(), goodClaims(), otherEcKey), 'signature does not verify'],
    ['a payload changed after signing', () => {
      const [h, , s] = craft(goodHeader(), goodClaims()).split('.');
      return `${h}.${b64(goodClaims({ htm: 'GET' }))}.${s}`;
    }, 'signature does not verify'],
    ['a truncated signature', () => craft(goodHeader(), goodClaims()).slice(0, -4), 'signature does not verify'],
    ['htm POST for a GET', () => craft(goodHeader(), goodClaims({ htm: 'POST' })), 'htm does not match'],
    ['htm in lower case', () => craft(goodHeader(), goodClaims({ htm: 'get' })), 'htm does not match'],
    ['no htm', () => craft(goodHeader(), goodClaims({ htm: undefined })), 'htm does not match'],
    ['htu for another path', () => craft(goodHeader(), goodClaims({ htu: 'https://api.example/orders/43' })), 'htu does not match'],
    ['htu for another host', () => craft(goodHeader(), goodClaims({ htu: 'https://evil.example/orders/42' })), 'htu does not match'],
    ['htu over http for https', () => craft(goodHeader(), goodClaims({ htu: 'http://api.example/orders/42' })), 'htu does not match'],
    ['htu on another port', () => craft(goodHeader(), goodClaims({ htu: 'https://api.example:8443/orders/42' })), 'htu does not match'],
    ['htu not a URL', () => craft(goodHeader(), goodClaims({ htu: '/orders/42' })), 'htu is not a valid'],
    ['no htu', () => craft(goodHeader(), goodClaims({ htu: undefined })), 'htu is missing'],
    ['a request url that is not a URL', () => craft(goodHeader(), goodClaims()), 'request url', { url: 'not a url' }],
    ['iat too old', () => craft(goodHeader(), goodClaims({ iat: NOW_S - 61 })), 'iat is too old'],
    ['iat too old for a shorter window', () => craft(goodHeader(), goodClaims({ iat: NOW_S - 11 })), 'iat is too old', { iatWindowS: 10 }],
    ['iat in the future', () => craft(goodHeader(), goodClaims({ iat: NOW_S + 6 })), 'iat is in the future'],
    ['iat as a string', () => craft(goodHeader(), goodClaims({ iat: String(NOW_S) })), 'iat must be a number'],
    ['ath missing when a token is given', () => craft(goodHeader(), goodClaims({ ath: undefined })), 'no ath'],
    ['ath for another token', () => craft(goodHeader(), goodClaims({ ath: athOf(`${TOKEN}x`) })), 'ath does not match'],
    ['a key other than the token\'s cnf.jkt', () => craft(goodHeader(), goodClaims()), 'cnf.jkt', { expectedJkt: jwkThumbprint(createPublicKey(otherEcKey).export({ format: 'jwk' })) }],
    ['no jti', () => craft(goodHeader(), goodClaims({ jti: undefined })), 'jti must be'],
    ['an empty jti', () => craft(goodHeader(), goodClaims({ jti: '' })), 'jti must be'],
    ['a 257-character jti', () => craft(goodHeader(), goodClaims({ jti: 'j'.repeat(257) })), 'jti must be'],
    ['a proof over 8 KB', () => craft(goodHeader({ pad: 'x'.repeat(MAX_PROOF_LENGTH) }), goodClaims()), 'too long'],
    ['one part', () => 'abc', 'three dot-separated parts'],
    ['two parts', () => 'abc.def', 'three dot-separated parts'],
    ['four parts', () => 'a.b.c.d', 'three dot-separated parts'],
    ['an empty string', () => '', 'missing'],
    ['bad base64url', () => 'ab*c.ZGVm.Z2hp', 'base64url'],
    ['standard base64 padding', () => `${b64(goodHeader())}=.${b64(goodClaims())}.AAAA`, 'base64url'],
    ['a header that is not JSON', () => `${b64('not json')}.${b64(goodClaims())}.AAAA`, 'header is not a JSON object'],
    ['a header that is a JSON array', () => `${b64([1, 2])}.${b64(goodClaims())}.AAAA`, 'header is not a JSON object'],
    ['a header that is JSON null', () => `${b64('null')}.${b64(goodClaims())}.AAAA`, 'header is not a JSON object'],
    ['a payload that is a JSON string', () => `${b64(goodHeader())}.${b64('"claims"')}.AAAA`, 'payload is not a JSON object'],
  ];

  it.each(cases)('refuses %s', (_name, make, problem, over) => {
    const proof = make();
    let jti: string | undefined;
    try {
      jti = JSON.parse(Buffer.from(proof.split('.')[1] ?? '', 'base64url').toString()).jti;
    } catch { /* not JSON */ }
    expectRefused(verifyDpopProof(proof, options(over)), problem, proof, jti && jti.length > 3 ? jti : undefined);
  });

  it('refuses HS256 signed with the public key as the secret, even when allowedAlgs names it', async () => {
    for (const secret of [Buffer.from(JSON.stringify(ecJwk)), Buffer.from(createPublicKey(ecKey).export({ type: 'spki', format: 'pem' }))]) {
      const proof = await new SignJWT(goodClaims()).setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: ecJwk as never }).sign(secret);
      expectRefused(verifyDpopProof(proof, options()), 'alg is not allowed', proof);
      expectRefused(verifyDpopProof(proof, options({ allowedAlgs: ['HS256', 'ES256'] })), 'alg is not allowed', proof);
    }
  });

  it('never throws, whatever it is given', () => {
    const proof = craft(goodHeader(), goodClaims());
    const weird: Array<[unknown, unknown]> = [
      [undefined, options()],
      [42, options()],
      [proof, options({ nowMs: Number.NaN })],
      [proof, options({ method: undefined as never })],
      [proof, undefined],
      [proof, null],
      [`${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: 'A', y: 'A' } })}.${b64(goodClaims())}.AAAA`, options()],
      [`${b64({ typ: 'dpop+jwt', alg: 'constructor', jwk: ecJwk })}.${b64(goodClaims())}.AAAA`, options({ allowedAlgs: ['constructor'] })],
      [`${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'toString' } })}.${b64(goodClaims())}.AAAA`, options()],
    ];
    for (const [p, o] of weird) {
      const result = verifyDpopProof(p as string, o as DpopVerifyOptions);
      expect(result.ok).toBe(false);
    }
  });
});

describe('verifyDpopProof with a replay cache', () => {
  it('refuses a proof the second time, and only valid proofs take room', () => {
    const replay = new ReplayCache({ windowMs: 60_000, maxEntries: 100, clock: () => NOW });
    const claims = goodClaims();
    const proof = craft(goodHeader(), claims);
    expect(verifyDpopProof(proof, options({ replay })).ok).toBe(true);
    expectRefused(verifyDpopProof(proof, options({ replay })), 'already used (replay)', proof, claims.jti);
    expect(verifyDpopProof(craft(goodHeader(), goodClaims()), options({ replay })).ok).toBe(true);
    verifyDpopProof(craft(goodHeader(), goodClaims(), otherEcKey), options({ replay }));
    verifyDpopProof(craft(goodHeader(), goodClaims({ htm: 'PUT' })), options({ replay }));
    expect(replay.size).toBe(2);
  });

  it('refuses proofs while the cache is full of live entries, with its own reason', () => {
    const replay = new ReplayCache({ windowMs: 60_000, maxEntries: 2, clock: () => NOW });
    expect(verifyDpopProof(craft(goodHeader(), goodClaims()), options({ replay })).ok).toBe(true);
    expect(verifyDpopProof(craft(goodHeader(), goodClaims()), options({ replay })).ok).toBe(true);
    expectRefused(verifyDpopProof(craft(goodHeader(), goodClaims()), options({ replay })), 'replay cache is full');
  });

  it('refuses every proof when the cache forgets sooner than the iat window', () => {
    const replay = new ReplayCache({ windowMs: 30_000, maxEntries: 100, clock: () => NOW });
    expectRefused(verifyDpopProof(craft(goodHeader(), goodClaims()), options({ replay })), 'shorter than the iat window');
    expect(verifyDpopProof(craft(goodHeader(), goodClaims()), options({ replay, iatWindowS: 30 })).ok).toBe(true);
  });
});

describe('ReplayCache', () => {
  const fakeClock = (start = NOW) => {
    const clock = { now: start, read: () => clock.now };
    return clock;
  };

  it('records new keys and refuses them again within the window', () => {
    const clock = fakeClock();
    const cache = new ReplayCache({ windowMs: 60_000, maxEntries: 10, clock: clock.read });
    expect(cache.check('a', clock.now)).toBe(true);
    expect(cache.check('a', clock.now)).toBe(false);
    expect(cache.checkResult('a', clock.now)).toBe('replay');
    expect(cache.check('b', clock.now)).toBe(true);
    expect(cache.size).toBe(2);
  });

  it('drops entries once the window has passed', () => {
    const clock = fakeClock();
    const cache = new ReplayCache({ windowMs: 60_000, maxEntries: 10, clock: clock.read });
    cache.check('a', clock.now);
    clock.now += 30_000;
    cache.check('b', clock.now);
    clock.now += 29_999;
    expect(cache.check('a', clock.now - 59_999)).toBe(false);
    clock.now += 1;
    expect(cache.size).toBe(1);
    expect(cache.check('a', clock.now)).toBe(true); // forgotten: a proof this old is refused by its iat anyway
    clock.now += 60_000;
    expect(cache.size).toBe(0);
  });

  it('remembers a proof with a future iat until the window has passed that iat', () => {
    const clock = fakeClock();
    const cache = new ReplayCache({ windowMs: 60_000, maxEntries: 10, clock: clock.read });
    cache.check('future', clock.now + 5_000);
    clock.now += 64_999;
    expect(cache.checkResult('future', clock.now)).toBe('replay');
    clock.now += 1;
    expect(cache.checkResult('future', clock.now)).toBe('new');
  });

  it('when full of live entries, refuses new keys rather than evicting one that could then be replayed', () => {
    const clock = fakeClock();
    const cache = new ReplayCache({ windowMs: 60_000, maxEntries: 3, clock: clock.read });
    for (const k of ['a', 'b', 'c']) expect(cache.check(k, clock.now)).toBe(true);
    expect(cache.full).toBe(true);
    expect(cache.check('d', clock.now)).toBe(false);
    expect(cache.checkResult('d', clock.now)).toBe('full');
    expect(cache.checkResult('a', clock.now)).toBe('replay'); // still remembered
    clock.now += 60_000;
    expect(cache.full).toBe(false);
    expect(cache.checkResult('d', clock.now)).toBe('new');
    expect(cache.size).toBe(1);
  });

  it('stores a fixed-size hash of the key: a 10 KB jti costs what a short one does', () => {
    const cache = new ReplayCache({ windowMs: 60_000, maxEntries: 10, clock: () => NOW });
    const big = 'j'.repeat(10 * 1024);
    expect(cache.check(big, NOW)).toBe(true);
    expect(cache.check(`${big.slice(0, -1)}k`, NOW)).toBe(true); // the whole key is hashed
    expect(cache.check(big, NOW)).toBe(false);
    cache.check('s', NOW);
    const stored = [...(cache as unknown as { live: Set<string> }).live];
    expect(stored.map((k) => k.length)).toEqual([16, 16, 16]);
  });

  it('stays bounded and correct under steady churn', () => {
    const clock = fakeClock();
    const cache = new ReplayCache({ windowMs: 1_000, maxEntries: 1_000, clock: clock.read });
    let refusedNew = 0;
    let acceptedReplay = 0;
    for (let i = 0; i < 50_000; i++) {
      clock.now += 2; // 500 per window
      if (!cache.check(`k${i}`, clock.now)) refusedNew++;
      if (i % 997 === 0 && i > 0 && cache.check(`k${i - 1}`, clock.now)) acceptedReplay++;
    }
    expect({ refusedNew, acceptedReplay }).toEqual({ refusedNew: 0, acceptedReplay: 0 });
    expect(cache.size).toBeLessThanOrEqual(501);
  });

  it('refuses nonsense options', () => {
    expect(() => new ReplayCache({ windowMs: 0, maxEntries: 1 })).toThrow(/windowMs/);
    expect(() => new ReplayCache({ windowMs: 1000, maxEntries: 0 })).toThrow(/maxEntries/);
  });
});

describe('createDpopProver', () => {
  it('signs fresh proofs the verifier accepts, ES256 and EdDSA', () => {
    for (const alg of ['ES256', 'EdDSA']) {
      const prover = createDpopProver(generateDpopKey(alg));
      expect(prover.alg).toBe(alg);
      expect(prover.publicJwk).not.toHaveProperty('d');
      expect(prover.jkt).toBe(jwkThumbprint(prover.publicJwk));
      const replay = new ReplayCache({ windowMs: 60_000, maxEntries: 10, clock: () => NOW });
      const a = prover.proof({ method: 'POST', url: `${URL_}?x=1#f`, accessToken: TOKEN, nowMs: NOW + 999 });
      const b = prover.proof({ method: 'POST', url: URL_, accessToken: TOKEN, nowMs: NOW });
      expect(a).not.toBe(b);
      for (const proof of [a, b]) {
        expect(verifyDpopProof(proof, options({ method: 'POST', expectedJkt: prover.jkt, replay }))).toEqual({ ok: true, jkt: prover.jkt });
      }
      const claims = JSON.parse(Buffer.from(a.split('.')[1], 'base64url').toString());
      expect(claims).toMatchObject({ htm: 'POST', htu: URL_, iat: NOW_S, ath: athOf(TOKEN) });
      expect(Buffer.from(claims.jti, 'base64url').length).toBeGreaterThanOrEqual(16);
    }
  });

  it('leaves out ath without a token, and writes htm as fetch sends the method', () => {
    const prover = createDpopProver(ecKey);
    const claims = (proof: string) => JSON.parse(Buffer.from(proof.split('.')[1], 'base64url').toString());
    expect(claims(prover.proof({ method: 'get', url: URL_ }))).not.toHaveProperty('ath');
    expect(claims(prover.proof({ method: 'get', url: URL_ })).htm).toBe('GET');
    expect(claims(prover.proof({ method: 'PATCH', url: URL_ })).htm).toBe('PATCH');
    expect(() => prover.proof({ method: 'GET', url: '/relative' })).toThrow(/absolute http\(s\) URL/);
    expect(() => prover.proof({ method: 'GE T', url: URL_ })).toThrow(/method/);
  });

  it('takes a KeyObject, a private JWK object or PEM text, and refuses a public key', async () => {
    const fromJwk = createDpopProver(ecKey.export({ format: 'jwk' }));
    const fromPem = createDpopProver(ecKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    expect(fromJwk.jkt).toBe(createDpopProver(ecKey).jkt);
    expect(fromPem.jkt).toBe(fromJwk.jkt);
    expect(fromJwk.jkt).toBe(await calculateJwkThumbprint(ecJwk as never));
    expect(() => createDpopProver(createPublicKey(ecKey))).toThrow(/public key; a DPoP prover needs a private key/);
    expect(() => createDpopProver(ecJwk)).toThrow(/public key/);
  });

  it('signs RSA proofs (PS256 by default, RS256 when asked) and refuses an alg that does not fit the key', () => {
    const rsa = generateDpopKey('RS256');
    for (const [prover, alg] of [[createDpopProver(rsa), 'PS256'], [createDpopProver(rsa, { alg: 'RS256' }), 'RS256']] as const) {
      expect(prover.alg).toBe(alg);
      expect(verifyDpopProof(prover.proof({ method: 'GET', url: URL_, accessToken: TOKEN, nowMs: NOW }), options({ expectedJkt: prover.jkt })).ok).toBe(true);
    }
    expect(() => createDpopProver(ecKey, { alg: 'EdDSA' })).toThrow(/does not fit/);
    expect(() => createDpopProver(rsa, { alg: 'ES256' })).toThrow(/does not fit/);
    expect(() => generateDpopKey('HS256')).toThrow(/unsupported alg/);
  });
});

describe('loadDpopKey', () => {
  const ed = keyPair('EdDSA').privateKey;

  it('reads PKCS8 PEM, SEC1 PEM and JWK JSON private keys', () => {
    const expected = createDpopProver(ecKey).jkt;
    const texts = [
      ecKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      `\n  ${ecKey.export({ type: 'sec1', format: 'pem' }) as string}\n`,
      JSON.stringify(ecKey.export({ format: 'jwk' }), null, 2),
    ];
    for (const text of texts) expect(createDpopProver(loadDpopKey(text)).jkt).toBe(expected);
    const edKey = loadDpopKey(ed.export({ type: 'pkcs8', format: 'pem' }) as string);
    expect(edKey.asymmetricKeyType).toBe('ed25519');
    expect(createDpopProver(edKey).alg).toBe('EdDSA');
  });

  it.each([
    ['a public PEM', () => createPublicKey(ecKey).export({ type: 'spki', format: 'pem' }) as string, /PEM holds a public key, not a private key/],
    ['a public JWK', () => JSON.stringify(ecJwk), /JWK is a public key \(it has no "d"\)/],
    ['a JWK set', () => JSON.stringify({ keys: [ecKey.export({ format: 'jwk' })] }), /JWK set/],
    ['a symmetric JWK', () => JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' }), /symmetric \(oct\) key/],
    ['a JWK with bad members', () => JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', d: 'AA' }), /could not be imported as a private key/],
    ['broken JSON', () => '{"kty": "EC",', /starts with "\{" but is not valid JSON/],
    ['an encrypted PEM', () => ecKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string, /encrypted/],
    ['a corrupted PEM', () => '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n', /PEM \(BEGIN PRIVATE KEY\) could not be parsed/],
    ['an X25519 key', () => generateKeyPairSync('x25519', { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }).privateKey, /x25519 keys are not supported/],
    ['junk', () => 'hello world', /expected a PEM private key .* or a JWK JSON object/],
    ['an empty file', () => '  \n', /empty/],
  ])('refuses %s with a clear message', (_name, make, message) => {
    const text = make();
    expect(() => loadDpopKey(text)).toThrow(message);
    try {
      loadDpopKey(text);
    } catch (err) {
      expect((err as Error).message).toMatch(/^loadDpopKey: /);
      expect((err as Error).message).not.toContain(String(ecKey.export({ format: 'jwk' }).d));
    }
  });
});

describe('jwkThumbprint', () => {
  it('matches jose for EC, OKP and RSA keys, and ignores members outside RFC 7638', async () => {
    for (const key of [ecKey, keyPair('EdDSA').privateKey, keyPair('RS256').privateKey]) {
      const jwk = createPublicKey(key).export({ format: 'jwk' });
      expect(jwkThumbprint({ ...jwk, kid: 'k1', use: 'sig' })).toBe(await calculateJwkThumbprint(jwk as never));
    }
    expect(() => jwkThumbprint({ kty: 'oct', k: 'c2VjcmV0' })).toThrow(/EC, OKP or RSA/);
  });
});
