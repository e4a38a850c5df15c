import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UnreadableRecordError, physionetRecordToPatient, readPhysionetRecord } from '../../src/clinical/physionet.js';
import { readFile } from 'node:fs/promises';
import { manifestSchema, type Manifest } from '../../src/model/manifest.js';

// Not through test/helper.ts: these tests need the manifest only, not the app.
async function loadTinyManifest(): Promise<Manifest> {
  return manifestSchema.parse(
    JSON.parse(await readFile(new URL('../fixtures/tiny-model/manifest.json', import.meta.url), 'utf8')),
  );
}

// A record in the challenge's format with the raw-data problems the README lists; every
// expected value below is worked out by hand from the manifest's rules.
const RECORD = `Time,Parameter,Value
00:00,RecordID,140001
00:00,Age,71
00:00,Gender,1
00:00,Height,-1
00:00,ICUType,3
00:00,Weight,80.5
00:10,HR,90
00:40,HR,96
00:40,Temp,99.5
00:50,Urine,100
00:55,Urine,50
01:30,FiO2,50
01:30,pH,735
01:45,Foo,3
02:00,HR,350
02:05,Temp,-17.8
02:10,MAP,0
03:20,Lactate,1.2e+01
05:00,Weight,81
48:00,HR,88
`;

test('descriptors become the patient statics, -1 meaning unknown', async () => {
  const patient = physionetRecordToPatient(RECORD, await loadTinyManifest());
  assert.equal(patient.id, '140001');
  assert.equal(patient.age, 71);
  assert.equal(patient.sex, 'male');
  assert.equal(patient.height, null);
  assert.equal(patient.icuType, 3);
});

test('measurements are binned by hour: last value, urine summed, 48:00 in the last hour', async () => {
  const patient = physionetRecordToPatient(RECORD, await loadTinyManifest());
  assert.equal(patient.hours.length, 48);
  const h0 = patient.hours[0]!;
  assert.equal(h0.HR, 96);
  assert.equal(h0.Urine, 150);
  // The Weight descriptor is an observation of the Weight series at 00:00.
  assert.equal(h0.Weight, 80.5);
  assert.equal(patient.hours[5]!.Weight, 81);
  assert.equal(patient.hours[47]!.HR, 88);
  assert.deepEqual(patient.hours[4], {});
});

test('unit slips are corrected as the manifest says: degF, FiO2 in percent, pH without its decimal point', async () => {
  const patient = physionetRecordToPatient(RECORD, await loadTinyManifest());
  assert.ok(Math.abs((patient.hours[0]!.Temp as number) - 37.5) < 1e-12);
  assert.equal(patient.hours[1]!.FiO2, 0.5);
  assert.ok(Math.abs((patient.hours[1]!.pH as number) - 7.35) < 1e-12);
  assert.equal(patient.hours[3]!.Lactate, 12);
});

test('impossible values and unknown parameters are dropped, not kept or clipped', async () => {
  const patient = physionetRecordToPatient(RECORD, await loadTinyManifest());
  // HR 350 (> 300), Temp -17.8 degC, MAP 0 (an artefact: bounds start at 1).
  assert.deepEqual(patient.hours[2], {});
  for (const row of patient.hours) assert.equal('Foo' in row, false);
});

test('a record without a RecordID line takes the id it is given (the file name)', async () => {
  const text = RECORD.split('\n')
    .filter((l) => !l.includes('RecordID'))
    .join('\n');
  assert.equal(physionetRecordToPatient(text, await loadTinyManifest(), '140002').id, '140002');
});

test('lines that do not parse are ignored, as training ignores them', async () => {
  const manifest = await loadTinyManifest();
  const text =
    'Time,Parameter,Value\n00:00,RecordID,1\n00:10,HR\n0:1x,HR,80\n00:75,HR,81\n00:10,HR,eighty\n00:10,HR,\n00:20,HR,0x50\n0:5,HR,83\n0:05,HR,82\n 00:30 , RespRate , 1.8e1 \n';
  const patient = physionetRecordToPatient(text, manifest);
  assert.deepEqual(patient.hours, [{ HR: 82, RespRate: 18 }]);
});

test('descriptors count wherever they are, the first one winning; codes outside the categories are unknown', async () => {
  const manifest = await loadTinyManifest();
  const text =
    'Time,Parameter,Value\n00:00,RecordID,132539.0\n00:00,Gender,2\n00:00,ICUType,4\n00:05,Age,130\n01:00,Age,50\n02:00,ICUType,1\n02:00,HR,70\n';
  const patient = physionetRecordToPatient(text, manifest);
  assert.equal(patient.id, '132539');
  assert.equal(patient.sex, null);
  assert.equal(patient.icuType, 4);
  // The first Age line (130, outside 15..110) wins and is unknown.
  assert.equal(patient.age, null);
  assert.deepEqual(patient.hours, [{}, {}, { HR: 70 }]);
});

test('measurements after the last hour are dropped', async () => {
  const manifest = await loadTinyManifest();
  const patient = physionetRecordToPatient('Time,Parameter,Value\n00:10,HR,70\n48:00,HR,71\n48:01,HR,72\n', manifest);
  assert.equal(patient.hours.length, 48);
  assert.equal(patient.hours[47]!.HR, 71);
});

test('a file in which no line reads as a record is refused', async () => {
  const manifest = await loadTinyManifest();
  assert.throws(
    () => physionetRecordToPatient('id,time,variable,value\na,00:10,HR\n', manifest),
    UnreadableRecordError,
  );
});

test('CRLF records as in the challenge files read the same', async () => {
  const manifest = await loadTinyManifest();
  const crlf = physionetRecordToPatient(
    'Time,Parameter,Value\r\n00:00,RecordID,132539\r\n00:00,Age,54\r\n00:00,Gender,0\r\n00:00,Height,-1\r\n00:00,ICUType,4\r\n00:00,Weight,-1\r\n00:07,GCS,15\r\n00:07,HR,73\r\n',
    manifest,
  );
  assert.equal(crlf.id, '132539');
  assert.equal(crlf.age, 54);
  assert.equal(crlf.height, null);
  assert.equal(crlf.icuType, 4);
  assert.deepEqual(crlf.hours, [{ GCS: 15, HR: 73 }]);
  const patient = physionetRecordToPatient(
    'Time,Parameter,Value\n00:00,RecordID,132539\n00:00,Age,54\n00:00,Gender,0\n00:00,Weight,-1\n00:07,HR,73\n',
    manifest,
  );
  assert.equal(patient.sex, 'female');
  assert.deepEqual(patient.hours, [{ HR: 73 }]);
});

test('impossible values are noted at their record line, as the reader dropped them', async () => {
  const { dropped } = readPhysionetRecord(RECORD, await loadTinyManifest());
  // Lines 16-18 of RECORD (the header is line 1): HR 350, Temp -17.8, MAP 0; Height -1 (line 5) is unknown, kept.
  assert.deepEqual(
    dropped.map((d) => d.path),
    [
      ['line 16', 'Value'],
      ['line 17', 'Value'],
      ['line 18', 'Value'],
    ],
  );
});
