// The servers this project is measured against (scripts/bench-budget.ts
// --compare): Dovecot for POP3 and Postfix for SMTP into mbox files, each
// a private instance with its own configuration in a temporary directory,
// listening on loopback ports above 1024, and stopped (and its directory
// removed) at the end. Debian packages them as dovecot-pop3d and postfix:
//
//     apt-get install -y dovecot-pop3d postfix
//
// (with debconf's "No configuration" for Postfix, so that no system
// instance is set up). Both need root to start, as they need to set their
// users; nothing is written outside the temporary directory.
//
// Dovecot: POP3 only, no TLS, plain passwords from a passwd-file, mbox
// mailboxes owned by the `mail` user, dot-lock and fcntl locks (as this
// project's dot-lock expects), limits raised so that 300 sessions fit.
// Postfix: smtpd on one port, then cleanup, qmgr and virtual(8) delivering
// to one mbox per address (virtual_mailbox_maps), owned by `mail`.

import { execFile, spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const START_TIMEOUT_MS = 20_000;

export interface ReferenceServer {
  name: 'Dovecot' | 'Postfix';
  port: number;
  /** The master process: its tree holds every process of the server. */
  rootPid: number;
  /** Where mail for `account` is (an mbox). */
  mboxPathOf(account: string): string;
  stop(): Promise<void>;
}

/** uid and gid of the `mail` user, who owns the mailboxes. */
async function mailUser(): Promise<{ uid: number; gid: number }> {
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith('mail:'));
  const fields = line?.split(':');
  if (!fields) throw new Error('there is no user "mail" to own the mailboxes');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

async function privateDir(name: string): Promise<string> {
  if (userInfo().uid !== 0) throw new Error(`${name} must be started as root (it changes to its own users)`);
  const dir = await mkdtemp(join(tmpdir(), `bench-${name.toLowerCase()}-`));
  await chmod(dir, 0o755); // its unprivileged processes must reach the mailboxes below
  return dir;
}

/** The pid in the master's pid file, once it is there. */
async function waitForPid(path: string, what: string): Promise<number> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const text = (await readFile(path, 'utf8').catch(() => '')).trim(); // Postfix pads it with spaces
    if (/^\d+$/.test(text)) return Number(text);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what} did not start within ${START_TIMEOUT_MS / 1000} s`);
}

/** Dovecot on `port` with these accounts (password = the account name + "-pw"). */
export async function startDovecot(port: number, accounts: string[]): Promise<ReferenceServer> {
  const dir = await privateDir('Dovecot');
  const mail = await mailUser();
  const mailDir = join(dir, 'mail');
  await mkdir(mailDir);
  for (const account of accounts) {
    await mkdir(join(mailDir, account));
    await writeFile(join(mailDir, account, 'INBOX'), '');
    for (const path of [join(mailDir, account), join(mailDir, account, 'INBOX')]) await chown(path, mail.uid, mail.gid);
  }
  await chown(mailDir, mail.uid, mail.gid);
  await writeFile(join(dir, 'passwd'), accounts.map((a) => `${a}:{PLAIN}${a}-pw\n`).join(''));
  const config = `
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = mbox:${mailDir}/%u:INBOX=${mailDir}/%u/INBOX
mail_uid = ${mail.uid}
mail_gid = ${mail.gid}
first_valid_uid = ${mail.uid}
mbox_write_locks = dotlock fcntl
pop3_uidl_format = %08Xu%08Xv
default_process_limit = 1000
default_client_limit = 5000
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${dir}/passwd
}
userdb {
  driver = static
  args = home=${mailDir}/%u
}
service pop3-login {
  inet_listener pop3 {
    port = ${port}
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
}
service anvil {
  client_limit = 5000
}
`;
  await writeFile(join(dir, 'dovecot.conf'), config);
  // (spawn, not execFile: the daemon would keep execFile's pipes open)
  const started = spawn('dovecot', ['-c', join(dir, 'dovecot.conf')], { stdio: 'ignore' });
  const code = await new Promise<number | null>((resolve) => started.once('exit', resolve));
  if (code !== 0) throw new Error(`dovecot failed to start (exit ${code}): ${(await readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => '')).slice(-2000)}`);
  const rootPid = await waitForPid(join(dir, 'run', 'master.pid'), 'Dovecot');
  return {
    name: 'Dovecot',
    port,
    rootPid,
    mboxPathOf: (account) => join(mailDir, account, 'INBOX'),
    async stop() {
      process.kill(rootPid, 'SIGTERM'); // the master stops its children
      await waitUntilGone(rootPid);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Postfix's smtpd on `port`, delivering ACCOUNT@localhost into mail/ACCOUNT (an mbox). */
export async function startPostfix(port: number, accounts: string[]): Promise<ReferenceServer> {
  const dir = await privateDir('Postfix');
  const mail = await mailUser();
  const etc = join(dir, 'etc');
  const mailDir = join(dir, 'mail');
  for (const sub of ['etc', 'spool', 'data', 'mail']) await mkdir(join(dir, sub));
  await chown(mailDir, mail.uid, mail.gid);
  const postfixUid = (await run('id', ['-u', 'postfix'])).stdout.trim();
  await chown(join(dir, 'data'), Number(postfixUid), -1);
  await writeFile(join(etc, 'vmailbox'), accounts.map((a) => `${a}@localhost ${a}\n`).join(''));
  const main = `
compatibility_level = 3.6
queue_directory = ${dir}/spool
data_directory = ${dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.localhost
mydomain = bench.localhost
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
virtual_mailbox_domains = localhost
virtual_mailbox_base = ${mailDir}
virtual_mailbox_maps = texthash:${etc}/vmailbox
virtual_uid_maps = static:${mail.uid}
virtual_gid_maps = static:${mail.gid}
virtual_minimum_uid = ${mail.uid}
virtual_mailbox_lock = fcntl, dotlock
virtual_mailbox_limit = 0
message_size_limit = 0
smtp_dns_support_level = disabled
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
alias_maps =
alias_database =
biff = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 100
`;
  // The services a delivery goes through, and those the master insists on.
  const master = `
127.0.0.1:${port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
`;
  await writeFile(join(etc, 'main.cf'), main);
  await writeFile(join(etc, 'master.cf'), master);
  // postfix(1) prints its complaints only to a terminal; they are in maillog too.
  const started = spawn('postfix', ['-c', etc, 'start'], { stdio: 'ignore' });
  const code = await new Promise<number | null>((resolve) => started.once('exit', resolve));
  if (code !== 0) throw new Error(`postfix start failed (exit ${code}): ${(await readFile(join(dir, 'maillog'), 'utf8').catch(() => '')).slice(-2000)}`);
  const rootPid = await waitForPid(join(dir, 'spool', 'pid', 'master.pid'), 'Postfix');
  return {
    name: 'Postfix',
    port,
    rootPid,
    mboxPathOf: (account) => join(mailDir, account),
    async stop() {
      process.kill(rootPid, 'SIGTERM'); // the master stops its children
      await waitUntilGone(rootPid);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitUntilGone(pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
