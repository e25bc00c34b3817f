// certbot's deploy hook: install a new certificate where the server reads it,
// then tell the server to reload it.
//
//   certbot certonly --standalone -d mail.example.org \
//     --deploy-hook "node /opt/jjordan-mail/scripts/certbot-deploy-hook.ts [--config FILE]"
//
// certbot runs it as root after each issuance and renewal, with
// RENEWED_LINEAGE=/etc/letsencrypt/live/mail.example.org. (By hand:
// `--lineage DIR` instead of the variable.) What it does, in this order:
//
//   1. as root: read fullchain.pem and privkey.pem from the lineage, which
//      only root may read, and check that they parse and belong together;
//   2. become the owner of the data directory, the user the server runs as
//      (privileges.ts), and as that user:
//   3. write <dataDir>/tls/key.pem (0600), then cert.pem, each atomically;
//   4. send SIGHUP to the server named in <dataDir>/server.pid.
//
// Root never writes into the data directory and never trusts the PID file
// in it: the server's user controls both, and could otherwise point root's
// writes through a symlink, or root's signal at any process. The server
// reads the pair as its own user, on SIGHUP as at start (tls/certificates.ts).

import { readFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, dataDirOf } from '../src/config.ts';
import { checkPair } from '../src/tls/certificates.ts';
import { becomeOwnerOf, createDataDir, isRoot, lookupIds, restrictUmask } from '../src/privileges.ts';
import { writeFileAtomic } from '../src/store/safeio.ts';
import { serverPidPath } from '../src/main.ts';
import { runWhenStarted, usageErrorFor } from './lib/cli.ts';
import { runningPid } from './lib/pid-file.ts';

const USAGE = 'usage: node scripts/certbot-deploy-hook.ts [--config FILE | --data DIR] [--lineage DIR]  (or RENEWED_LINEAGE=DIR)';
const usageError = usageErrorFor('certbot-deploy-hook', USAGE);

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string' }, data: { type: 'string' }, lineage: { type: 'string' } } }));
  } catch (err) {
    return usageError((err as Error).message);
  }
  const lineage = values.lineage ?? process.env.RENEWED_LINEAGE;
  if (!lineage) return usageError('no certificate: certbot sets RENEWED_LINEAGE; by hand, give --lineage /etc/letsencrypt/live/NAME');
  const config = loadConfig(values.config); // the same data directory rule as the server
  const dataDir = values.data ? resolve(values.data) : dataDirOf(config);

  // 1. As root: certbot's files, which only root can read.
  const certSource = join(lineage, 'fullchain.pem');
  const keySource = join(lineage, 'privkey.pem');
  const cert = await readFile(certSource, 'utf8');
  const key = await readFile(keySource, 'utf8');
  checkPair(cert, key, certSource, keySource); // a broken renewal is never installed

  // 2. Become the server's user (the data directory is made first if the server never ran).
  restrictUmask();
  if (isRoot() && config.runAs.user) await createDataDir(dataDir, lookupIds(config.runAs.user, config.runAs.group));
  becomeOwnerOf(dataDir);

  // 3. The key first: the server never finds a certificate whose key is not there yet.
  const tlsDir = join(dataDir, 'tls');
  await mkdir(tlsDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(tlsDir, 'key.pem'), key, { mode: 0o600 });
  await writeFileAtomic(join(tlsDir, 'cert.pem'), cert, { mode: 0o600 });
  console.log(`installed ${certSource} and ${keySource} in ${tlsDir}`);

  // 4. Tell the server.
  const pid = await runningPid(serverPidPath(dataDir), 'src/main.ts');
  if (typeof pid !== 'number') {
    console.log('no server is running: it will use the new certificate when it starts');
    return 0;
  }
  process.kill(pid, 'SIGHUP');
  console.log(`asked the server (pid ${pid}) to reload it; its log says tls-reloaded, or tls-reload-failed and why`);
  return 0;
}

runWhenStarted(import.meta.url, 'certbot-deploy-hook', main);
