// Options several commands share, so their flags and help read the same everywhere.

import { Option } from 'commander';
import { DEFAULT_MOUNT } from '../client/connection.ts';

export function mountOption(): Option {
  return new Option('--mount <path>', 'where the tvm engine is mounted').default(DEFAULT_MOUNT);
}

export function formatOption<T extends string>(choices: readonly T[], fallback: T): Option {
  return new Option('--format <format>', 'output format').choices(choices).default(fallback);
}
