// A three-node OpenBao cluster on loopback for the cluster suite: integrated
// storage (raft), each node on its own ports, joined with retry_join,
// auto-unsealed by one shared static seal key, the tvm plugin's file in every
// node's plugin_directory and registered once through the leader (the catalog
// and the mount table are replicated). What it measures (how long the first
// node took to become active) sets the suite's deadlines.
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, initBao, jsPlugin, PLUGIN_FILE, registerPlugin, startBaoConfig, type Bao } from './openbao.ts';

export type Node = Awaited<ReturnType<typeof startBaoConfig>> & { name: string; dir: string };

export interface Cluster {
  nodes: Node[];
  dir: string;
  /** From `operator init` on the first node to its first 200 from sys/health. */
  activationMs: number;
  /** From the first node's start to the plugin mounted and answering on every node. */
  formationMs: number;
  /**
   * Stops every node (SIGTERM, then SIGKILL), SIGKILLs any plugin process of
   * theirs still alive after that (returns how many), removes the directory.
   */
  stop(): Promise<number>;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** sys/health's status: 200 active, 429 unsealed standby, 473 performance standby, 501 not initialised, 503 sealed; 0 unreachable. */
export async function healthOf(node: Bao, timeoutMs = 2_000): Promise<number> {
  try {
    return (await fetch(`${node.address}/v1/sys/health`, { signal: AbortSignal.timeout(timeoutMs) })).status;
  } catch {
    return 0;
  }
}

/** Polls `check` every `everyMs` until it returns a value other than null/false, or throws after `timeoutMs`. */
export async function poll<T>(what: string, timeoutMs: number, check: () => Promise<T | null | false>, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => null);
    if (v !== null && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface AutopilotState {
  healthy: boolean;
  leader: string;
  voters: string[];
  servers: Record<string, { healthy: boolean; status: string; node_type: string }>;
}

/** sys/storage/raft/autopilot/state as `node` sees it (null when it cannot answer). */
export async function autopilotOf(node: Bao): Promise<AutopilotState | null> {
  const r = await node.api('GET', 'sys/storage/raft/autopilot/state');
  return r.status === 200 ? (r.body.data as unknown as AutopilotState) : null;
}

/** Autopilot healthy with every one of `names` a healthy voter, as `node` sees it. */
export async function healthyWith(node: Bao, names: string[]): Promise<AutopilotState | null> {
  const s = await autopilotOf(node);
  if (!s?.healthy) return null;
  return names.every((n) => s.servers[n]?.healthy && s.servers[n]?.node_type === 'voter') && s.voters.length === names.length ? s : null;
}

/** The node that is active now (sys/health 200), among `among`. */
export async function activeNode(among: Node[]): Promise<Node | null> {
  const statuses = await Promise.all(among.map((n) => healthOf(n)));
  return among[statuses.indexOf(200)] ?? null;
}

/** Pids of live processes running this plugin file (a plugin's command line names its file). */
export function pluginPids(pluginFile: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(pluginFile)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** A process's CPU use over `ms` (percent of one core), from /proc/<pid>/stat; null when it is gone. */
export async function cpuPercent(pid: number, ms = 1_000): Promise<number | null> {
  const ticks = () => {
    try {
      // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return Number(fields[11]) + Number(fields[12]);
    } catch {
      return null;
    }
  };
  const a = ticks();
  await sleep(ms);
  const b = ticks();
  // Linux reports USER_HZ (100) ticks per second.
  return a === null || b === null ? null : ((b - a) / 100 / (ms / 1000)) * 100;
}

export interface ClusterOptions {
  size?: number;
  /**
   * Per node: false writes `disable_standby_reads = true` into its config, so as
   * a standby it forwards every request to the active node (the HA behaviour
   * before OpenBao 2.5). Default true: OpenBao's default, a standby serves
   * requests that only read storage and forwards those that write.
   */
  standbyReads?: boolean[];
  /**
   * Raft's timing (storage "raft" performance_multiplier): OpenBao's default is
   * 5 (timeouts five times hashicorp/raft's: a follower notices a dead leader
   * after 5 to 10 s and more); 1 is what Vault and OpenBao advise for production.
   */
  performanceMultiplier?: number;
  /** The plugin's --api-addr (the tokens' issuer base); the first node's address when absent. */
  apiAddr?: string;
}

/** Adds settings to a node's bao.hcl (inside the raft stanza, or at the top level). */
function amendConfig(node: Node, performanceMultiplier: number | undefined, disableStandbyReads: boolean): void {
  const file = join(node.dir, 'bao.hcl');
  let text = readFileSync(file, 'utf8');
  if (performanceMultiplier !== undefined) {
    text = text.replace(/^(\s*node_id = .*)$/m, `$1\n  performance_multiplier = ${performanceMultiplier}`);
  }
  if (disableStandbyReads) text += 'disable_standby_reads = true\n';
  writeFileSync(file, text);
}

/** Starts, initialises and joins the cluster; registers and mounts the plugin at tvm/. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const size = options.size ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'tvm-raft-'));
  const sealKeyFile = join(dir, 'seal.key');
  const ports = [];
  for (let i = 0; i < size; i++) ports.push({ port: await freePort(), clusterPort: await freePort() });
  const addresses = ports.map((p) => `http://127.0.0.1:${p.port}`);
  const nodes: Node[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    const files = nodes.map((n) => join(n.pluginDir, PLUGIN_FILE));
    await poll('the plugins gone with their nodes', 3_000, async () => files.every((f) => pluginPids(f).length === 0)).catch(() => undefined);
    let leftover = 0;
    for (const n of nodes) {
      for (const pid of pluginPids(join(n.pluginDir, PLUGIN_FILE))) {
        leftover++;
        process.kill(pid, 'SIGKILL');
      }
    }
    rmSync(dir, { recursive: true, force: true });
    return leftover;
  };
  const started = Date.now();
  const plugin = jsPlugin(); // built while the cluster forms
  plugin.catch(() => undefined); // awaited below; a failure is thrown there
  let activationMs = 0;
  try {
    // startBaoConfig writes the config and starts at once. A node whose config this suite amends is
    // stopped, amended, and started again (restart reads the file anew): the others before the first is
    // initialised (so no join attempt has left raft state behind) and started once it is active again;
    // the first after its init, since a restart waits for an initialised node.
    const amended: Node[] = [];
    for (let i = 0; i < size; i++) {
      const name = `node-${i + 1}`;
      const nodeDir = join(dir, name);
      const bao = await startBaoConfig({ dir: nodeDir, nodeId: name, retryJoin: i === 0 ? [] : addresses.filter((_, j) => j !== i), ...ports[i], sealKeyFile });
      const node = Object.assign(bao, { name, dir: nodeDir });
      nodes.push(node);
      if (options.standbyReads?.[i] === false && i === 0) throw new Error('the first node is initialised active: give disable_standby_reads to another');
      if (options.standbyReads?.[i] === false || options.performanceMultiplier !== undefined) {
        if (i > 0) await node.stop();
        amendConfig(node, options.performanceMultiplier, options.standbyReads?.[i] === false);
        amended.push(node);
      }
    }
    const t = Date.now();
    await initBao(nodes[0]);
    activationMs = Date.now() - t;
    for (const n of nodes.slice(1)) n.rootToken = nodes[0].rootToken;
    if (amended[0] === nodes[0]) await nodes[0].restart();
    const restarts = amended.filter((n) => n !== nodes[0]).map((n) => n.restart());
    // Autopilot makes a joined node a voter once it has been healthy this long (default 10s).
    const tuned = await nodes[0].api('POST', 'sys/storage/raft/autopilot/configuration', { server_stabilization_time: '3s' });
    if (tuned.status >= 300) throw new Error(`autopilot configuration: ${tuned.status} ${tuned.text.slice(0, 200)}`);
    await Promise.all(restarts);
    const budget = 30_000 + 3 * activationMs;
    await poll('every standby unsealed and joined', budget, async () => (await Promise.all(nodes.slice(1).map((n) => healthOf(n)))).every((s) => s === 429 || s === 473));
    await poll('autopilot healthy with every node a voter', budget, () => healthyWith(nodes[0], nodes.map((n) => n.name))).catch(async (err: Error) => {
      throw new Error(`${err.message}; autopilot: ${JSON.stringify(await autopilotOf(nodes[0]))}`);
    });
    // The plugin's file in every node's plugin_directory; registered and mounted once, through the leader.
    const file = await plugin;
    for (const n of nodes.slice(1)) {
      copyFileSync(file, join(n.pluginDir, PLUGIN_FILE));
      chmodSync(join(n.pluginDir, PLUGIN_FILE), 0o755);
    }
    await registerPlugin(nodes[0], { file, apiAddr: options.apiAddr ?? addresses[0] });
    // Standbys that serve reads load the replicated mount table themselves: until then an authenticated
    // request under tvm/ is "no handler for route" (an unauthenticated one, tvm/jwks, is answered sooner).
    await poll('the plugin answering under tvm/ on every node', budget, async () =>
      (await Promise.all(nodes.map((n) => pluginAnswers(n)))).every(Boolean),
    );
    return { nodes, dir, activationMs, formationMs: Date.now() - started, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Whether the plugin itself answers an authenticated LIST of tvm/roles on `node` (200, or its empty 404). */
export async function pluginAnswers(node: Bao): Promise<boolean> {
  const r = await node.api('LIST', 'tvm/roles');
  return r.status === 200 || (r.status === 404 && Array.isArray(r.body.errors) && r.body.errors.length === 0);
}
