/**
 * Synthetic request bodies for the HTTP benchmarks: stays of `hours` rows with the density
 * of real ICU charting (vitals most hours, labs a few times a day), values within the
 * manifest's bounds. Deterministic from the seed.
 */
export function syntheticPatient(hours: number, seed: number): Record<string, unknown> {
  let s = seed >>> 0 || 1;
  const rand = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const maybe = (p: number, lo: number, hi: number, digits = 0): number | undefined =>
    rand() < p ? Math.round((lo + rand() * (hi - lo)) * 10 ** digits) / 10 ** digits : undefined;
  const rows = Array.from({ length: hours }, () => {
    const row: Record<string, number | null> = {};
    const set = (name: string, v: number | undefined): void => {
      if (v !== undefined) row[name] = v;
    };
    set('HR', maybe(0.95, 55, 140));
    set('MAP', maybe(0.7, 55, 110));
    set('SysABP', maybe(0.6, 85, 170));
    set('DiasABP', maybe(0.6, 40, 90));
    set('NIMAP', maybe(0.3, 55, 110));
    set('RespRate', maybe(0.4, 10, 32));
    set('Temp', maybe(0.4, 35.5, 39.5, 1));
    set('Urine', maybe(0.6, 0, 300));
    set('GCS', maybe(0.3, 3, 15));
    set('FiO2', maybe(0.15, 0.21, 1, 2));
    set('SaO2', maybe(0.1, 88, 100));
    set('pH', maybe(0.1, 7.2, 7.5, 2));
    set('PaO2', maybe(0.1, 60, 300));
    set('PaCO2', maybe(0.1, 28, 55));
    set('Lactate', maybe(0.05, 0.6, 8, 1));
    set('HCT', maybe(0.08, 22, 45, 1));
    set('Glucose', maybe(0.08, 70, 250));
    set('K', maybe(0.08, 3.1, 5.5, 1));
    set('Na', maybe(0.06, 130, 150));
    set('BUN', maybe(0.06, 5, 80));
    set('Creatinine', maybe(0.06, 0.5, 4, 1));
    set('WBC', maybe(0.06, 3, 25, 1));
    set('Platelets', maybe(0.06, 50, 400));
    set('HCO3', maybe(0.06, 16, 32));
    set('Mg', maybe(0.05, 1.4, 3, 1));
    return row;
  });
  return {
    age: 40 + Math.round(rand() * 45),
    sex: rand() < 0.5 ? 'female' : 'male',
    icuType: 1 + Math.floor(rand() * 4),
    height: 150 + Math.round(rand() * 40),
    weight: 50 + Math.round(rand() * 60),
    hours: rows,
  };
}

export function predictBody(patients: number, hours: number, seed = 1): string {
  return JSON.stringify({ patients: Array.from({ length: patients }, (_, i) => syntheticPatient(hours, seed + i)) });
}
