/**
 * `npm start`: a working cluster on this machine with the embedded defaults. Runs
 * `postern serve` on the default ports with SQLite in ./.postern/data, creates a first
 * admin (once) and prints their invite link and what to do next; builds the web UI first
 * when dist/web is missing or stale. Ctrl-C stops it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';

const dataDir = resolve(process.env.POSTERN_DATA_DIR ?? '.postern/data');
const bin = resolve('bin/postern');
const admin = process.env.POSTERN_ADMIN ?? 'admin';
const login = userInfo().username;
const extra = process.argv.slice(2);

// The web UI is served from dist/web: build it first when it is missing or older than web/.
const { ensureWebBuilt } = await import('./build-web.ts');
if (await ensureWebBuilt()) console.log('built the web UI into dist/web');

const serve = spawn(process.execPath, [bin, 'serve', '--data-dir', dataDir, '--cluster-name', process.env.POSTERN_CLUSTER ?? 'postern.local', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
let buffered = '';
let announced = false;
serve.stdout.on('data', (d: Buffer) => {
  // serve's own "Next: add the first admin" is what this script does next, so it is not shown.
  process.stdout.write(d.toString().replace(/^Next: add the first admin:.*\n?/m, ''));
  if (announced) return;
  buffered += d.toString();
  const ready = buffered.split('\n').find((l) => l.includes('ready:'));
  if (!ready) return;
  announced = true;
  const pin = /ca-pin=(\S+)/.exec(ready)?.[1] ?? '';
  const web = /web=https:\/\/(\S+)/.exec(ready)?.[1] ?? 'localhost:3080';
  const users = spawnSync(process.execPath, [bin, 'users', 'ls', '--format', 'json', '--data-dir', dataDir], { encoding: 'utf8' });
  const known = users.status === 0 ? (JSON.parse(users.stdout) as Array<{ name: string; status: string }>) : [];
  const existing = known.find((u) => u.name === admin);
  const args = existing
    ? existing.status === 'active' ? undefined : ['users', 'reset', admin, '--ttl', '48h', '--format', 'json', '--data-dir', dataDir]
    : ['users', 'add', admin, '--logins', login, '--roles', 'admin,access', '--ttl', '48h', '--format', 'json', '--data-dir', dataDir];
  console.log('');
  if (args) {
    const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
    if (r.status !== 0) { process.stderr.write(r.stderr); return; }
    const { inviteUrl } = JSON.parse(r.stdout) as { inviteUrl: string };
    console.log(`The first admin, "${admin}" (login ${login}), is invited. Accept the invite (password + authenticator app):`);
    console.log('');
    console.log(`  ./bin/postern signup ${inviteUrl} --ca-pin ${pin}`);
    console.log('');
    console.log(`or open it in a browser (the cluster's own CA signs the certificate; its pin is ${pin}):`);
    console.log(`  ${inviteUrl}`);
  } else {
    console.log(`The admin "${admin}" has signed up already.`);
  }
  console.log('');
  console.log(`The web UI (nodes, a terminal, live sessions, recordings, audit):  https://${web}/web/`);
  console.log('');
  console.log('Then log in and check:');
  console.log(`  ./bin/postern login --proxy ${web} --user ${admin} --ca-pin ${pin}`);
  console.log('  ./bin/postern status');
  console.log('');
  console.log('sshd on your servers trusts the user CA with this line in sshd_config:');
  console.log('  TrustedUserCAKeys /etc/ssh/postern_user_ca.pub');
  console.log(`  (write that file with:  ./bin/postern ca export --type user --data-dir ${dataDir})`);
  console.log('');
  console.log('./bin/postern needs Node.js 24 as `node` on your PATH; where the system has an older one,');
  console.log('run the same commands as  npm run postern -- ARGS  (npm scripts use the project\'s Node 24).');
  console.log('');
  console.log('Press Ctrl-C to stop the cluster; its state stays in ' + dataDir);
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => serve.kill(sig));
serve.on('exit', (code) => process.exit(code ?? 0));
