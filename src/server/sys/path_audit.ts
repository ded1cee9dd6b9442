// sys/audit and sys/audit-hash: the audit devices. List them, enable a file
// device at a path (its lines chained and checkpointed, its secrets HMAC'd
// under a salt of its own), disable one, and ask a device for the HMAC it
// writes for a value, to search its log for a known secret.

import type { Route } from '../../sdk/route.ts';
import { serverRequest } from '../context.ts';
import { checked, stringField } from '../fields.ts';
import { invalidField } from '../../sdk/errors.ts';

const PATH = checked('string', 'The device\'s path, e.g. file.');
const devicePath = (path: string): string => (path.endsWith('/') ? path : `${path}/`);

export function pathAudit(): Route[] {
  return [
    {
      pattern: 'audit',
      fields: {},
      operations: {
        read: async (req) => ({ data: serverRequest(req).core.audit.list(), http: { topLevel: true } }),
      },
      synopsis: 'The enabled audit devices.',
      description: `
Every audit device by its path, with its type, description and options, and
the public key its signed checkpoints verify with (checkpoint_public_key,
base64 SPKI): what \`tvm audit verify --key\` pins.`,
    },
    {
      pattern: 'audit/(?<path>.+)',
      fields: {
        path: PATH,
        type: checked('string', 'The device type: file.'),
        description: checked('string', 'A description.'),
        options: checked('object', 'file_path (absolute), hmac_accessor (default true), log_raw (default false), format (json).'),
        local: checked('bool', 'Accepted for Vault compatibility; there is one node.'),
      },
      operations: {
        update: async (req, f) => {
          const data = req.data;
          await serverRequest(req).core.audit.enable(devicePath(f.get<string>('path')), {
            type: data.type,
            description: data.description,
            options: data.options,
          });
          return null;
        },
        delete: async (req, f) => {
          await serverRequest(req).core.audit.disable(devicePath(f.get<string>('path')));
          return null;
        },
      },
      synopsis: 'Enable or disable an audit device.',
      description: `
Enabling a file device opens (or creates, mode 0600) its file and writes its
first line; a path that cannot be opened is refused. From then on every request
and response is one line in Vault's format, every secret string HMAC'd; and
while any device is enabled, a request no device can record is not served.
Disabling closes the file with a last signed checkpoint.`,
    },
    {
      pattern: 'audit-hash/(?<path>.+)',
      fields: { path: PATH, input: checked('string', 'The value to hash.', { secret: true }) },
      operations: {
        update: async (req, f) => {
          const input = stringField(req.data, 'input');
          if (input === undefined) throw invalidField('input', 'is required');
          const hash = serverRequest(req).core.audit.hash(devicePath(f.get<string>('path')), input);
          if (hash === null) throw invalidField('path', 'no audit device is enabled there');
          return { data: { hash } };
        },
      },
      synopsis: 'The HMAC an audit device writes for a value.',
      description: `
Answers hmac-sha256:<hex> of the input under the device's salt: search the
device's log for it to find where a known secret (a token, a secret id)
appears, without the log ever holding the secret.`,
    },
  ];
}
