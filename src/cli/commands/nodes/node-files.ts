/** The files `nodes add` and `nodes renew` write: the node's host certificate and the user CA. */
import { mkdirSync } from 'node:fs';
import { resolve, join } from 'node:path';
import type { Deps } from '../../deps.ts';
import type { AddNodeResult } from '../../../api/auth-types.ts';
import { out, outJson } from '../../output.ts';
import { writeFileAtomic } from '../../../core/fs.ts';
import { parseCertificate } from '../../../ssh/certs.ts';
import { formatLabels } from '../../../api/labels.ts';

/** Writes the host certificate and the user CA next to each other and says how to use them. */
export function writeNodeFiles(deps: Deps, r: AddNodeResult, outDir: string, format: 'text' | 'json', verb: string): void {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  const certFile = join(dir, `${r.node.name}-cert.pub`);
  const userCaFile = join(dir, 'user_ca.pub');
  writeFileAtomic(certFile, r.hostCertificate.trim() + '\n', 0o644);
  writeFileAtomic(userCaFile, r.userCaKeys.join('\n') + '\n', 0o644);
  if (format === 'json') {
    outJson(deps, { node: r.node, hostCertificate: r.hostCertificate, certFile, userCaFile });
    return;
  }
  const cert = parseCertificate(r.hostCertificate);
  out(deps, `Node ${r.node.name} ${verb} (${r.node.addr}${Object.keys(r.node.labels).length ? `, ${formatLabels(r.node.labels)}` : ''}).`);
  out(deps, `Its host certificate is for ${cert.principals.join(', ')} and valid for ${Math.round((cert.validBefore.getTime() - cert.validAfter.getTime()) / 86_400_000)} days, until ${cert.validBefore.toISOString()} (renew with  postern nodes renew ${r.node.name}).`);
  out(deps, `Wrote ${certFile} and ${userCaFile}. Copy them to the node and add to its sshd_config, next to its HostKey line:`);
  out(deps);
  out(deps, `  HostCertificate ${certFile}`);
  out(deps, `  TrustedUserCAKeys ${userCaFile}`);
  out(deps);
  out(deps, 'then reload sshd.');
}
