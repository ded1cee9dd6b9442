// Runs one dev server for the benchmark in its own process, so the load
// generator and the server do not share an event loop. Prints one JSON line
// {address, rootToken} once it is listening; stops on SIGTERM.
import { startServer } from '../src/server/index.ts';

const [mode, listen, configPath] = process.argv.slice(2);
const server =
  mode === 'persistent'
    ? await startServer({ dev: false, configPath, quiet: true })
    : await startServer({ dev: true, listenAddress: listen, rootTokenId: 'bench-root', quiet: true });
process.stdout.write(`${JSON.stringify({ address: server.address, rootToken: server.rootToken })}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
