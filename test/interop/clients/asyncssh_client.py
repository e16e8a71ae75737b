"""asyncssh through Postern: the node through the proxy's SSH listener as a jump host (like
`ssh -J`), checking host certificates against the profile's known_hosts (@cert-authority),
with the key and certificate from files or from the agent; runs a command (its exit status
becomes ours) or uploads a file over SFTP. Used by test/interop/python-suite.ts."""
import argparse
import asyncio
import sys
import warnings

warnings.filterwarnings("ignore")
import asyncssh  # noqa: E402
import logging, os  # noqa: E402
if os.environ.get("INTEROP_DEBUG"):
    logging.basicConfig(level=logging.DEBUG)
    asyncssh.set_debug_level(2)

p = argparse.ArgumentParser()
p.add_argument("--proxy-port", type=int, required=True)
p.add_argument("--proxy-user", required=True)
p.add_argument("--node", required=True)
p.add_argument("--login", required=True)
p.add_argument("--known-hosts", required=True)
p.add_argument("--key")
p.add_argument("--cert")
p.add_argument("--agent", action="store_true", help="sign with the agent (SSH_AUTH_SOCK)")
p.add_argument("--forward-agent", action="store_true")
p.add_argument("--command")
p.add_argument("--put", nargs=2, metavar=("LOCAL", "REMOTE"))
a = p.parse_args()


async def main() -> int:
    if a.agent:
        # The agent's key signs. asyncssh 2.10 offers an agent's certificate under the plain
        # key's algorithm name, which OpenSSH's sshd refuses ("key type mismatch") as Postern
        # does, so the certificate is set on the agent's plain key here, which asyncssh then
        # offers under the certificate's algorithm.
        agent = await asyncssh.connect_agent()
        plain = [k for k in await agent.get_keys() if b"-cert-" not in k.algorithm]
        cert = asyncssh.read_certificate(a.cert)
        for k in plain:
            k.set_certificate(cert)
        keys = {"client_keys": plain}
    else:
        keys = {"client_keys": [(asyncssh.read_private_key(a.key), asyncssh.read_certificate(a.cert))]}
        if not a.forward_agent:
            keys["agent_path"] = None
    common = dict(known_hosts=a.known_hosts, connect_timeout=30, **keys)
    async with asyncssh.connect("127.0.0.1", a.proxy_port, username=a.proxy_user, **common) as jump:
        async with asyncssh.connect(a.node, 22, tunnel=jump, username=a.login, agent_forwarding=a.forward_agent, **common) as conn:
            status = 0
            if a.put:
                async with conn.start_sftp_client() as sftp:
                    await sftp.put(a.put[0], a.put[1])
            if a.command:
                r = await conn.run(a.command, check=False)
                sys.stdout.write(r.stdout)
                status = r.exit_status
            return status


sys.exit(asyncio.run(main()))
