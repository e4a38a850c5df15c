import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import ts from 'typescript';
import { INPUT_NAMES, type Stay, TINY_MODEL, buildBatch, reference } from './helpers.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
let dir: string;

// The service runs from compiled JavaScript (dist/), where the engine must find worker.js
// beside engine.js and start it with no TypeScript loader at all.
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'engine-compiled-'));
  const out = join(dir, 'src', 'inference');
  await mkdir(out, { recursive: true });
  const srcDir = join(repo, 'src', 'inference');
  for (const file of await readdir(srcDir)) {
    if (!file.endsWith('.ts')) continue;
    const source = await readFile(join(srcDir, file), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    });
    await writeFile(join(out, file.replace(/\.ts$/, '.js')), outputText);
  }
  await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  await symlink(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');
});
after(() => rm(dir, { recursive: true, force: true }));

test('the compiled engine starts its worker from worker.js under plain node and scores like PyTorch', async () => {
  const { stays, probability } = reference();
  const batch = buildBatch(stays.slice(0, 6));
  const engineUrl = pathToFileURL(join(dir, 'src', 'inference', 'engine.js')).href;
  const batchFile = join(dir, 'batch.json');
  // JSON writes NaN (not measured) as null; the script reads it back as NaN.
  const arrays = { values: [...batch.values], statics: [...batch.statics], lengths: [...batch.lengths] };
  await writeFile(batchFile, JSON.stringify({ ...batch, ...arrays }));
  const script = `
    import { readFileSync } from 'node:fs';
    import { createEngine } from ${JSON.stringify(engineUrl)};
    const b = JSON.parse(readFileSync(${JSON.stringify(batchFile)}, 'utf8'));
    const engine = await createEngine({ modelPath: ${JSON.stringify(TINY_MODEL)}, inputNames: ${JSON.stringify(INPUT_NAMES)},
      outputName: 'probability', providers: ['cpu'], intraOpThreads: 1, workers: 1 });
    const nan = (v) => v ?? NaN;
    const out = await engine.run({ ...b, values: Float64Array.from(b.values, nan), statics: Float64Array.from(b.statics, nan),
      lengths: Int32Array.from(b.lengths) });
    await engine.close();
    console.log(JSON.stringify({ execArgv: process.execArgv, provider: engine.provider, out: [...out] }));
  `;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const scriptFile = join(dir, 'score.js');
  await writeFile(scriptFile, script);
  const { stdout } = await run(process.execPath, [scriptFile], { cwd: dir, env, maxBuffer: 1 << 24 });
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
    execArgv: string[];
    provider: string;
    out: number[];
  };
  assert.deepEqual(
    result.execArgv.filter((a) => a.includes('tsx')),
    [],
    'no TypeScript loader in the child',
  );
  assert.equal(result.provider, 'cpu');
  assert.equal(result.out.length, 6);
  result.out.forEach((p, i) => assert.ok(Math.abs(p - (probability[i] as number)) <= 1e-6, `stay ${i}`));
});

test('the TypeScript engine starts its .ts worker when tsx was registered through its API, not --import', async () => {
  const { stays, probability } = reference();
  const batchOfOne = buildBatch([stays[3] as Stay]);
  const engineUrl = pathToFileURL(join(repo, 'src', 'inference', 'engine.ts')).href;
  const script = `
    import { register } from 'tsx/esm/api';
    register();
    const { createEngine } = await import(${JSON.stringify(engineUrl)});
    const engine = await createEngine({ modelPath: ${JSON.stringify(TINY_MODEL)}, inputNames: ${JSON.stringify(INPUT_NAMES)},
      outputName: 'probability', providers: ['cpu'], intraOpThreads: 1, workers: 1 });
    const b = ${JSON.stringify({ ...batchOfOne, values: [...batchOfOne.values], statics: [...batchOfOne.statics], lengths: [...batchOfOne.lengths] })};
    const nan = (v) => v ?? NaN;
    const out = await engine.run({ ...b, values: Float64Array.from(b.values, nan), statics: Float64Array.from(b.statics, nan),
      lengths: Int32Array.from(b.lengths) });
    await engine.close();
    console.log(JSON.stringify({ execArgv: process.execArgv, out: [...out] }));
  `;
  const scriptFile = join(dir, 'score-ts.mjs');
  await writeFile(scriptFile, script);
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const { stdout } = await run(process.execPath, [scriptFile], { cwd: repo, env, maxBuffer: 1 << 24 });
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { execArgv: string[]; out: number[] };
  assert.deepEqual(result.execArgv, []);
  assert.equal(result.out.length, 1);
  assert.ok(Math.abs((result.out[0] as number) - (probability[3] as number)) <= 1e-6);
});
