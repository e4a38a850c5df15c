import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Plugin } from 'esbuild';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { SmartAppConfig } from '../fhir/config.js';
import './scope.js';

/**
 * The clinician's page: a SMART on FHIR app (web/smart-app/, built with SMART Health IT's
 * fhirclient) served under /app/. Its scripts are bundled with esbuild on first request and
 * kept in memory, so nothing is fetched from another host at run time. The pages are public
 * (they hold no data); the data come from the EHR in the browser, the risk from this service's
 * FHIR $predict with the EHR's access token (SMART_ISSUERS).
 */

export const SMART_LAUNCH_PATH = '/app/launch';

const WEB_DIR = resolve(import.meta.dirname, '..', '..', 'web', 'smart-app');
const ENTRIES = { 'launch.js': 'launch.ts', 'app.js': 'page.ts' } as const;

export interface SmartAppRoutesOptions {
  app: SmartAppConfig;
}

/** The page's own policy: its scripts and styles only, data from this service and the configured EHR origins. */
export function appContentSecurityPolicy(ehrOrigins: readonly string[]): string {
  const ehr = ehrOrigins.join(' ');
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src 'self'${ehr ? ` ${ehr}` : ''}`,
    "base-uri 'none'",
    "form-action 'none'",
    // EHRs often show SMART apps in a frame of their own page.
    `frame-ancestors 'self'${ehr ? ` ${ehr}` : ''}`,
  ].join('; ');
}

/** A plain mark for the browser tab: without one the browser asks for /favicon.ico, a protected path. */
const ICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M1 12 5 7l3 3 3-6 4 4" fill="none" stroke="#1f5fbf" stroke-width="2"/></svg>';

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function htmlPage(title: string, script: string, body: string, meta = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
${meta}<link rel="icon" href="./icon.svg">
<link rel="stylesheet" href="./app.css">
<script src="./${script}" defer></script>
</head>
<body>
${body}
</body>
</html>
`;
}

/**
 * The page uses the service's code rule (src/fhir/variables.ts), whose module imports the manifest's
 * zod schemas; they only define values, so esbuild may leave them, and zod, out of the bundle.
 */
const manifestWithoutSideEffects: Plugin = {
  name: 'manifest-without-side-effects',
  setup(build) {
    build.onResolve({ filter: /\/model\/manifest\.js$/ }, (args) => ({
      path: resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts')),
      sideEffects: false,
    }));
  },
};

/** One in-memory esbuild bundle per entry (esbuild is a declared dependency), built once. */
async function bundle(entry: string): Promise<string> {
  const { build } = await import('esbuild');
  const out = await build({
    entryPoints: [join(WEB_DIR, entry)],
    bundle: true,
    write: false,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    legalComments: 'none',
    logLevel: 'silent',
    plugins: [manifestWithoutSideEffects],
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error(`esbuild produced nothing for ${entry}`);
  return file.text;
}

export async function smartAppRoutes(app: FastifyInstance, opts: SmartAppRoutesOptions): Promise<void> {
  const csp = appContentSecurityPolicy(opts.app.ehrOrigins);
  const bundles = new Map<string, Promise<string>>();
  const send = (reply: FastifyReply, type: string, body: string): FastifyReply =>
    reply
      .header('content-security-policy', csp)
      .removeHeader('x-frame-options')
      .header('cache-control', 'no-cache')
      .type(type)
      .send(body);

  const launchHtml = htmlPage(
    'ICU mortality risk: connecting to the EHR',
    'launch.js',
    '<main><p id="status" role="status">Connecting to the EHR…</p></main>',
    `<meta name="smart-client-id" content="${escapeHtml(opts.app.clientId)}">\n`,
  );
  const pageHtml = htmlPage('ICU mortality risk', 'app.js', await readFile(join(WEB_DIR, 'page.html'), 'utf8'));
  const css = await readFile(join(WEB_DIR, 'app.css'), 'utf8');

  const html = { config: { scope: 'public' as const }, schema: { hide: true } };
  app.get(SMART_LAUNCH_PATH, html, async (_request, reply) => send(reply, 'text/html; charset=utf-8', launchHtml));
  app.get('/app/', html, async (_request, reply) => send(reply, 'text/html; charset=utf-8', pageHtml));
  app.get('/app', html, async (_request, reply) => reply.redirect('/app/'));
  app.get('/app/app.css', html, async (_request, reply) => send(reply, 'text/css; charset=utf-8', css));
  app.get('/app/icon.svg', html, async (_request, reply) => send(reply, 'image/svg+xml', ICON));
  for (const [name, entry] of Object.entries(ENTRIES)) {
    app.get(`/app/${name}`, html, async (_request, reply) => {
      let built = bundles.get(name);
      if (!built) {
        built = bundle(entry);
        // A failed build is retried on the next request rather than cached.
        built.catch(() => bundles.delete(name));
        bundles.set(name, built);
      }
      return send(reply, 'text/javascript; charset=utf-8', await built);
    });
  }
}
