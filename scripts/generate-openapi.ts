/** Writes openapi.yaml from the app's routes and zod schemas: `npm run openapi`. */
import { writeFile } from 'node:fs/promises';
import { OPENAPI_PATH, generateOpenApiYaml } from './openapi-source.js';

const yaml = await generateOpenApiYaml();
await writeFile(OPENAPI_PATH, yaml);
process.stdout.write(`wrote ${OPENAPI_PATH} (${yaml.length} bytes)\n`);
