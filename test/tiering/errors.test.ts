// Every error code is unique and documented, in both catalogues.
import t from 'tap';
import { ENGINE_ERRORS } from '../../tiering/index.js';
import { S3_ERRORS } from '../../gateway/s3/errors.js';

t.test('engine errors map onto real S3 codes and are documented', async (t) => {
  for (const [code, e] of Object.entries(ENGINE_ERRORS)) {
    t.ok(e.doc.length > 10, `${code} is documented`);
    t.ok(e.s3Code in S3_ERRORS, `${code} maps to a catalogued S3 code (${e.s3Code})`);
    t.match(e.errno, /^E[A-Z]+$/, `${code} has an errno`);
  }
  t.equal(new Set(Object.keys(ENGINE_ERRORS)).size, Object.keys(ENGINE_ERRORS).length);
});

t.test('S3 error codes have a status and a message', async (t) => {
  for (const [code, [status, message]] of Object.entries(S3_ERRORS)) {
    t.ok(status >= 300 && status < 600, `${code} status`);
    t.ok(message.length > 5, `${code} message`);
  }
});
