import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createEngine } from '../../src/inference/engine.js';
import { providerOrder } from '../../src/inference/providers.js';
import { INPUT_NAMES, TINY_MODEL, buildBatch, maxAbsDiff, reference, tinyEngine } from './helpers.js';

function recordingLogger(): {
  warnings: Array<{ obj: Record<string, unknown>; msg: string }>;
  logger: { info(): void; warn(obj: object, msg: string): void; error(): void };
} {
  const warnings: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  return {
    warnings,
    logger: {
      info: () => {},
      warn: (obj: object, msg: string) => warnings.push({ obj: obj as Record<string, unknown>, msg }),
      error: () => {},
    },
  };
}

describe('provider order', () => {
  test('ends on cpu when cpu is not listed', () => {
    assert.deepEqual(providerOrder(['cuda', 'webgpu']), ['cuda', 'webgpu', 'cpu']);
  });
  test('drops duplicates and anything after cpu, which never fails to start', () => {
    assert.deepEqual(providerOrder(['webgpu', 'webgpu', 'cpu', 'cuda']), ['webgpu', 'cpu']);
  });
});

// This machine has no GPU and no Vulkan loader, and the npm package carries no CUDA
// provider: every GPU provider must fail to start and the engine must end on the CPU.
describe('provider fallback without a GPU', () => {
  test('["webgpu", "cpu"] ends on cpu with a warning naming webgpu and its reason', async () => {
    const { warnings, logger } = recordingLogger();
    const engine = await tinyEngine({ providers: ['webgpu', 'cpu'], logger });
    try {
      assert.equal(engine.provider, 'cpu');
      const warning = warnings.find((w) => w.obj.provider === 'webgpu');
      assert.ok(warning, 'a warning names webgpu');
      assert.match(warning.msg, /webgpu/);
      assert.equal(typeof warning.obj.reason, 'string');
      assert.ok((warning.obj.reason as string).length > 0);
      const { stays, probability } = reference();
      assert.ok(maxAbsDiff(await engine.run(buildBatch(stays.slice(0, 5))), probability.slice(0, 5)) <= 1e-6);
    } finally {
      await engine.close();
    }
  });

  test('["cuda"] alone falls back to cpu with a warning naming cuda', async () => {
    const { warnings, logger } = recordingLogger();
    const engine = await tinyEngine({ providers: ['cuda'], logger });
    try {
      assert.equal(engine.provider, 'cpu');
      assert.ok(warnings.some((w) => w.obj.provider === 'cuda' && /cuda/.test(w.msg)));
    } finally {
      await engine.close();
    }
  });

  test('every worker of a pool uses the provider the first one chose', async () => {
    const { warnings, logger } = recordingLogger();
    const engine = await tinyEngine({ providers: ['webgpu', 'cuda'], workers: 2, logger });
    try {
      assert.equal(engine.provider, 'cpu');
      // Only the first worker tries the GPU providers: one warning each, not one per worker.
      assert.equal(warnings.filter((w) => w.obj.provider === 'webgpu').length, 1);
      assert.equal(warnings.filter((w) => w.obj.provider === 'cuda').length, 1);
    } finally {
      await engine.close();
    }
  });

  test('a plain ["cpu"] engine logs no provider warning', async () => {
    const { warnings, logger } = recordingLogger();
    const engine = await tinyEngine({ providers: ['cpu'], logger });
    await engine.close();
    assert.deepEqual(warnings, []);
  });
});

describe('engine start-up errors', () => {
  test('an unknown provider name is refused before any worker starts', async () => {
    await assert.rejects(
      createEngine({
        modelPath: TINY_MODEL,
        inputNames: INPUT_NAMES,
        outputName: 'probability',
        providers: ['tpu' as 'cpu'],
        intraOpThreads: 1,
        workers: 1,
      }),
      /unknown execution provider "tpu"/,
    );
  });

  test('a missing model file rejects with an error naming the path', async () => {
    await assert.rejects(tinyEngine({ modelPath: '/nonexistent/model.onnx' }), /\/nonexistent\/model\.onnx/);
  });

  test('zero workers or threads are refused', async () => {
    await assert.rejects(tinyEngine({ workers: 0 }), RangeError);
    await assert.rejects(tinyEngine({ intraOpThreads: 0 }), RangeError);
  });
});
