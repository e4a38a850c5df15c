import FHIR from 'fhirclient';

/**
 * The launch URL (/app/launch). EHR launch: `?iss=&launch=` (authorization code with PKCE);
 * standalone: `?iss=` alone; an open server: `?fhirServiceUrl=&patientId=` (no authorization,
 * for demos and tests). The scopes are what the page reads, and no more: the patient in context,
 * its Patient, Encounters and Observations (SMART App Launch v1 syntax, which v2 servers accept).
 */

const READS = 'patient/Patient.read patient/Encounter.read patient/Observation.read';

const params = new URLSearchParams(location.search);
const status = document.getElementById('status');
const clientId = document.querySelector<HTMLMetaElement>('meta[name="smart-client-id"]')?.content ?? '';

function fail(message: string): void {
  if (status) {
    status.textContent = message;
    status.className = 'error';
  }
}

if (params.has('fhirServiceUrl')) {
  FHIR.oauth2.authorize({ redirectUri: './', clientId }).catch((e: Error) => fail(`Launch failed: ${e.message}`));
} else if (params.has('iss')) {
  const scope = params.has('launch') ? `launch ${READS}` : `launch/patient ${READS}`;
  FHIR.oauth2
    .authorize({ clientId, scope, redirectUri: './', pkceMode: 'required' })
    .catch((e: Error) => fail(`Launch failed: ${e.message}`));
} else {
  fail('Open this app from the EHR (it passes iss and launch), or give ?iss= for a standalone launch.');
}
