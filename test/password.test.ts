import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { hashPassword, verifyPassword } from '../lib/password.ts';

// The same format written by Python's hashlib, as in "Password hashing in Python with pbkdf2".
const PYTHON = `
import base64, hashlib, hmac, sys
def hash_password(password, salt, iterations):
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"), iterations)
    return "pbkdf2_sha256$%d$%s$%s" % (iterations, salt, base64.b64encode(digest).decode("ascii"))
def verify_password(password, encoded):
    algorithm, iterations, salt, _ = encoded.split("$", 3)
    return hmac.compare_digest(encoded, hash_password(password, salt, int(iterations)))
command, password, arg = sys.argv[1:4]
if command == "hash":
    print(hash_password(password, "pythonsalt", int(arg)))
else:
    print(verify_password(password, arg))
`;
const python = (...args: string[]) => execFileSync('python3', ['-c', PYTHON, ...args], { encoding: 'utf8' }).trim();

describe('password hashing (lib/password.ts)', () => {
  it('writes pbkdf2_sha256$<iterations>$<salt>$<base64> and verifies it', async () => {
    const encoded = await hashPassword('correct horse', 1000);
    assert.match(encoded, /^pbkdf2_sha256\$1000\$[0-9a-f]{32}\$[A-Za-z0-9+/]{43}=$/);
    assert.equal(await verifyPassword('correct horse', encoded), true);
    assert.equal(await verifyPassword('correct horsE', encoded), false);
  });

  it('gives every hash its own salt', async () => {
    assert.notEqual(await hashPassword('same', 1000), await hashPassword('same', 1000));
  });

  it('verifies whatever iteration count the hash names', async () => {
    assert.equal(await verifyPassword('pw', await hashPassword('pw', 1)), true);
    assert.equal(await verifyPassword('pw', await hashPassword('pw', 12345)), true);
  });

  it('verifies a hash made by Python', async () => {
    const encoded = python('hash', 'ünïcode pässword', '2000');
    assert.match(encoded, /^pbkdf2_sha256\$2000\$pythonsalt\$/);
    assert.equal(await verifyPassword('ünïcode pässword', encoded), true);
    assert.equal(await verifyPassword('unicode password', encoded), false);
  });

  it('makes hashes that Python verifies', async () => {
    const encoded = await hashPassword('ünïcode pässword', 2000);
    assert.equal(python('verify', 'ünïcode pässword', encoded), 'True');
    assert.equal(python('verify', 'wrong', encoded), 'False');
  });

  it('matches a known vector (computed once with Python hashlib)', async () => {
    assert.equal(await hashPassword('secret', 1000, 'fixedsalt'), 'pbkdf2_sha256$1000$fixedsalt$1gmGUyaIoMWkP+9Lt0kqgkrIr1Sn9+YW3nanNpMrkpM=');
  });

  it('rejects malformed, foreign or absurd hashes instead of throwing', async () => {
    for (const encoded of ['', 'plain', 'md5$1$salt$abc', 'pbkdf2_sha256$0$salt$abc', 'pbkdf2_sha256$x$salt$abc', 'pbkdf2_sha256$99999999999$s$abc', 'pbkdf2_sha256$1$salt$']) {
      assert.equal(await verifyPassword('pw', encoded), false, encoded);
    }
  });
});
