"""Paramiko through Postern: the node through a ProxyCommand (`postern proxy ssh`), with the
key and certificate from files or from the agent; runs a command (its exit status becomes
ours) or uploads a file over SFTP. The node's host key is pinned with --host-key, because
paramiko cannot check host certificates. Used by test/interop/python-suite.ts."""
import argparse
import sys
import warnings

warnings.filterwarnings("ignore")
import paramiko  # noqa: E402
from paramiko.agent import AgentRequestHandler  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--host", required=True)
p.add_argument("--login", required=True)
p.add_argument("--proxy-command", required=True)
p.add_argument("--host-key", required=True, help='"type base64" of the key the server must show')
p.add_argument("--key")
p.add_argument("--cert")
p.add_argument("--agent", action="store_true", help="sign with the agent (SSH_AUTH_SOCK)")
p.add_argument("--forward-agent", action="store_true")
p.add_argument("--command")
p.add_argument("--put", nargs=2, metavar=("LOCAL", "REMOTE"))
a = p.parse_args()

client = paramiko.SSHClient()
ktype, kb64 = a.host_key.split()[:2]
client.get_host_keys().add(a.host, ktype, paramiko.hostkeys.HostKeyEntry.from_line(f"{a.host} {ktype} {kb64}").key)
client.set_missing_host_key_policy(paramiko.RejectPolicy())
pkey = None
if a.key:
    pkey = paramiko.Ed25519Key.from_private_key_file(a.key)
    if a.cert:
        pkey.load_certificate(a.cert)
client.connect(a.host, username=a.login, pkey=pkey, allow_agent=a.agent, look_for_keys=False,
               sock=paramiko.ProxyCommand(a.proxy_command), timeout=30, banner_timeout=30, auth_timeout=30)
status = 0
if a.put:
    chan = client.get_transport().open_session()
    if a.forward_agent:
        AgentRequestHandler(chan)
    chan.invoke_subsystem("sftp")
    sftp = paramiko.SFTPClient(chan)
    sftp.put(a.put[0], a.put[1])
    sftp.close()
if a.command:
    chan = client.get_transport().open_session()
    if a.forward_agent:
        AgentRequestHandler(chan)
    chan.exec_command(a.command)
    out = chan.makefile("rb").read()
    sys.stdout.buffer.write(out)
    status = chan.recv_exit_status()
client.close()
sys.exit(status)
