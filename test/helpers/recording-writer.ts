/**
 * The child process of the recordings crash test: a proxy (its Auth API identity in
 * IDENTITY_FILE, from a join token) that records a session for USER with the Recorder.
 * It sends a first part and waits until auth stored it, prints `flushed ID`, then writes a
 * second part that it never sends (its flush interval is an hour) and prints `unsent`. The
 * parent kills it with SIGKILL there and checks what the recording holds.
 *
 * Usage: node recording-writer.ts IDENTITY_FILE USER
 */
import { readFileSync } from 'node:fs';
import { remoteAuthClient } from '../../src/auth/remote-client.ts';
import type { IdentityFile } from '../../src/auth/service.ts';
import { Recorder } from '../../src/proxy/recorder.ts';
import { parseHostPort } from '../../src/core/text.ts';

const [identityFile, user] = process.argv.slice(2);
if (!identityFile || !user) {
  process.stderr.write('usage: recording-writer.ts IDENTITY_FILE USER\n');
  process.exit(2);
}
const identity = JSON.parse(readFileSync(identityFile, 'utf8')) as IdentityFile;
const auth = remoteAuthClient(parseHostPort(identity.authAddr, 3025), identity);
const rec = await Recorder.start(auth, { user, node: 'crash-node', login: 'ubuntu', kind: 'shell', width: 80, height: 24, clientAddr: '127.0.0.1' }, { flushIntervalMs: 3_600_000 });
rec.output('$ echo first-part\r\nfirst-part\r\n');
rec.resize(90, 30);
await rec.flush();
process.stdout.write(`flushed ${rec.id}\n`);
rec.output('$ echo never-sent\r\nnever-sent\r\n');
process.stdout.write('unsent\n');
// Stay alive until killed, as a proxy in the middle of a session does.
setInterval(() => {}, 60_000);
