/**
 * The HTTP ceiling of this machine for the benchmark's bodies: a bare Fastify server that
 * parses the same JSON and answers at once, no validation, no model. bench/http.ts measures
 * it beside the service so that the service's figures can be read against what HTTP and
 * JSON alone allow here.
 */
import Fastify from 'fastify';

const app = Fastify({ bodyLimit: 256 * 1024 * 1024 });
app.get('/health/ready', async () => ({ status: 'ready' }));
app.post('/v1/predict', async (request) => {
  const body = request.body as { patients: unknown[] };
  return { results: body.patients.map((_, index) => ({ index, probability: 0.5 })) };
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
