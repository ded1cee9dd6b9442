// Try the AWS mapping on a laptop: the dev server on 127.0.0.1:8200 (root token
// "root") and the loopback STS/IAM fake the tests use (test/iam/fakes/aws.ts),
// which verifies tvm tokens against the dev server's JWKS as AWS would, with the
// role arn:aws:iam::123456789012:role/tvm-logs trusting the subject "token"
// (a root token given by id is made through auth/token/create, so its display
// name, the tokens' sub, is "token", as in Vault's and OpenBao's dev mode).
// Prints the broker `cloud "aws"` block to use. Stop with Ctrl-C.

import { createServer } from 'node:http';
import { startServer } from '../src/server/index.ts';
import { FAKE_BROKER_KEYS, startAwsFake } from '../test/iam/fakes/aws.ts';

const ROLE_ARN = 'arn:aws:iam::123456789012:role/tvm-logs';
const stateAddr = process.env.AWS_FAKE_STATE_ADDR ?? '127.0.0.1:8398';

const server = await startServer({ dev: true, listenAddress: '127.0.0.1:8200', quiet: true, rootTokenId: 'root' });
const aws = await startAwsFake({ oidc: { issuer: `${server.address}/v1/tvm`, clientIds: ['sts.amazonaws.com'] } });
aws.addRole(ROLE_ARN, { trustedSubjects: ['token'] });

// The fake's IAM state (inline policies per role), for `curl` while trying.
const [host, port] = stateAddr.split(':');
createServer((_req, res) => {
  const roles = [...aws.state.roles.values()].map((r) => ({ arn: r.arn, inline_policies: Object.fromEntries(r.policies) }));
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ roles, sessions: aws.state.sessions.length }, null, 2) + '\n');
}).listen(Number(port), host);

process.stdout.write(`dev server ${server.address} (VAULT_TOKEN=root); AWS fake ${aws.url}; its IAM state at http://${stateAddr}/
broker config:
cloud "aws" {
  region            = "us-east-1"
  sts_endpoint      = "${aws.url}"
  iam_endpoint      = "${aws.url}"
  access_key_id     = "${FAKE_BROKER_KEYS.accessKeyId}"
  secret_access_key = "${FAKE_BROKER_KEYS.secretAccessKey}"
}
`);
const stop = async () => {
  await aws.close();
  await server.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
