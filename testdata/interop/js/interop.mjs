// Independent checks of vesperlog's JOSE and SD-JWT output, with the npm
// packages jose and @sd-jwt/core (not written here). Run by the Go tests
// (receipts/vesper/interop_test.go); each command prints one JSON line,
// {"ok": true, ...} with exit 0, or {"ok": false, "error": ...} with exit 1.
//
//   node interop.mjs verify-jws   --jwks JWKS.json --jws FILE --typ TYP
//   node interop.mjs verify-sdjwt --issuer-jwk JWK.json --token FILE --typ TYP [--aud A --nonce N]
//   node interop.mjs issue-sdjwt  --issuer-jwk PRIVATE.json --claims C.json --frame F.json --typ TYP
//                                 [--holder-jwk PRIVATE.json --aud A --nonce N]
//   node interop.mjs passport-sign   --key KEY.pem --chain CHAIN.pem --payload P.json
//   node interop.mjs passport-verify --token FILE
// (the PASSporT commands are run by receipts/passport/interop_test.go)
import { readFileSync } from 'node:fs';
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import * as jose from 'jose';
import { SDJwtInstance } from '@sd-jwt/core';

function args() {
  const out = {};
  const a = process.argv.slice(3);
  for (let i = 0; i < a.length; i++) {
    if (!a[i].startsWith('--')) throw new Error(`unexpected argument ${a[i]}`);
    const k = a[i].slice(2);
    if (i + 1 < a.length && !a[i + 1].startsWith('--')) out[k] = a[++i];
    else out[k] = true;
  }
  return out;
}

const read = (f) => readFileSync(f, 'utf8').trim();
const readJSON = (f) => JSON.parse(readFileSync(f, 'utf8'));

function algOf(jwk) {
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  throw new Error(`unsupported key ${jwk.kty}/${jwk.crv}`);
}

// JWS signatures over data (the signing input), base64url, per RFC 7518.
function signer(privJwk) {
  const key = createPrivateKey({ key: privJwk, format: 'jwk' });
  const alg = algOf(privJwk);
  return (data) => {
    const sig = alg === 'ES256'
      ? sign('sha256', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' })
      : sign(null, Buffer.from(data), key);
    return sig.toString('base64url');
  };
}

function verifier(pubJwk) {
  const key = createPublicKey({ key: pubJwk, format: 'jwk' });
  const alg = algOf(pubJwk);
  return (data, sig) => alg === 'ES256'
    ? verify('sha256', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url'))
    : verify(null, Buffer.from(data), key, Buffer.from(sig, 'base64url'));
}

const hasher = (data, alg) => {
  if (alg !== 'sha-256') throw new Error(`hash ${alg} not supported`);
  return new Uint8Array(createHash('sha256').update(data).digest());
};

function instance(opts) {
  return new SDJwtInstance({
    hasher,
    hashAlg: 'sha-256',
    saltGenerator: (n) => randomBytes(n).toString('base64url'),
    ...opts,
  });
}

async function verifyJWS(a) {
  const jwks = readJSON(a.jwks);
  const jws = read(a.jws);
  const header = jose.decodeProtectedHeader(jws);
  const key = jwks.keys.find((k) => k.kid === header.kid);
  if (!key) throw new Error(`no key ${header.kid} in the JWKS`);
  const thumb = await jose.calculateJwkThumbprint(key, 'sha256');
  if (thumb !== header.kid) throw new Error(`kid ${header.kid} is not the key's RFC 7638 thumbprint ${thumb}`);
  const { payload, protectedHeader } = await jose.compactVerify(jws, await jose.importJWK(key, header.alg), { algorithms: ['ES256', 'EdDSA'] });
  if (protectedHeader.typ !== a.typ) throw new Error(`typ ${protectedHeader.typ}, want ${a.typ}`);
  return { kid: header.kid, alg: protectedHeader.alg, payload: JSON.parse(new TextDecoder().decode(payload)) };
}

async function verifySDJWT(a) {
  const issuer = readJSON(a['issuer-jwk']);
  const token = read(a.token);
  const sd = instance({
    verifier: verifier(issuer),
    kbVerifier: (data, sig, payload) => verifier(payload.cnf.jwk)(data, sig),
  });
  const withKB = a.aud !== undefined;
  const res = await sd.verify(token, withKB ? { keyBindingNonce: a.nonce, requiredClaimKeys: [] } : {});
  if (res.header?.typ !== a.typ) throw new Error(`typ ${res.header?.typ}, want ${a.typ}`);
  if (withKB) {
    // @sd-jwt/core checks the KB-JWT's signature, nonce and sd_hash; aud and freshness are ours to check.
    if (!res.kb) throw new Error('no key binding JWT');
    if (res.kb.payload.aud !== a.aud) throw new Error(`aud ${res.kb.payload.aud}, want ${a.aud}`);
    if (res.kb.payload.nonce !== a.nonce) throw new Error(`nonce ${res.kb.payload.nonce}, want ${a.nonce}`);
    const age = Date.now() / 1000 - res.kb.payload.iat;
    if (age > 300 || age < -60) throw new Error(`KB-JWT iat is ${age}s old`);
  } else if (!token.endsWith('~')) {
    throw new Error('a KB-JWT where none is expected');
  }
  const claims = await sd.getClaims(token);
  return { claims };
}

async function issueSDJWT(a) {
  const issuer = readJSON(a['issuer-jwk']);
  const claims = readJSON(a.claims);
  const frame = readJSON(a.frame);
  const pub = { ...issuer };
  delete pub.d;
  const kid = await jose.calculateJwkThumbprint(pub, 'sha256');
  let holder;
  if (a['holder-jwk']) {
    holder = readJSON(a['holder-jwk']);
    const hp = { ...holder };
    delete hp.d;
    claims.cnf = { jwk: { kty: hp.kty, crv: hp.crv, x: hp.x, ...(hp.y ? { y: hp.y } : {}) } };
  }
  const sd = instance({
    signer: signer(issuer),
    signAlg: algOf(issuer),
    ...(holder ? { kbSigner: signer(holder), kbSignAlg: algOf(holder) } : {}),
  });
  let token = await sd.issue(claims, frame, { header: { typ: a.typ, kid } });
  if (holder) {
    // No presentation frame: every disclosure, plus a KB-JWT.
    token = await sd.present(token, undefined, {
      kb: { payload: { iat: Math.floor(Date.now() / 1000), aud: a.aud, nonce: a.nonce } },
    });
  }
  return { token };
}

// PASSporTs (RFC 8225) with the x5c header: jose signs one with a
// delegate certificate's key, and verifies one with the key of the x5c
// leaf (importX509), as a verification service holding x5c would.
async function passportSign(a) {
  const key = createPrivateKey(readFileSync(a.key, 'utf8'));
  const x5c = readFileSync(a.chain, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)
    .map((p) => p.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''));
  const payload = new TextEncoder().encode(read(a.payload));
  const token = await new jose.CompactSign(payload)
    .setProtectedHeader({ alg: 'ES256', typ: 'passport', ppt: 'shaken', x5c })
    .sign(key);
  return { token };
}

async function passportVerify(a) {
  const token = read(a.token);
  const header = jose.decodeProtectedHeader(token);
  if (!Array.isArray(header.x5c) || header.x5c.length === 0) throw new Error('no x5c');
  const leaf = `-----BEGIN CERTIFICATE-----\n${header.x5c[0]}\n-----END CERTIFICATE-----`;
  const { payload, protectedHeader } = await jose.compactVerify(token, await jose.importX509(leaf, 'ES256'), { algorithms: ['ES256'] });
  if (protectedHeader.typ !== 'passport') throw new Error(`typ ${protectedHeader.typ}, want passport`);
  return { header: protectedHeader, payload: JSON.parse(new TextDecoder().decode(payload)) };
}

const commands = { 'verify-jws': verifyJWS, 'verify-sdjwt': verifySDJWT, 'issue-sdjwt': issueSDJWT,
  'passport-sign': passportSign, 'passport-verify': passportVerify };
const cmd = commands[process.argv[2]];
if (!cmd) {
  console.log(JSON.stringify({ ok: false, error: `unknown command ${process.argv[2]}` }));
  process.exit(2);
}
try {
  console.log(JSON.stringify({ ok: true, ...(await cmd(args())) }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e) }));
  process.exit(1);
}
