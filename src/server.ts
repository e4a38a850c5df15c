import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';

/**
 * Start-up only: read the configuration, build the app, listen, and on SIGTERM/SIGINT stop
 * accepting connections, let in-flight requests and the batcher's queue finish, then exit.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  let app;
  try {
    app = await buildApp(config);
    await app.ready();
  } catch (error) {
    process.stderr.write(`icu-mortality could not start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  const instance = app;
  closeWithGrace({ delay: config.shutdownGraceMs }, async ({ signal, err }) => {
    if (err) instance.log.error({ err }, 'closing after an uncaught error');
    else instance.log.info({ signal }, 'shutting down: draining in-flight requests and the prediction queue');
    // fastify.close(): stop listening, answer new requests 503, wait for in-flight ones,
    // then onClose hooks drain the batcher and close the inference engine.
    await instance.close();
  });
  await instance.listen({ port: config.port, host: config.host });
}

await main();
