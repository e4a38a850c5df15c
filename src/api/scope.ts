/**
 * Every route declares who may call it in `config.scope`; the auth plugin
 * (src/plugins/app/auth.ts) reads it. Health, metrics and docs are `public`.
 */
/**
 * `cds`: CDS Hooks services, granted to the EHR issuers allow-listed in CDS_HOOKS_ISSUERS.
 * `outcomes:write`: posting patients' outcomes (POST /v1/outcomes), apart from scoring.
 */
export type RouteScope = 'predict' | 'models:read' | 'outcomes:write' | 'admin' | 'cds' | 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    scope?: RouteScope;
    /**
     * Also open to the `smart-app` scope of a SMART_ISSUERS token: only the routes the SMART app
     * (web/smart-app/page.ts) calls, none that store, delete or monitor.
     */
    smartApp?: true;
  }
}
