import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { categoricalDescriptor, descriptorField, manifestSchema, numericDescriptor } from '../../src/model/manifest.js';

const MODELS = join(import.meta.dirname, '../../models/icu-mortality');

test('the PhysioNet 2012 descriptor names map to the API fields (models/README.md), and nothing else does', () => {
  assert.equal(descriptorField('Age'), 'age');
  assert.equal(descriptorField('Gender'), 'sex');
  assert.equal(descriptorField('ICUType'), 'icuType');
  assert.equal(descriptorField('Height'), 'height');
  for (const other of ['RecordID', 'Weight', 'age', 'Sex', 'toString', '__proto__', '']) {
    assert.equal(descriptorField(other), undefined, other);
  }
});

test('every committed manifest encodes the four descriptors, each of the kind the API reads', () => {
  const versions = readdirSync(MODELS, { withFileTypes: true }).filter((d) => d.isDirectory());
  assert.ok(versions.length > 0);
  for (const version of versions) {
    const manifest = manifestSchema.parse(
      JSON.parse(readFileSync(join(MODELS, version.name, 'manifest.json'), 'utf8')),
    );
    const fields = manifest.statics.map((s) => descriptorField(s.name)).sort();
    assert.deepEqual(fields, ['age', 'height', 'icuType', 'sex'], version.name);
    assert.equal(numericDescriptor(manifest, 'age')?.unit, 'a', version.name);
    assert.equal(numericDescriptor(manifest, 'height')?.unit, 'cm', version.name);
    assert.deepEqual(categoricalDescriptor(manifest, 'sex')?.labels, ['female', 'male'], version.name);
    assert.deepEqual(categoricalDescriptor(manifest, 'icuType')?.categories, [1, 2, 3, 4], version.name);
  }
});
