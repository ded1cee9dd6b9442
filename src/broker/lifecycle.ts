// Starting and stopping a broker: store, Vault login, reconcile, loop, API.
// Shutdown is two-stage: graceful (stop accepting, finish the pass under way,
// revoke this replica's leases when revoke_on_shutdown, release claims), then
// forced after the timeout or on a second request. Safe to call twice.

import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { AuditWriter } from '../audit/writer.ts';
import { createConsole } from './console.ts';
import type { Server } from 'node:http';
import { createProviders } from '../iam/providers.ts';
import { createApi, listen } from './api.ts';
import { Broker, type BrokerDeps } from './broker.ts';
import type { BrokerConfig } from './config.ts';
import { BrokerError, describeError } from './errors.ts';
import type { CloudProviders } from './grants.ts';
import { createLogger, type Logger } from './log.ts';
import { WorkLoop } from './loop.ts';
import { createMetrics, type BrokerMetrics } from './metrics.ts';
import { openStore } from './store/index.ts';
import type { Clock, Random, Store } from './types.ts';
import { createVaultGateway, type VaultGateway } from './vault.ts';

export interface StartOptions {
  log?: Logger;
  clock?: Clock;
  random?: Random;
  hooks?: BrokerDeps['hooks'];
  /** Stand-in for Vault (tests); default: the client library against config.vault. */
  vault?: VaultGateway;
  /** Stand-in store (tests); default: opened from config.store. */
  store?: Store;
  /** Stand-in cloud providers (tests); default: built from config's cloud blocks. */
  providers?: CloudProviders;
  /** How often the console asks Vault again about a session's token (ms; default 30 s). */
  consoleRecheckMs?: number;
}

export interface RunningBroker {
  url: string | null;
  socket: string | null;
  broker: Broker;
  store: Store;
  metrics: BrokerMetrics;
  log: Logger;
  /** What reconcile found at start. */
  reconciled: { orphansRevoked: number; intentsClosed: number; skipped: number; grantsRolledBack: number };
  /** Graceful stop (then forced after the timeout); `force` skips to the forced stage. */
  stop(options?: { force?: boolean }): Promise<void>;
}

export async function startBroker(config: BrokerConfig, options: StartOptions = {}): Promise<RunningBroker> {
  const log = options.log ?? createLogger({ level: config.logLevel, to: config.logTo });
  const clock = options.clock ?? Date.now;
  const metrics = createMetrics();
  let providers: CloudProviders;
  try {
    providers = options.providers ?? (await createProviders(config.clouds, { baseDir: config.baseDir }));
  } catch (err) {
    throw new BrokerError('ERR_CONFIG', `cloud blocks: ${describeError(err)}`, { cause: err });
  }
  const audit = config.audit ? openAudit(config.audit) : undefined;
  const store = options.store ?? (await openStore(config.store));
  if (store.commitStats) metrics.commitSource = () => store.commitStats!();
  // Its logins are recorded in the registry (times only): which login obtained each lease, and when its token ends.
  const vault = options.vault ?? createVaultGateway(config.vault, clock, log, { registry: store, replica: config.broker.replica });
  let api: Awaited<ReturnType<typeof listen>> | null = null;
  let loop: WorkLoop | null = null;
  const servers: Server[] = [];
  try {
    await vault.login();
    const broker = new Broker({ store, vault, log, metrics, clock, random: options.random, hooks: options.hooks, providers, ...(audit ? { audit } : {}), rules: config.rules }, config.broker);
    // Whatever this replica held when it died is claimable again at once; a SQLite
    // file has one broker, so every claim in it belongs to a dead process.
    await store.releaseClaims(store.kind === 'sqlite' ? null : config.broker.replica);
    // Likewise their logins: no one renews those tokens now, so the leases they obtained
    // are renewed with the new token until those tokens' recorded ends, and re-fetched before.
    await broker.inheritLogins(store.kind === 'sqlite');
    const reconciled = await broker.reconcile();
    await broker.refreshGauges();
    loop = new WorkLoop(broker, vault, log, config.loop, clock);
    loop.start(reconciled.skipped > 0 ? clock() + config.broker.claimTtlMs : Infinity);
    const consoleHandler = config.console ? createConsole({ broker, vaultAddress: config.vault.address, log, clock, ...(options.consoleRecheckMs !== undefined ? { recheckMs: options.consoleRecheckMs } : {}) }) : undefined;
    api = await listen(() => {
      const s = createApi(broker, metrics, log, consoleHandler);
      servers.push(s);
      return s;
    }, config.listener);
    // Workloads could not reach this broker until now (it was stopped or killed): their silence counts from here.
    broker.acceptingHeartbeats();
    log.info({ url: api.url, socket: api.socket, store: store.kind, replica: config.broker.replica, clouds: Object.keys(providers), ...reconciled }, 'broker started');

    let graceful: Promise<void> | null = null;
    let forced: Promise<void> | null = null;
    let onForced: () => void = () => undefined;
    const forcedDone = new Promise<void>((resolve) => (onForced = resolve));
    const running = api;
    const work = loop;
    const forceStop = (): Promise<void> =>
      (forced ??= (async () => {
        log.warn('forced stop');
        for (const s of servers) s.closeAllConnections();
        await running.close();
        void work.stop();
        await store.close().catch(() => undefined);
        audit?.close();
        onForced();
      })());
    const stop = async (o: { force?: boolean } = {}): Promise<void> => {
      if (o.force) return forceStop();
      graceful ??= (async () => {
        const deadline = clock() + config.shutdownTimeoutMs;
        const timer = setTimeout(() => void forceStop(), config.shutdownTimeoutMs + 1_000);
        try {
          await running.close();
          await work.stop();
          if (forced) return;
          if (config.broker.revokeOnShutdown) {
            const r = await broker.revokeForShutdown(deadline, store.kind === 'sqlite');
            log.info(r, 'revoked leases at shutdown');
          }
          await store.releaseClaims(config.broker.replica);
          await store.close();
          audit?.close();
          log.info('broker stopped');
        } catch (err) {
          if (!forced) {
            log.error({ err: describeError(err) }, 'graceful stop failed; forcing');
            await forceStop();
          }
        } finally {
          clearTimeout(timer);
        }
      })();
      // The forced stage ends the wait even when a graceful step hangs.
      await Promise.race([graceful, forcedDone]);
    };
    return { url: api.url, socket: api.socket, broker, store, metrics, log, reconciled, stop };
  } catch (err) {
    // A start that failed after the loop began (the listener's address in use, say) stops it: nothing may keep working on a closed store.
    await loop?.stop();
    await api?.close();
    if (!options.store) await store.close().catch(() => undefined);
    audit?.close();
    throw err;
  }
}

/** The broker's audit file, its checkpoints signed with the operator's Ed25519 key file. */
function openAudit(a: NonNullable<BrokerConfig['audit']>): AuditWriter {
  let key: KeyObject;
  try {
    // A key others can read lets them sign checkpoints: refused, as ssh refuses such a key.
    if ((statSync(a.checkpointKeyFile).mode & 0o077) !== 0) {
      throw new BrokerError('ERR_CONFIG', `audit.checkpoint_key_file ${a.checkpointKeyFile}: group or others may read it; chmod 600 it`);
    }
    key = createPrivateKey(readFileSync(a.checkpointKeyFile, 'utf8'));
  } catch (err) {
    if (err instanceof BrokerError) throw err;
    throw new BrokerError('ERR_CONFIG', `audit.checkpoint_key_file ${a.checkpointKeyFile}: ${(err as NodeJS.ErrnoException).code ?? 'not a PEM private key'}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new BrokerError('ERR_CONFIG', `audit.checkpoint_key_file ${a.checkpointKeyFile}: an Ed25519 key is needed, not ${key.asymmetricKeyType}`);
  try {
    return AuditWriter.open({ device: 'broker', filePath: a.filePath, signingKey: key, checkpointIntervalMs: a.checkpointIntervalMs });
  } catch (err) {
    throw new BrokerError('ERR_CONFIG', `audit.file_path ${a.filePath}: ${(err as NodeJS.ErrnoException).code ?? describeError(err)}`);
  }
}
