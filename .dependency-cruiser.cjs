/**
 * The layers of src/, lowest first: a module may import from its own layer and the ones below,
 * never from one above (npm run lint:layers, in npm run lint).
 *   observability  <  inference, model, evaluation  <  clinical  <  store  <  scoring  <  fhir  <  http  <  plugins  <  api, cli  <  app
 */
const ABOVE = {
  observability: ['inference', 'model', 'evaluation', 'clinical', 'store', 'scoring', 'fhir', 'http', 'plugins', 'api', 'cli'],
  inference: ['model', 'evaluation', 'clinical', 'store', 'scoring', 'fhir', 'http', 'plugins', 'api', 'cli'],
  model: ['inference', 'evaluation', 'clinical', 'store', 'scoring', 'fhir', 'http', 'plugins', 'api', 'cli'],
  // Statistics of a validation: pure, used by the CLI; it needs nothing above the model layer.
  evaluation: ['inference', 'clinical', 'store', 'scoring', 'fhir', 'http', 'plugins', 'api', 'cli'],
  clinical: ['store', 'scoring', 'fhir', 'http', 'plugins', 'api', 'cli'],
  // The prediction store: SQL over SQLite or PostgreSQL; it knows results, never HTTP or scoring.
  store: ['scoring', 'fhir', 'http', 'plugins', 'api', 'cli'],
  scoring: ['fhir', 'http', 'plugins', 'api', 'cli'],
  fhir: ['http', 'plugins', 'api', 'cli'],
  http: ['plugins', 'api', 'cli'],
  plugins: ['api', 'cli'],
  api: ['cli'],
  cli: ['api', 'http', 'plugins'],
};
const TOP = '^src/(app|server|config)\\.ts$';

module.exports = {
  forbidden: [
    ...Object.entries(ABOVE).map(([layer, above]) => ({
      name: `${layer}-imports-above`,
      comment: `src/${layer} may not import from ${above.join(', ')} or the app's top-level modules`,
      severity: 'error',
      from: { path: `^src/${layer}/` },
      to: { path: [`^src/(${above.join('|')})/`, ...(layer === 'api' ? [] : [TOP])] },
    })),
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
