// What the seal costs per value: seal and open alone, and a put+get through
// the sealed storage against the same over the bare in-memory storage.
//   npx vitest bench --run test/server/storage-seal.bench.ts
import { randomBytes } from 'node:crypto';
import { bench, describe } from 'vitest';
import { Sealer, openMemoryStorage, openSealedStorage } from '../../src/server/storage/index.ts';

const keyring = { current: { id: 'bench-1', key: randomBytes(32) } };
const sealer = new Sealer(keyring);
const path = 'sys/expire/id/tvm/creds/bench/h3KqZ0u1Fq8b7mN2pR4sT6vW';
const plain = openMemoryStorage();
const sealed = await openSealedStorage(openMemoryStorage(), keyring);

for (const size of [256, 2048]) {
  const value = randomBytes(size);
  const sealedValue = sealer.seal(path, value);
  describe(`${size}-byte value`, () => {
    bench('seal', () => {
      sealer.seal(path, value);
    });
    bench('open', () => {
      sealer.open(path, sealedValue);
    });
    bench('put+get, memory storage', async () => {
      await plain.put(path, value);
      await plain.get(path);
    });
    bench('put+get, sealed memory storage', async () => {
      await sealed.put(path, value);
      await sealed.get(path);
    });
  });
}
