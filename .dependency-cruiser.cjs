/**
 * The layers of src/, lowest first: a module may import from its own layer and the ones below,
 * never from one above (npm run lint:layers, in npm run lint).
 *   observability  <  inference, model, evaluation  <  clinical  <  model lifecycle  <  scoring  <  fhir  <  http  <  plugins  <  api, cli  <  app
 * The model lifecycle (src/model/repository.ts, runtime.ts: finding, loading, warming, reloading
 * versions) lives in model/ but builds what sits above the manifest: each version's engine and
 * batcher (inference) and validator (clinical). It is a layer of its own, just below scoring.
 */
const LIFECYCLE = 'src/model/(repository|runtime)\\.ts$';
const ABOVE = {
  observability: ['inference', 'model', 'evaluation', 'clinical', 'scoring', 'fhir', 'http', 'plugins', 'api', 'cli'],
  inference: ['model', 'evaluation', 'clinical', 'scoring', 'fhir', 'http', 'plugins', 'api', 'cli'],
  model: ['inference', 'evaluation', 'clinical', 'scoring', 'fhir', 'http', 'plugins', 'api', 'cli'],
  // Statistics of a validation: pure, used by the CLI; it needs nothing above the model layer.
  evaluation: ['inference', 'clinical', 'scoring', 'fhir', 'http', 'plugins', 'api', 'cli'],
  clinical: ['scoring', 'fhir', 'http', 'plugins', 'api', 'cli'],
  scoring: ['fhir', 'http', 'plugins', 'api', 'cli'],
  fhir: ['http', 'plugins', 'api', 'cli'],
  http: ['plugins', 'api', 'cli'],
  plugins: ['api', 'cli'],
  api: ['cli'],
  cli: ['api', 'http', 'plugins'],
};
// Below scoring: every layer under it may not import the lifecycle (model/ itself included).
const BELOW_LIFECYCLE = ['observability', 'inference', 'model', 'evaluation', 'clinical'];
const TOP = '^src/(app|server|config)\\.ts$';

module.exports = {
  forbidden: [
    ...Object.entries(ABOVE).map(([layer, above]) => ({
      name: `${layer}-imports-above`,
      comment: `src/${layer} may not import from ${above.join(', ')} or the app's top-level modules`,
      severity: 'error',
      from: { path: `^src/${layer}/`, ...(layer === 'model' ? { pathNot: `^${LIFECYCLE}` } : {}) },
      to: {
        path: [
          `^src/(${above.join('|')})/`,
          ...(layer === 'api' ? [] : [TOP]),
          ...(BELOW_LIFECYCLE.includes(layer) ? [`^${LIFECYCLE}`] : []),
        ],
      },
    })),
    {
      name: 'model-lifecycle-imports-above',
      comment: `the model lifecycle may not import from ${ABOVE.clinical.join(', ')} or the app's top-level modules`,
      severity: 'error',
      from: { path: `^${LIFECYCLE}` },
      to: { path: [`^src/(${ABOVE.clinical.join('|')})/`, TOP] },
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
